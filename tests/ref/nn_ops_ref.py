#!/usr/bin/env python3
"""PyTorch references for tests/lua/test_nn_ops.lua (Debian python3-torch 1.13): activations, softmax and
log_softmax, F.normalize and the losses, with their input gradients.

Usage: nn_ops_ref.py OUTDIR

For every case below writes, as float32 .npy files in OUTDIR:
  <id>_x.npy    the input
  <id>_t.npy    the target (losses)
  <id>_y.npy    the output (a 1-element array for losses reduced to a scalar)
  <id>_g.npy    a fixed random grad_output (ops whose output is not a scalar; scalars are backpropagated with 1)
  <id>_gx.npy   the input gradient (cases with grad = true)
and OUTDIR/cases.lua, a Lua table describing the cases (op and arguments in dpl's terms, dims 1-based).
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from reflib import save_npy, write_cases

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.RandomState(2024)


def save(name, a):
    save_npy(out, name, a)



cases = []
S = (2, 13, 9, 7)   # odd shapes: 13 channels, 9x7 planes


def case(cid, op, x, fn, target=None, grad=True, **args):
    xt = torch.from_numpy(x.astype(np.float32)).requires_grad_()
    tt = torch.from_numpy(target.astype(np.float32)) if target is not None else None
    y = fn(xt) if tt is None else fn(xt, tt)
    save(cid + "_x", x)
    if tt is not None:
        save(cid + "_t", target)
    save(cid + "_y", y.detach().numpy().reshape(-1) if y.dim() == 0 else y.detach().numpy())
    if y.dim() == 0:
        y.backward()
    else:
        g = rng.randn(*y.shape).astype(np.float32)
        save(cid + "_g", g)
        y.backward(torch.from_numpy(g))
    if grad:
        save(cid + "_gx", xt.grad.numpy())
    d = dict(id=cid, op=op, grad=grad, target=tt is not None, scalar=y.dim() == 0)
    d.update(args)
    cases.append(d)


def randn(*shape):
    return rng.randn(*shape).astype(np.float32)


# activations, with exact zeros in the input (PyTorch's gradient at 0: relu 0, leaky_relu the slope)
xz = randn(*S)
xz[0, :, 2, :] = 0
case("relu", "relu", xz, F.relu)
case("leaky_relu_0.01", "leaky_relu", xz, lambda x: F.leaky_relu(x, 0.01), slope=0.01)
case("leaky_relu_0.2", "leaky_relu", xz, lambda x: F.leaky_relu(x, 0.2), slope=0.2)
case("silu", "silu", randn(*S) * 4, F.silu)
case("sigmoid", "sigmoid", randn(*S) * 4, torch.sigmoid)
case("tanh", "tanh", randn(*S) * 2, torch.tanh)
# softmax and log_softmax along the channels and the last dim, with large values (stability)
case("softmax_dim2", "softmax", randn(*S) * 3, lambda x: F.softmax(x, 1), dim=2)
case("softmax_last", "softmax", randn(4, 13) * 30, lambda x: F.softmax(x, -1), dim=-1)
case("log_softmax_dim2", "log_softmax", randn(*S) * 3, lambda x: F.log_softmax(x, 1), dim=2)
case("log_softmax_last", "log_softmax", randn(4, 13) * 30, lambda x: F.log_softmax(x, -1), dim=-1)
# channel-wise L2 normalisation, with an all-zero pixel and a tiny one (below eps)
xn = randn(*S)
xn[1, :, 3, 4] = 0
xn[0, :, 5, 1] = 1e-14
case("normalize", "normalize", xn, lambda x: F.normalize(x, p=2, dim=1, eps=1e-12), dim=2, eps=1e-12)
case("normalize_eps", "normalize", randn(3, 5, 4) * 0.1, lambda x: F.normalize(x, p=2, dim=2, eps=0.3), dim=3, eps=0.3)
# losses
case("mse", "mse_loss", randn(*S), lambda x, t: F.mse_loss(x, t), target=randn(*S), reduction="mean")
case("mse_sum", "mse_loss", randn(3, 5), lambda x, t: F.mse_loss(x, t, reduction="sum"), target=randn(3, 5),
     reduction="sum")
p = rng.uniform(0.02, 0.98, S).astype(np.float32)
tb = (rng.uniform(size=S) > 0.5).astype(np.float32)
case("bce", "binary_cross_entropy", p, lambda x, t: F.binary_cross_entropy(x, t), target=tb, reduction="mean")
case("bce_soft_none", "binary_cross_entropy", p, lambda x, t: F.binary_cross_entropy(x, t, reduction="none"),
     target=rng.uniform(size=S).astype(np.float32), reduction="none")
# probabilities of exactly 0 and 1: the logs are clamped at -100 (the output only: PyTorch's gradient there is
# (x - t) / max(x (1 - x), 1e-12), a deliberate 1e12, not a derivative)
pe = np.array([[0, 1, 0, 1, 0.5, 1e-30]], dtype=np.float32)
case("bce_extremes", "binary_cross_entropy", pe, lambda x, t: F.binary_cross_entropy(x, t, reduction="none"),
     target=np.array([[1, 0, 0, 1, 1, 1]], dtype=np.float32), grad=False, reduction="none")
case("bce_logits", "binary_cross_entropy_with_logits", randn(*S) * 5, lambda x, t: F.binary_cross_entropy_with_logits(x, t),
     target=rng.uniform(size=S).astype(np.float32), reduction="mean")
case("bce_logits_large", "binary_cross_entropy_with_logits", np.array([[-80, -30, 0, 30, 80]], dtype=np.float32),
     lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction="none"),
     target=np.array([[1, 0, 1, 1, 0]], dtype=np.float32), reduction="none")
case("cross_entropy", "cross_entropy", randn(7, 13) * 3, lambda x, t: F.cross_entropy(x, t.long()),
     target=rng.randint(0, 13, 7).astype(np.float32), reduction="mean")
case("cross_entropy_sum_large", "cross_entropy", randn(5, 4) * 50, lambda x, t: F.cross_entropy(x, t.long(), reduction="sum"),
     target=np.array([0, 3, 1, 2, 3], dtype=np.float32), reduction="sum")

# layers with parameters: output and the gradients of sum(y * g) for the input and each parameter, saved as
# <id>_x, <id>_y, <id>_g, <id>_gx and <id>_p_<name> / <id>_gp_<name> (listed in cases.lua as op "module")
def module_case(cid, module, x, kind, **args):
    xt = torch.from_numpy(x.astype(np.float32)).requires_grad_()
    for name, p in module.named_parameters():
        with torch.no_grad():
            p.copy_(torch.from_numpy(rng.randn(*p.shape).astype(np.float32) * 0.5 + (1 if name == "weight" else 0)))
    for name, b in module.named_buffers():
        if name == "running_mean":
            b.copy_(torch.from_numpy(rng.randn(*b.shape).astype(np.float32)))
        elif name == "running_var":
            b.copy_(torch.from_numpy(rng.uniform(0.5, 2, b.shape).astype(np.float32)))
    state = {k: v.detach().clone().numpy() for k, v in module.state_dict().items()}
    y = module(xt)
    g = rng.randn(*y.shape).astype(np.float32)
    y.backward(torch.from_numpy(g))
    save(cid + "_x", x)
    save(cid + "_y", y.detach().numpy())
    save(cid + "_g", g)
    save(cid + "_gx", xt.grad.numpy())
    for k, v in state.items():
        save(cid + "_p_" + k, v)
    for k, v in module.state_dict().items():
        save(cid + "_after_" + k, v.numpy())
    names = []
    for name, p in module.named_parameters():
        save(cid + "_gp_" + name, p.grad.numpy())
        names.append(name)
    d = dict(id=cid, op="module", kind=kind, params=names, state=list(state.keys()))
    d.update(args)
    cases.append(d)


module_case("bn_train", torch.nn.BatchNorm2d(13, momentum=0.3).train(), randn(4, 13, 9, 7) * 2 + 1, "BatchNorm2d",
            num_features=13, momentum=0.3, train=True)
# without weight and bias, one channel far from zero (the variance of values near 30 in float), a 1 x 1 image
module_case("bn_train_plain", torch.nn.BatchNorm2d(1, affine=False).train(), randn(3, 1, 11, 5) * 0.5 + 30,
            "BatchNorm2d", num_features=1, momentum=0.1, affine=False, train=True)
module_case("bn_train_1x1", torch.nn.BatchNorm2d(6).train(), randn(5, 6, 1, 1), "BatchNorm2d", num_features=6,
            momentum=0.1, train=True)
module_case("bn_eval", torch.nn.BatchNorm2d(13).eval(), randn(2, 13, 9, 7) * 2 + 1, "BatchNorm2d",
            num_features=13, momentum=0.1, train=False)
module_case("linear", torch.nn.Linear(13, 7), randn(5, 13), "Linear", in_features=13, out_features=7)
module_case("conv_transpose", torch.nn.ConvTranspose2d(6, 9, 3, stride=2, padding=1, output_padding=1, groups=3),
            randn(2, 6, 5, 4), "ConvTranspose2d", in_channels=6, out_channels=9, kernel=3,
            opts=dict(stride=2, padding=1, output_padding=1, groups=3))

# composite graphs (the same function is written in the Lua test): every input requires grad; saves <id>_in_<name>,
# <id>_y, <id>_g and <id>_grad_<name> (listed in cases.lua as op "graph")
def graph_case(cid, fn, **inputs):
    ts = {k: torch.from_numpy(v.astype(np.float32)).requires_grad_() for k, v in inputs.items()}
    y = fn(**ts)
    g = rng.randn(*y.shape).astype(np.float32)
    y.backward(torch.from_numpy(g))
    for k, v in inputs.items():
        save(cid + "_in_" + k, v)
        save(cid + "_grad_" + k, ts[k].grad.numpy())
    save(cid + "_y", y.detach().numpy())
    save(cid + "_g", g)
    cases.append(dict(id=cid, op="graph", inputs=sorted(inputs.keys())))


# EfficientNet's squeeze-and-excitation: adaptive average pooling, 1x1 convs, SiLU, sigmoid, broadcast multiply
graph_case("squeeze_excitation",
           lambda x, w1, b1, w2, b2: x * torch.sigmoid(F.conv2d(F.silu(F.conv2d(F.adaptive_avg_pool2d(x, 1), w1, b1)),
                                                                w2, b2)),
           x=randn(2, 13, 9, 7), w1=randn(4, 13, 1, 1) * 0.3, b1=randn(4), w2=randn(13, 4, 1, 1) * 0.3, b2=randn(13))
# residual add and multiply with broadcasting (gradients summed back to the operands' shapes)
graph_case("broadcast_residual", lambda x, b, s, r: (x + b) * s + r,
           x=randn(2, 13, 9, 7), b=randn(1, 13, 1, 1), s=randn(9, 1), r=randn(2, 13, 9, 7))
# concat and split along the channels (Inception / DenseNet / Fire), then mean and sum reductions
graph_case("cat_split_reduce",
           lambda a, b: torch.cat([a * 2, torch.relu(b), a[:, 1:3]], 1).split([4, 6, 2], 1)[1].mean((2, 3)) +
           torch.cat([a, b], 1).sum(1, keepdim=True).mean(),
           a=randn(2, 5, 9, 7), b=randn(2, 5, 9, 7))
# linear layers with leaky_relu and a log_softmax head (the MLP benchmark's shape of computation)
graph_case("mlp_head", lambda x, w1, b1, w2: F.log_softmax(F.linear(F.leaky_relu(F.linear(x, w1, b1), 0.01), w2), 1),
           x=randn(6, 13), w1=randn(9, 13) * 0.3, b1=randn(9), w2=randn(4, 9) * 0.3)

write_cases(out, cases)

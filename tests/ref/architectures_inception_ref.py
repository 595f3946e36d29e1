#!/usr/bin/env python3
"""torchvision references for tests/lua/test_architectures_inception.lua (GoogLeNet, Inception v3, EfficientNet-B0/B7).

Usage: architectures_inception_ref.py OUTDIR [ARCH ...]      (default: every arch below)

For every arch writes, under OUTDIR/<arch>/ (float32 .npy files unless noted):
  <key>.npy        every tensor of a seeded random state_dict of torchvision 0.14's model (weights=None), including
                   BatchNorm weight, bias, running_mean and running_var (num_batches_tracked stays int64)
  keys.txt         the state_dict keys in order, one a line
  input.npy        a fixed random input, 2 x 3 x 64 x 64
  out_<idx>.npy    the reference truncation's output at each of the 4 extraction indices
                   (docs/benchmarks/lossnets.md: the children of the list attribute run in order on input.npy;
                   aux classifiers are not children run)
  logits.npy       the whole model's eval-mode logits on logits_input.npy (2 x 3 x S x S: S = 64, or 96 for
                   inception_v3, whose Mixed_7a cannot run at 64)
  logits_input.npy

The random state is "realistic": conv/linear weights ~ N(0, 1/fan_in), biases ~ N(0, 0.1^2), BN weight ~ U(0.5, 1.5),
BN bias ~ N(1, 0.5^2) (see BN_BIAS_MEAN); each BN's running statistics are set, in forward order, to the statistics
of its actual input on a calibration batch (the test inputs and 6 random images), so that activations stay O(1)
through 55 MBConv blocks, and then perturbed at random (mean shifted by N(0, 0.1^2) std, variance scaled by
U(0.6, 1.4)): random, positive, matching no batch. The references are computed in float64 (model.double()) and
saved as float32.
"""
import os
import sys
import warnings

import numpy as np
import torch
import torch.nn as nn
import torchvision

warnings.filterwarnings("ignore")
torch.set_num_threads(1)  # no OpenMP spinning against the Lua side or other jobs on small machines

# arch -> (list attribute or None for the model's children, extraction indices E S M L, logits input side)
ARCHS = {
    "googlenet": (None, [0, 5, 8, 15], 64),
    "inception_v3": (None, [2, 7, 9, 14], 96),
    "efficientnet_b0": ("features", [0, 1, 4, 7], 64),
    "efficientnet_b7": ("features", [0, 1, 4, 7], 64),
}
# BN biases ~ N(1, 0.5^2): with zero-mean biases every conv -> BN -> ReLU of a random net amplifies float32 rounding
# errors by about 1.2 (half the units off), which over 20-60 layers brings even PyTorch's own float32 forward to
# ~1e-4 x max |output| (the test's tolerance); mostly-positive biases keep it near 1e-5 and still leave channels
# that ReLU / SiLU clip.
BN_BIAS_MEAN = 1.0
# never run by the reference truncation (docs/benchmarks/lossnets.md)
SKIP_CHILDREN = {"aux1", "aux2", "AuxLogits"}


def children(model, attr):
    if attr is None:
        return [m for name, m in model.named_children() if name not in SKIP_CHILDREN]
    return list(getattr(model, attr).children())


def randomise(model, gen):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen, dtype=torch.float64) / fan_in ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen, dtype=torch.float64) * 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=gen, dtype=torch.float64) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen, dtype=torch.float64) * 0.5 + BN_BIAS_MEAN)


def calibrate(model, attr, layers, inputs, gen):
    """Sets each BN's running statistics, the first time the BN runs (eval mode, in forward order), to the statistics
    of its actual input on a calibration batch (the test inputs and 6 random images), perturbed at random; so every
    BN sees roughly normalised data whatever the random weights upstream (at 2 x 2 spatial sizes statistics from a
    few unrelated images would blow activations up), and none matches the test batch exactly.
    inputs: (x at 64 x 64, run up to the last extraction index), (x at the logits size, run up to avgpool)."""
    model.eval()
    done = set()

    def pre_hook(m, args):
        if m in done:
            return
        done.add(m)
        x = args[0]
        mean = x.mean(dim=(0, 2, 3))
        var = x.var(dim=(0, 2, 3), unbiased=True).clamp_min(1e-4)
        n = m.num_features
        m.running_mean.copy_(mean + torch.randn(n, generator=gen, dtype=torch.float64) * 0.1 * var.sqrt())
        m.running_var.copy_(var * (torch.rand(n, generator=gen, dtype=torch.float64) * 0.8 + 0.6))
        m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=gen)))

    hooks = [m.register_forward_pre_hook(pre_hook) for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        # the truncated part at 64 x 64, then the rest at the logits input size (inception_v3's Mixed_7* need > 64)
        for x, upto in ((inputs[0], max(layers) + 1), (inputs[1], None)):
            side = x.shape[-1]
            h = torch.cat([x, torch.rand(6, 3, side, side, generator=gen, dtype=torch.float64) * 2 - 1])
            for c in children(model, attr)[:upto]:
                if isinstance(c, (nn.AdaptiveAvgPool2d, nn.Dropout, nn.Linear)):
                    break
                h = c(h)
    for h in hooks:
        h.remove()
    # BNs never run (aux classifiers): plain random statistics
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d) and m not in done:
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen, dtype=torch.float64) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen, dtype=torch.float64) + 0.5)


def save(path, t):
    a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    if a.dtype == np.float64:
        a = a.astype(np.float32)
    np.save(path, np.require(a, requirements="C"))  # (ascontiguousarray would make 0-d arrays 1-d)


def build(arch):
    kw = {"weights": None}
    if arch in ("googlenet", "inception_v3"):
        kw["init_weights"] = False  # skip the slow trunc_normal init: every tensor is overwritten anyway
    return getattr(torchvision.models, arch)(**kw)


def make(arch, out):
    attr, layers, logit_side = ARCHS[arch]
    seed = sum(ord(c) for c in arch)
    gen = torch.Generator().manual_seed(seed)
    model = build(arch).double()
    randomise(model, gen)
    x = torch.rand(2, 3, 64, 64, generator=gen, dtype=torch.float64) * 2 - 1
    xl = x if logit_side == 64 else torch.rand(2, 3, logit_side, logit_side, generator=gen, dtype=torch.float64) * 2 - 1
    calibrate(model, attr, layers, (x, xl), gen)

    d = os.path.join(out, arch)
    os.makedirs(d, exist_ok=True)
    sd = model.state_dict()
    with open(os.path.join(d, "keys.txt"), "w") as f:
        for k, v in sd.items():
            f.write(k + "\n")
            save(os.path.join(d, k + ".npy"), v)

    save(os.path.join(d, "input.npy"), x)
    with torch.no_grad():
        h = x
        for i, c in enumerate(children(model, attr)[: max(layers) + 1]):
            h = c(h)
            if i in layers:
                save(os.path.join(d, "out_%d.npy" % i), h)
        save(os.path.join(d, "logits_input.npy"), xl)
        save(os.path.join(d, "logits.npy"), model(xl))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    archs = sys.argv[2:] or list(ARCHS)
    for arch in archs:
        make(arch, out)
    with open(os.path.join(out, "done"), "w") as f:
        f.write("\n".join(archs) + "\n")


if __name__ == "__main__":
    main()

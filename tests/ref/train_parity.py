#!/usr/bin/env python3
"""Reference runs for tests/lua/test_train_parity.lua, made with PyTorch (Debian python3-torch 1.13).

Usage: train_parity.py OUTDIR

Writes, as float32 .npy files in OUTDIR:
  mlp_*:   an MLP (Linear 6->16, ReLU, Linear 16->4): its initial weights, 20 batches, and the loss at each of 20 steps
           for Adam + cross-entropy (mlp_adam_losses) and SGD (momentum 0.9, nesterov, weight decay 1e-3) + MSE
           (mlp_sgd_losses), plus the weights after the Adam run.
  bn_*:    BatchNorm2d(5): outputs of two training steps and one evaluation step, and the running statistics.
  cnn_*:   when called with --conv: a small conv net with batch norm trained 20 steps with Adam.
"""
import sys, os
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
rng = np.random.RandomState(0)

def save(name, a):
    np.save(os.path.join(out, name + ".npy"), np.array(a, dtype=np.float32, order="C"))  # keeps 0-d arrays 0-d

def mlp():
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))

# --- MLP: initial weights and data shared by both runs
init = mlp()
for name, p in init.state_dict().items():
    save("mlp_init_" + name, p.numpy())
xs = rng.randn(20, 8, 6).astype(np.float32)
cls = rng.randint(0, 4, size=(20, 8)).astype(np.float32)
reg = rng.randn(20, 8, 4).astype(np.float32)
save("mlp_x", xs); save("mlp_cls", cls); save("mlp_reg", reg)

def run(opt_fn, loss_fn, targets):
    m = mlp(); m.load_state_dict(init.state_dict())
    opt = opt_fn(m.parameters())
    losses = []
    for i in range(20):
        opt.zero_grad()
        loss = loss_fn(m(torch.from_numpy(xs[i])), targets(i))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return m, losses

m, losses = run(lambda p: torch.optim.Adam(p, lr=1e-2), F.cross_entropy, lambda i: torch.from_numpy(cls[i]).long())
save("mlp_adam_losses", losses)
for name, p in m.state_dict().items():
    save("mlp_adam_final_" + name, p.numpy())
_, losses = run(lambda p: torch.optim.SGD(p, lr=5e-2, momentum=0.9, nesterov=True, weight_decay=1e-3),
                F.mse_loss, lambda i: torch.from_numpy(reg[i]))
save("mlp_sgd_losses", losses)

# --- BatchNorm2d
bn = nn.BatchNorm2d(5)
with torch.no_grad():
    bn.weight.copy_(torch.from_numpy(rng.rand(5).astype(np.float32) + 0.5))
    bn.bias.copy_(torch.from_numpy(rng.randn(5).astype(np.float32)))
save("bn_weight", bn.weight.detach().numpy()); save("bn_bias", bn.bias.detach().numpy())
for step in range(2):
    x = rng.randn(3, 5, 4, 3).astype(np.float32) * (step + 1) + step
    save("bn_x%d" % step, x)
    save("bn_y%d" % step, bn(torch.from_numpy(x)).detach().numpy())
save("bn_running_mean", bn.running_mean.numpy()); save("bn_running_var", bn.running_var.numpy())
bn.eval()
x = rng.randn(2, 5, 3, 3).astype(np.float32)
save("bn_xe", x); save("bn_ye", bn(torch.from_numpy(x)).detach().numpy())

# --- a small conv net with batch norm, Adam, 20 steps
if "--conv" in sys.argv:
    def cnn():
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                             nn.Conv2d(8, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                             nn.Flatten(), nn.Linear(4 * 5 * 5, 3))
    net = cnn()
    with torch.no_grad():   # randomised batch-norm affine parameters
        for mod in net:
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.copy_(torch.rand(mod.num_features) + 0.5)
                mod.bias.copy_(torch.randn(mod.num_features) * 0.1)
    for name, p in net.state_dict().items():
        save("cnn_init_" + name, p.numpy())
    xs = rng.rand(20, 4, 3, 9, 9).astype(np.float32)
    ys = rng.randint(0, 3, size=(20, 4)).astype(np.float32)
    save("cnn_x", xs); save("cnn_y", ys)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for i in range(20):
        opt.zero_grad()
        loss = F.cross_entropy(net(torch.from_numpy(xs[i])), torch.from_numpy(ys[i]).long())
        loss.backward()
        opt.step()
        losses.append(loss.item())
    save("cnn_losses", losses)

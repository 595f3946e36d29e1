#!/usr/bin/env python3
"""PyTorch references for tests/lua/test_perceptual_loss.lua: the deep perceptual loss (feature MSE at one layer of a
frozen loss network) and its gradient with respect to the output image.

Usage: perceptual_loss_ref.py OUTDIR

For each case writes OUTDIR/<case>_*.npy (float32) and OUTDIR/<arch>.pth (torch.save, zip format: the seeded random
state_dict of the truncated network, BatchNorm statistics and affine parameters randomised):
  vgg16_E_eval, resnet18_L_eval    eval mode (the super-resolution benchmark's loss)
  resnet18_E_train, vgg16_bn_M_train
                                   train mode (delineation / autoencoders: batch statistics; the running statistics
                                   are updated by the output's forward, then the target's)
  <case>_output, <case>_target     the two images, 2 x 3 x 48 x 48 in [0, 1] (drawn again until PyTorch's float32
                                   gradient agrees with its float64 one within 1e-5 of its largest element: no ReLU or
                                   max-pool decision at a rounding knife-edge)
  <case>_loss                      F.mse_loss(net(output), net(target)) with the target's features under no_grad
  <case>_grad                      d loss / d output
  <case>_running_mean_<k>, _running_var_<k>
                                   (train cases) the k-th BatchNorm's running statistics after the two forwards
"""
import copy
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reflib import randomise_bn, save_npy, torchvision_state_dict, truncated_lossnet  # noqa: E402

torch.set_num_threads(1)
out = sys.argv[1]
os.makedirs(out, exist_ok=True)

CASES = [("vgg16", 3, "E", "eval"), ("resnet18", 7, "L", "eval"), ("resnet18", 2, "E", "train"),
         ("vgg16_bn", 22, "M", "train")]
def truncated(arch, upto, gen):
    net = truncated_lossnet(arch, upto)
    randomise_bn(net, gen, 0.2, 7)
    return net, torchvision_state_dict(net)


torch.manual_seed(5)   # torchvision's initialisation draws from the global generator
gen = torch.Generator().manual_seed(5)
rng = np.random.RandomState(5)
for arch, upto, layer, mode in CASES:
    case = "%s_%s_%s" % (arch, layer, mode)
    net, sd = truncated(arch, upto, gen)
    torch.save(sd, os.path.join(out, case + ".pth"))
    for p in net.parameters():
        p.requires_grad_(False)
    net.train(mode == "train")
    net64 = copy.deepcopy(net).double()

    def run(n, o, t, dtype):
        x = torch.from_numpy(o).to(dtype).requires_grad_()
        fx = n(x)
        with torch.no_grad():
            ft = n(torch.from_numpy(t).to(dtype))
        loss = F.mse_loss(fx, ft)
        loss.backward()
        return loss, x.grad

    # images whose float32 gradient is within 1e-5 (of its largest element) of the float64 one everywhere: an input that puts a ReLU input within float32
    # rounding of 0 flips that ReLU in some float32 implementations and not in others (0.5% of the gradient for one
    # element of vgg16_bn M), which would test rounding luck, not the gradient
    for attempt in range(20):
        o = rng.rand(2, 3, 48, 48).astype(np.float32)
        t = rng.rand(2, 3, 48, 48).astype(np.float32)
        state = copy.deepcopy(net.state_dict())
        loss, grad = run(net, o, t, torch.float32)
        _, grad64 = run(copy.deepcopy(net64), o, t, torch.float64)
        if float((grad.double() - grad64).abs().max() / grad64.abs().max()) < 1e-5:
            break
        net.load_state_dict(state)   # undo the running-statistics update of the rejected attempt
    else:
        raise SystemExit("no input without a float32 rounding flip for " + case)
    save_npy(out, case + "_output", o)
    save_npy(out, case + "_target", t)
    save_npy(out, case + "_loss", loss.detach().numpy())
    save_npy(out, case + "_grad", grad.numpy())
    if mode == "train":
        bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
        for k, m in enumerate(bns):
            save_npy(out, "%s_running_mean_%d" % (case, k), m.running_mean.numpy())
            save_npy(out, "%s_running_var_%d" % (case, k), m.running_var.numpy())
with open(os.path.join(out, "ok"), "w") as f:
    f.write("ok\n")

#!/usr/bin/env python3
"""PyTorch / numpy side of tests/lua/test_delineation.lua: the road delineation U-Net as a PyTorch module (the module
lua/dpl/models/unet.lua mirrors, with the reference code's state_dict names), its forward and backward, two training
steps of the full K = 3 loss, and the delineation scores (strict and relaxed).

Usage:
  delineation_ref.py OUTDIR make      writes (float32 .npy unless said):
      unet.pth, keys.txt                  a PyTorch-initialised U-Net (torch.manual_seed(0)), BatchNorm statistics and
                                          affine parameters randomised, saved with torch.save; its state_dict keys;
                                          wrapped.t7: the same as {"net": state_dict}, as the reference saves it
      x.npy, g.npy                        an input 2 x 4 x 32 x 32 in [0, 1] and a gradient for the output
      eval.npy, train.npy                 the outputs in eval and train mode
      grad_x.npy, grad_<param>.npy        train mode: the gradients of sum(y * g) w.r.t. the input and every parameter
      refine_3.npy                        train mode, K = 3 refinement of the RGB part of x: the third map
      parity_<arch>_<layer>_*             training parity: loss network weights (loss.pth), the U-Net's initial weights
                                          (init.pth), 2 batches (rgb_k 2 x 3 x 32 x 32, mask_k 2 x 1 x 32 x 32 in {0,1}),
                                          the loss, its BCE and perceptual parts at each of 2 Adam(1e-3) steps of the
                                          K = 3, mu = 0.5 loss with the loss network in training mode and ImageNet
                                          normalisation (losses, bce, mse), the final U-Net state (final_*) and the
                                          loss network's final batch-norm statistics (lossnet_*) of a float64 run, and
                                          the final U-Net state of PyTorch's float32 run (final32_*)
  delineation_ref.py OUTDIR metrics   reads OUTDIR/metric_cases.txt (lines: id, pred .npy, gt .npy, tolerance) and
                                          writes OUTDIR/metric_expected.txt (id, measure, value) with numpy: the strict
                                          scores (pred > float32(0.3), gt > float32(0.5)) and the relaxed ones
                                          (Wiedemann et al.: a pixel is matched when the other map has a pixel within
                                          Euclidean distance tolerance)
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


class Block(nn.Module):
    """ReLU -> conv 4x4 s2 p1 (or its transpose), no bias -> BatchNorm2d: the reference's blockUNet (dropout 0)"""

    def __init__(self, cin, cout, name, transposed=False):
        super().__init__()
        self.layer = nn.Sequential()
        self.layer.add_module(name + "_relu", nn.ReLU(inplace=True))
        if transposed:
            self.layer.add_module(name + "_tconv", nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False))
        else:
            self.layer.add_module(name + "_conv", nn.Conv2d(cin, cout, 4, 2, 1, bias=False))
        self.layer.add_module(name + "_bn", nn.BatchNorm2d(cout))

    def forward(self, x):
        return self.layer(x)


class UNet(nn.Module):
    """The reference's U-Net: in-place ReLUs on the stored block outputs, so the skips carry activated tensors"""

    def __init__(self, nf=4):
        super().__init__()
        self.d1 = Block(nf, nf * 2, "down_1")
        self.d2 = Block(nf * 2, nf * 4, "down_2")
        self.d3 = Block(nf * 4, nf * 8, "down_3")
        self.d4 = Block(nf * 8, nf * 8, "down_4")
        self.u1 = Block(nf * 8, nf * 8, "up_4", True)
        self.u2 = Block(nf * 16, nf * 4, "up_3", True)
        self.u3 = Block(nf * 8, nf * 2, "up_2", True)
        self.u4 = Block(nf * 4, 1, "up_1", True)

    def forward(self, x):
        x = x.clone()   # the first in-place ReLU would otherwise change the caller's tensor
        x1 = self.d1(x)
        x2 = self.d2(x1)
        x3 = self.d3(x2)
        x4 = self.d4(x3)
        x = self.u1(x4)
        x = self.u2(torch.cat([x, x3], 1))
        x = self.u3(torch.cat([x, x2], 1))
        x = self.u4(torch.cat([x, x1], 1))
        return torch.sigmoid(x)


def refine(net, rgb, K):
    y = torch.zeros(rgb.shape[0], 1, rgb.shape[2], rgb.shape[3], dtype=rgb.dtype)
    maps = []
    for _ in range(K):
        y = net(torch.cat([rgb, y], 1))
        maps.append(y)
    return maps


MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def make(out):
    gen = torch.Generator().manual_seed(1)
    rng = np.random.RandomState(1)
    torch.manual_seed(0)
    net = UNet()
    randomise_bn(net, gen, 0.1, 3)
    torch.save(net.state_dict(), os.path.join(out, "unet.pth"))
    torch.save({"net": net.state_dict()}, os.path.join(out, "wrapped.t7"))   # as the reference's training script saves
    with open(os.path.join(out, "keys.txt"), "w") as f:
        f.write("\n".join(net.state_dict().keys()) + "\n")
    x = rng.rand(2, 4, 32, 32).astype(np.float32)
    g = rng.randn(2, 1, 32, 32).astype(np.float32)
    save_npy(out, "x", x)
    save_npy(out, "g", g)
    net.eval()
    with torch.no_grad():
        save_npy(out, "eval", net(torch.from_numpy(x)).numpy())
    net.train()
    xt = torch.from_numpy(x).requires_grad_()
    y = net(xt)
    save_npy(out, "train", y.detach().numpy())
    (y * torch.from_numpy(g)).sum().backward()
    save_npy(out, "grad_x", xt.grad.numpy())
    for k, p in net.named_parameters():
        save_npy(out, "grad_" + k, p.grad.numpy())
    net.load_state_dict(torch.load(os.path.join(out, "unet.pth")))
    with torch.no_grad():
        save_npy(out, "refine_3", refine(net, torch.from_numpy(x[:, :3]), 3)[2].numpy())

    # training parity: 2 Adam steps of the K = 3 loss with a loss network in training mode, float64 (exact) and float32
    K, mu = 3, 0.5
    for arch, upto, layer in (("vgg16", 15, "M"), ("resnet18", 5, "M")):
        p = "parity_%s_%s_" % (arch, layer)
        torch.manual_seed(2)
        lnet = truncated_lossnet(arch, upto)
        randomise_bn(lnet, gen, 0.1, 0)
        lsd = torchvision_state_dict(lnet)
        torch.save(lsd, os.path.join(out, p + "loss.pth"))
        torch.manual_seed(3)
        init = UNet().state_dict()
        torch.save(init, os.path.join(out, p + "init.pth"))
        batches = [(rng.rand(2, 3, 32, 32).astype(np.float32), (rng.rand(2, 1, 32, 32) > 0.7).astype(np.float32))
                   for _ in range(2)]
        for k, (rgb, mask) in enumerate(batches):
            save_npy(out, p + "rgb_%d" % k, rgb)
            save_npy(out, p + "mask_%d" % k, mask)
        for dtype, tag in ((torch.float64, "final_"), (torch.float32, "final32_")):
            net = UNet()
            net.load_state_dict(init)
            ln = copy.deepcopy(lnet)
            for q in ln.parameters():
                q.requires_grad_(False)
            net, ln = net.to(dtype).train(), ln.to(dtype).train()
            mean = torch.tensor(MEAN, dtype=dtype).view(1, 3, 1, 1)
            std = torch.tensor(STD, dtype=dtype).view(1, 3, 1, 1)

            def feats(m):
                return ln((torch.cat([m, m, m], 1) - mean) / std)

            opt = torch.optim.Adam(net.parameters(), lr=1e-3)
            losses, bces, mses = [], [], []
            for rgb, mask in batches:
                opt.zero_grad()
                rgb_t, y = torch.from_numpy(rgb).to(dtype), torch.from_numpy(mask).to(dtype)
                maps = refine(net, rgb_t, K)
                fm = [feats(m) for m in maps]   # the reference's order: the K maps, then the target
                ft = feats(y)
                coeff = K * (K + 1) / 2
                bce = sum((i + 1) * F.binary_cross_entropy(maps[i], y) for i in range(K)) / coeff
                mse = sum((i + 1) * F.mse_loss(fm[i], ft) for i in range(K)) / coeff
                loss = bce + mu * mse
                loss.backward()
                opt.step()
                losses.append(loss.item())
                bces.append(bce.item())
                mses.append(mse.item())
            if dtype == torch.float64:
                save_npy(out, p + "losses", losses)
                save_npy(out, p + "bce", bces)
                save_npy(out, p + "mse", mses)
                for k, v in torchvision_state_dict(ln).items():
                    if "running_" in k:
                        save_npy(out, p + "lossnet_" + k, v.numpy())
            for k, v in net.state_dict().items():
                save_npy(out, p + tag + k, v.numpy())
    with open(os.path.join(out, "ok"), "w") as f:
        f.write("ok\n")


# ---- scores ----------------------------------------------------------------------------------------------------------
def dilate(m, tol):
    """m (bool H x W) grown by a disk of radius tol (Euclidean distance <= tol)"""
    if tol <= 0:
        return m.copy()
    h, w = m.shape
    out = np.zeros_like(m)
    r = int(np.floor(tol))
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dy * dy + dx * dx > tol * tol:
                continue
            src = m[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
            out[max(0, dy):h - max(0, -dy), max(0, dx):w - max(0, -dx)] |= src
    return out


def div(a, b):
    return a / b if b > 0 else float("nan")


def scores(pred, gt, tol):
    p = pred.reshape(pred.shape[-2:]) > np.float32(0.3)
    g = gt.reshape(gt.shape[-2:]) > np.float32(0.5)
    tp, fp, fn = int((p & g).sum()), int((p & ~g).sum()), int((~p & g).sum())
    out = {"completeness": div(tp, tp + fn), "correctness": div(tp, tp + fp), "quality": div(tp, tp + fp + fn)}
    matched_gt = int((g & dilate(p, tol)).sum())
    matched_pred = int((p & dilate(g, tol)).sum())
    npred, ngt = int(p.sum()), int(g.sum())
    out["relaxed_completeness"] = div(matched_gt, ngt)
    out["relaxed_correctness"] = div(matched_pred, npred)
    out["relaxed_quality"] = div(matched_pred, npred + ngt - matched_gt)
    return out


def metrics(out):
    lines = []
    for line in open(os.path.join(out, "metric_cases.txt")):
        cid, pred, gt, tol = line.rstrip("\n").split("\t")
        s = scores(np.load(pred), np.load(gt), float(tol))
        for k, v in s.items():
            lines.append("%s\t%s\t%.17g" % (cid, k, v))
    with open(os.path.join(out, "metric_expected.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    os.makedirs(sys.argv[1], exist_ok=True)
    if sys.argv[2] == "make":
        make(sys.argv[1])
    else:
        metrics(sys.argv[1])

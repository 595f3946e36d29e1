#!/usr/bin/env python3
"""PyTorch side of tests/lua/test_superres.lua: the super-resolution transformation network as a PyTorch module
(the module dpl's lua/dpl/models/superres.lua mirrors, with the same state_dict names), checkpoints in both
directions, and training parity.

Usage:
  superres_ref.py OUTDIR make           writes, as float32 .npy / torch.save files:
      x4.pth, x8.pth                      a PyTorch-initialised network (torch.manual_seed(0)), BatchNorm running
                                          statistics and affine parameters randomised, saved with torch.save
      keys_x4.txt, keys_x8.txt            state_dict keys in order
      lr.npy                              an input, 2 x 3 x 12 x 12 in [0, 1]
      x4_eval.npy, x8_eval.npy            the eval-mode outputs, x4_train.npy the train-mode output of x4.pth
      parity_<arch>_<layer>_*             training parity: loss network weights (loss.pth), the SR network's initial
                                          weights (init.pth), 3 batches (lr_k, hr_k: 2 x 3 x 16 x 16 -> 64 x 64), the
                                          loss at each Adam(1e-3) step (losses) and the final state_dict (final_*.npy)
                                          of a float64 run, and the final state_dict of PyTorch's float32 run
                                          (final32_*.npy)
  superres_ref.py OUTDIR pairs         writes image.png (a smooth random 8-bit RGB image, 301 x 247) and the
                                          training pair of the benchmark made with Pillow and torchvision:
                                          pair_hr_4 (Resize(288) + CenterCrop(288)), pair_lr_4 / pair_lr_8 (Pillow
                                          GaussianBlur(1), then Resize(72 or 36, BICUBIC) + CenterCrop)
  superres_ref.py OUTDIR read FILE      reads a safetensors file dpl wrote (numpy only: the safetensors package is not
                                          needed), loads it into the PyTorch module with strict=True and writes the
                                          eval-mode output for lr.npy to OUTDIR/from_dpl.npy
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reflib import randomise_bn, save_npy, torchvision_state_dict, truncated_lossnet  # noqa: E402

torch.set_num_threads(1)


class ConvLayer(nn.Module):
    """reflection pad k//2 -> conv (bias) -> BatchNorm2d -> activation (relu, tanh or linear)"""

    def __init__(self, cin, cout, k, stride=1, activation="relu"):
        super().__init__()
        self.pad = nn.ReflectionPad2d(k // 2)
        self.conv_layer = nn.Conv2d(cin, cout, k, stride)
        self.act = activation
        if activation == "relu":
            self.activation = nn.ReLU()
        elif activation == "tanh":
            self.activation = nn.Tanh()
        self.normalization = nn.BatchNorm2d(cout)

    def forward(self, x):
        x = self.normalization(self.conv_layer(self.pad(x)))
        return self.activation(x) if self.act != "linear" else x


class ResidualLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = ConvLayer(c, c, 3, 1, "relu")
        self.conv2 = ConvLayer(c, c, 3, 1, "linear")

    def forward(self, x):
        return self.conv2(self.conv1(x)) + x


class DeconvLayer(nn.Module):
    """nearest x2 upsample -> reflection pad 1 -> conv 3x3 -> BatchNorm2d -> ReLU"""

    def __init__(self, cin, cout):
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.conv = nn.Conv2d(cin, cout, 3, 1)
        self.activation = nn.ReLU()
        self.normalization = nn.BatchNorm2d(cout)

    def forward(self, x):
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.activation(self.normalization(self.conv(self.pad(x))))


class SuperResNet(nn.Module):
    def __init__(self, scale=4):
        super().__init__()
        ups = {4: 2, 8: 3}[scale]
        blocks = [ConvLayer(3, 64, 9)] + [ResidualLayer(64) for _ in range(4)]
        blocks += [DeconvLayer(64, 64) for _ in range(ups)] + [ConvLayer(64, 3, 9, 1, "tanh")]
        self.layers = nn.Sequential(*blocks)

    def forward(self, x):
        return (self.layers(x) + 1) / 2


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        lo, hi = info["data_offsets"]
        dtype = {"F32": "<f4", "I64": "<i8"}[info["dtype"]]
        a = np.frombuffer(raw[8 + n + lo:8 + n + hi], dtype=dtype).reshape(info["shape"])
        out[name] = torch.from_numpy(a.copy())
    return out


def loss_net(arch, upto):
    net = truncated_lossnet(arch, upto).eval()
    sd = torchvision_state_dict(net)
    for p in net.parameters():
        p.requires_grad_(False)
    return net, sd


def make(out):
    gen = torch.Generator().manual_seed(1)
    rng = np.random.RandomState(1)
    lr = rng.rand(2, 3, 12, 12).astype(np.float32)
    save_npy(out, "lr", lr)
    for scale in (4, 8):
        torch.manual_seed(0)
        net = SuperResNet(scale)
        randomise_bn(net, gen, 0.1, 3)
        torch.save(net.state_dict(), os.path.join(out, "x%d.pth" % scale))
        with open(os.path.join(out, "keys_x%d.txt" % scale), "w") as f:
            f.write("\n".join(net.state_dict().keys()) + "\n")
        net.eval()
        with torch.no_grad():
            save_npy(out, "x%d_eval" % scale, net(torch.from_numpy(lr)).numpy())
        if scale == 4:
            net.train()
            with torch.no_grad():
                save_npy(out, "x4_train", net(torch.from_numpy(lr)).numpy())

    # training parity: 3 Adam steps of the x4 network with a vgg16-E and a resnet18-L loss, run in float64 (the exact
    # result the float32 runs approximate; PyTorch's own float32 run is saved too, as final32_*, to show its spread)
    for arch, upto, layer in (("vgg16", 3, "E"), ("resnet18", 7, "L")):
        p = "parity_%s_%s_" % (arch, layer)
        torch.manual_seed(2)
        lnet, lsd = loss_net(arch, upto)
        torch.save(lsd, os.path.join(out, p + "loss.pth"))
        torch.manual_seed(3)
        net = SuperResNet(4)
        init = net.state_dict()
        torch.save(init, os.path.join(out, p + "init.pth"))
        batches = [(rng.rand(2, 3, 16, 16).astype(np.float32), rng.rand(2, 3, 64, 64).astype(np.float32))
                   for _ in range(3)]
        for k, (lrb, hrb) in enumerate(batches):
            save_npy(out, p + "lr_%d" % k, lrb)
            save_npy(out, p + "hr_%d" % k, hrb)
        for dtype, tag in ((torch.float64, "final_"), (torch.float32, "final32_")):
            net = SuperResNet(4)
            net.load_state_dict(init)
            net, ln = net.to(dtype), lnet.to(dtype)
            opt = torch.optim.Adam(net.parameters(), lr=1e-3)
            losses = []
            for lrb, hrb in batches:
                opt.zero_grad()
                fx = ln(net(torch.from_numpy(lrb).to(dtype)))
                with torch.no_grad():
                    ft = ln(torch.from_numpy(hrb).to(dtype))
                loss = F.mse_loss(fx, ft)
                loss.backward()
                opt.step()
                losses.append(loss.item())
            save_npy(out, p + ("losses" if dtype == torch.float64 else "losses32"), losses)
            for k, v in net.state_dict().items():
                save_npy(out, p + tag + k, v.numpy())
    with open(os.path.join(out, "ok"), "w") as f:
        f.write("ok\n")


def read(out, path):
    sd = read_safetensors(path)
    scale = 8 if any(k.startswith("layers.8.") for k in sd) else 4
    net = SuperResNet(scale)
    net.load_state_dict(sd, strict=True)
    net.eval()
    lr = torch.from_numpy(np.load(os.path.join(out, "lr.npy")))
    with torch.no_grad():
        save_npy(out, "from_dpl", net(lr).numpy())


def pairs(out):
    from PIL import Image, ImageFilter
    import torchvision.transforms as T
    rng = np.random.RandomState(4)
    small = rng.rand(20, 16, 3)
    img = Image.fromarray((small * 255).astype(np.uint8)).resize((301, 247), Image.BICUBIC)
    img.save(os.path.join(out, "image.png"))
    img = Image.open(os.path.join(out, "image.png")).convert("RGB")
    hr = T.Compose([T.Resize(288), T.CenterCrop(288), T.ToTensor()])(img)
    save_npy(out, "pair_hr_4", hr.numpy())
    blurred = img.filter(ImageFilter.GaussianBlur(1))
    for f in (4, 8):
        lr = T.Compose([T.Resize(288 // f, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(288 // f),
                        T.ToTensor()])(blurred)
        save_npy(out, "pair_lr_%d" % f, lr.numpy())


if __name__ == "__main__":
    os.makedirs(sys.argv[1], exist_ok=True)
    if sys.argv[2] == "make":
        make(sys.argv[1])
    elif sys.argv[2] == "pairs":
        pairs(sys.argv[1])
    else:
        read(sys.argv[1], sys.argv[3])

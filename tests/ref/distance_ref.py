#!/usr/bin/env python3
"""PyTorch references for tests/lua/test_distance.lua (examples/distance.lua and dpl.perceptual's maps and gradients):
LPIPS v0.1 and v0.0 as the lpips package computes them (lpips/lpips.py: inputs [0,1] -> [-1,1]; v0.1 through the
ScalingLayer, v0.0 without it; features unit-normalised with eps 1e-10; squared differences through the 1x1 linear
layers; spatial average, or with spatial=True each layer's map upsampled bilinearly (align_corners=False) to the image
size and summed), and the paper's distance (docs/benchmarks/bapps.md), written here from their definitions with
torchvision backbones and LPIPS's real linear layers (no lpips package is imported).

Usage: distance_ref.py OUTDIR SHARED_DATA_DIR

Writes in OUTDIR:
  dir0/, dir1/      PNG pairs by file name, of different sizes (non-square): dir1/x is dir0/x distorted; dir0 also
                    holds only0.png, which dir1 lacks
  same/             four 40 x 56 crops (for --all-pairs)
  ARCH.pth          seeded random `features` state_dicts of alexnet, vgg16 and squeezenet1_1 (torch.save)
  ref.json          {"dirs": {"lpips-NET-vV": {name: d}}, "allpairs": {"lpips-alex-v0.1": {"a|b": d},
                     "paper-alexnet-E+M": {...}}, "paper": {"vgg16-S": {name: d}, "alexnet-E+M": {name: d}}}
  spatial_lpips_alex.npy   1 x 1 x H x W: LPIPS v0.1 alex spatial map of dir0/b.png vs dir1/b.png
  spatial_paper_vgg16.npy  1 x 1 x H x W: the paper distance's map (vgg16, layers S and M) of the same pair
  grad_lpips_alex.npy      1 x 3 x H x W: d LPIPS v0.1 alex (a, b) / d a for the same pair
"""
import io
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter

import reflib

out, data = sys.argv[1], sys.argv[2]
torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
for d in ("dir0", "dir1", "same"):
    os.makedirs(os.path.join(out, d), exist_ok=True)

hr = Image.open(os.path.join(data, "Set5/image_SRF_4/img_002_SRF_4_HR.png")).convert("RGB")
rng = np.random.RandomState(7)


def distort(im, k):
    if k == 0:
        return im.filter(ImageFilter.GaussianBlur(1.5))
    if k == 1:
        a = np.asarray(im).astype(np.float32) + rng.normal(0, 12, (im.size[1], im.size[0], 3))
        return Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=15)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


# (name, box (left, top, right, bottom)): non-square, one odd size
CROPS = [("a.png", (10, 20, 66, 60)), ("b.png", (100, 80, 148, 144)), ("c.png", (30, 150, 83, 187))]
for k, (name, box) in enumerate(CROPS):
    im = hr.crop(box)
    im.save(os.path.join(out, "dir0", name))
    distort(im, k).save(os.path.join(out, "dir1", name))
hr.crop((0, 0, 50, 50)).save(os.path.join(out, "dir0", "only0.png"))
SAME = ["p%d.png" % i for i in range(4)]
for i, name in enumerate(SAME):
    im = hr.crop((20 * i, 10 + 15 * i, 20 * i + 56, 50 + 15 * i))
    (im if i == 0 else distort(im, i - 1)).save(os.path.join(out, "same", name))


def load(path):
    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)[None]


features = {arch: reflib.seeded_features(arch, 900 + i, 950 + i, os.path.join(out, arch + ".pth"))
            for i, arch in enumerate(["alexnet", "vgg16", "squeezenet1_1"])}


def run(arch, x, layers):
    return reflib.children_outputs(features[arch], x, layers)


LPIPS = {"alex": ("alexnet", [1, 4, 7, 9, 11]), "vgg": ("vgg16", [3, 8, 15, 22, 29]),
         "squeeze": ("squeezenet1_1", [1, 4, 7, 9, 10, 11, 12])}
SHIFT = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
SCALE = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
LIN = {}


def lpips(net, version, a, b, spatial=False):
    arch, layers = LPIPS[net]
    key = (net, version)
    if key not in LIN:
        LIN[key] = torch.load(os.path.join(data, "LPIPS/weights/v%s/%s.pth" % (version, net)), map_location="cpu")
    a, b = a * 2 - 1, b * 2 - 1
    if version == "0.1":
        a, b = (a - SHIFT) / SCALE, (b - SHIFT) / SCALE
    fa, fb = run(arch, a, layers), run(arch, b, layers)
    d = 0
    for k, (x, y) in enumerate(zip(fa, fb)):
        nx = x / (torch.sqrt((x ** 2).sum(1, keepdim=True)) + 1e-10)
        ny = y / (torch.sqrt((y ** 2).sum(1, keepdim=True)) + 1e-10)
        m = F.conv2d((nx - ny) ** 2, LIN[key]["lin%d.model.1.weight" % k])
        if spatial:
            d = d + F.interpolate(m, size=a.shape[2:], mode="bilinear", align_corners=False)
        else:
            d = d + m.mean((2, 3), keepdim=True)
    return d


def paper(arch, layers, a, b, spatial=False):
    fa, fb = run(arch, (a - MEAN) / STD, layers), run(arch, (b - MEAN) / STD, layers)
    d = 0
    for x, y in zip(fa, fb):
        m = ((F.normalize(x, dim=1) - F.normalize(y, dim=1)) ** 2).sum(1, keepdim=True)
        d = d + (F.interpolate(m, size=a.shape[2:], mode="bilinear", align_corners=False) if spatial
                 else m.mean((2, 3), keepdim=True))
    return d


ref = {"dirs": {}, "allpairs": {}, "paper": {}}
names = [c[0] for c in CROPS]
with torch.no_grad():
    pairs = {n: (load(os.path.join(out, "dir0", n)), load(os.path.join(out, "dir1", n))) for n in names}
    for net in LPIPS:
        for version in ("0.1", "0.0"):
            ref["dirs"]["lpips-%s-v%s" % (net, version)] = {n: float(lpips(net, version, *pairs[n])) for n in names}
    # alexnet E (features.1) + M (features.7); vgg16 S (features.8)
    ref["paper"]["alexnet-E+M"] = {n: float(paper("alexnet", [1, 7], *pairs[n])) for n in names}
    ref["paper"]["vgg16-S"] = {n: float(paper("vgg16", [8], *pairs[n])) for n in names}
    imgs = {n: load(os.path.join(out, "same", n)) for n in SAME}
    for key, fn in (("lpips-alex-v0.1", lambda a, b: lpips("alex", "0.1", a, b)),
                    ("paper-alexnet-E+M", lambda a, b: paper("alexnet", [1, 7], a, b))):
        ref["allpairs"][key] = {"%s|%s" % (SAME[i], SAME[j]): float(fn(imgs[SAME[i]], imgs[SAME[j]]))
                                for i in range(len(SAME)) for j in range(i + 1, len(SAME))}
    a, b = pairs["b.png"]
    np.save(os.path.join(out, "spatial_lpips_alex.npy"), lpips("alex", "0.1", a, b, spatial=True).numpy())
    np.save(os.path.join(out, "spatial_paper_vgg16.npy"), paper("vgg16", [8, 15], a, b, spatial=True).numpy())
a, b = pairs["b.png"]
a = a.clone().requires_grad_(True)
lpips("alex", "0.1", a, b).sum().backward()
np.save(os.path.join(out, "grad_lpips_alex.npy"), a.grad.numpy())
with open(os.path.join(out, "ref.json"), "w") as f:
    json.dump(ref, f, indent=1)
print("ok")

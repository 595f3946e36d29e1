#!/usr/bin/env python3
"""PyTorch references for tests/lua/test_perceptual.lua: the paper's distance (docs/benchmarks/bapps.md) and LPIPS,
written here from their definitions with torchvision backbones (no lpips package is imported).

Usage: lpips_ref.py OUTDIR SHARED_DATA_DIR

Writes in OUTDIR:
  images.npy              the three LPIPS example patches (ex_ref, ex_p0, ex_p1), 3 x 3 x 64 x 64 in [0,1] (PIL RGB)
  crops.npy               2 x 3 x 40 x 56 crops of Set5 baby (HR) and of its x4 LR upsampled (a non-square pair)
  ARCH.pth                a seeded random state_dict of the `features` of alexnet, vgg16 and squeezenet1_1
                          (torchvision init under torch.manual_seed, biases random) saved with torch.save
  base_ARCH.npy           5 x 3: the baseline distance (ImageNet normalisation, F.normalize, squared difference summed
                          over channels, averaged over space) of the pairs (ref,p0), (ref,p1), (p0,p1) at the E, S, M, L
                          layers and, in row 5, summed over E+S+M+L
  base_crops_ARCH.npy     2: the baseline distance at M of the crops pair and of (crop, crop) (zero)
  lpips_NET.npy           3: LPIPS v0.1 (alex, vgg, squeeze) of the same pairs with the seeded backbone and LPIPS's real
                          linear layers (SHARED_DATA_DIR/LPIPS/weights/v0.1/NET.pth)
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import reflib

out, data = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))

ARCHS = {"alexnet": [1, 4, 7, 11], "vgg16": [3, 8, 15, 29], "squeezenet1_1": [1, 3, 7, 12]}
LPIPS = {"alex": ("alexnet", [1, 4, 7, 9, 11]), "vgg": ("vgg16", [3, 8, 15, 22, 29]),
         "squeeze": ("squeezenet1_1", [1, 4, 7, 9, 10, 11, 12])}


def load(path):
    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)


imgs = torch.stack([load(os.path.join(data, "BAPPS/imgs/ex_%s.png" % n)) for n in ("ref", "p0", "p1")])
np.save(os.path.join(out, "images.npy"), imgs.numpy())
hr = load(os.path.join(data, "Set5/image_SRF_4/img_001_SRF_4_HR.png"))
lr = load(os.path.join(data, "Set5/image_SRF_4/img_001_SRF_4_LR.png"))
lr_up = F.interpolate(lr[None], scale_factor=4, mode="bilinear", align_corners=False)[0].clamp(0, 1)
crops = torch.stack([hr[:, 200:240, 180:236], lr_up[:, 200:240, 180:236]]).contiguous()
np.save(os.path.join(out, "crops.npy"), crops.numpy())
PAIRS = [(0, 1), (0, 2), (1, 2)]

features = {arch: reflib.seeded_features(arch, 500 + i, 600 + i, os.path.join(out, arch + ".pth"))
            for i, arch in enumerate(ARCHS)}


def run(arch, x, layers):
    """outputs of the children of `features` at the given 0-based indices"""
    return reflib.children_outputs(features[arch], x, layers)


MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def base_dist(arch, a, b, layers):
    fa, fb = run(arch, (a - MEAN) / STD, layers), run(arch, (b - MEAN) / STD, layers)
    d = 0
    for x, y in zip(fa, fb):
        d = d + ((F.normalize(x, dim=1) - F.normalize(y, dim=1)) ** 2).sum(1).mean((1, 2))
    return d


with torch.no_grad():
    for arch, layers in ARCHS.items():
        a = imgs[[p[0] for p in PAIRS]]
        b = imgs[[p[1] for p in PAIRS]]
        rows = [base_dist(arch, a, b, [l]) for l in layers] + [base_dist(arch, a, b, layers)]
        np.save(os.path.join(out, "base_%s.npy" % arch), torch.stack(rows).numpy())
        c = base_dist(arch, crops[[0, 0]], crops[[1, 0]], [layers[2]])
        np.save(os.path.join(out, "base_crops_%s.npy" % arch), c.numpy())

    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    for net, (arch, layers) in LPIPS.items():
        lin = torch.load(os.path.join(data, "LPIPS/weights/v0.1/%s.pth" % net), map_location="cpu")
        a = imgs[[p[0] for p in PAIRS]] * 2 - 1
        b = imgs[[p[1] for p in PAIRS]] * 2 - 1
        fa, fb = run(arch, (a - shift) / scale, layers), run(arch, (b - shift) / scale, layers)
        d = 0
        for k, (x, y) in enumerate(zip(fa, fb)):
            nx = x / (torch.sqrt((x ** 2).sum(1, keepdim=True)) + 1e-10)
            ny = y / (torch.sqrt((y ** 2).sum(1, keepdim=True)) + 1e-10)
            w = lin["lin%d.model.1.weight" % k]
            d = d + F.conv2d((nx - ny) ** 2, w).mean((2, 3)).view(-1)
        np.save(os.path.join(out, "lpips_%s.npy" % net), d.numpy())
print("ok")

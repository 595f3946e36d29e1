#!/usr/bin/env python3
"""References for the ImageNet SqueezeNet 1.1 of shared/data/SqueezeNet1.1 in tests/lua/test_lossnets.lua.

Usage: squeezenet_real_ref.py SHARED_DATA OUTDIR

Loads the Gluon-named per-tensor .npy weights into torchvision 0.14's squeezenet1_1 with the key map of
shared/data/SOURCES.md (strictly: every key, nothing else), then for Set14 monarch (img_011), pepper (img_012) and
zebra (img_014) writes, in OUTDIR:
  <img>_input.npy     the image as torchvision's classification preprocessing makes it, before normalisation:
                      Resize(256) (shorter side, PIL bilinear), CenterCrop(224), to [0, 1]; 1 x 3 x 224 x 224 float32
  <img>_logits.npy    the full model's eval logits on the ImageNet-normalised input, 1 x 1000
  <img>_features.npy  the L loss network's output (features children 0..12) on the normalised input
  <img>_class.txt     torchvision's top-1 class
"""
import os
import sys

import numpy as np
import torch
import torchvision
from PIL import Image

torch.set_num_threads(1)
data, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
wdir = os.path.join(data, "SqueezeNet1.1", "squeezenet1.1_nchw", "weights")

conv = {"conv0": "features.0", "conv25": "classifier.1"}
fire_at = [3, 4, 6, 7, 9, 10, 11, 12]
for i in range(8):
    base = "features.%d" % fire_at[i]
    conv["conv%d" % (3 * i + 1)] = base + ".squeeze"
    conv["conv%d" % (3 * i + 2)] = base + ".expand1x1"
    conv["conv%d" % (3 * i + 3)] = base + ".expand3x3"
sd = {}
for g, tv in conv.items():
    for kind in ("weight", "bias"):
        sd[tv + "." + kind] = torch.from_numpy(np.load(os.path.join(wdir, "squeezenet0_%s_%s.npy" % (g, kind))))
model = torchvision.models.squeezenet1_1(weights=None)
model.load_state_dict(sd)  # strict
model.eval()

pre = torchvision.transforms.Compose([torchvision.transforms.Resize(256), torchvision.transforms.CenterCrop(224),
                                      torchvision.transforms.ToTensor()])
norm = torchvision.transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
for img in ("img_011", "img_012", "img_014"):
    im = Image.open(os.path.join(data, "Set14", "image_SRF_4", img + "_SRF_4_HR.png")).convert("RGB")
    x = pre(im).unsqueeze(0)
    with torch.no_grad():
        xn = norm(x)
        logits = model(xn)
        feats = model.features(xn)
    np.save(os.path.join(out, img + "_input.npy"), x.numpy())
    np.save(os.path.join(out, img + "_logits.npy"), logits.numpy())
    np.save(os.path.join(out, img + "_features.npy"), feats.numpy())
    with open(os.path.join(out, img + "_class.txt"), "w") as f:
        f.write("%d\n" % int(logits.argmax()))
print("ok")

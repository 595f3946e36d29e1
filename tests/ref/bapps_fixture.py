#!/usr/bin/env python3
"""Builds a small BAPPS-format tree from real images, for tests/lua/test_bapps.lua (needs only numpy and Pillow).

Usage: bapps_fixture.py OUTDIR SHARED_DATA_DIR [TRIPLETS_PER_SUBSET] [PAIRS_PER_JND_SUBSET]

Layout (LPIPS's tarballs; spec/benchmarks.md 1.1):
  OUTDIR/2afc/val/{traditional,cnn,superres,deblur,color,frameinterp}/{ref,p0,p1}/NNNNNN.png, judge/NNNNNN.npy
  OUTDIR/jnd/val/{traditional,cnn}/{p0,p1}/NNNNNN.png, same/NNNNNN.npy
Patches are 64 x 64 RGB: the three LPIPS example patches and crops of the Set5/Set14 HR images (Set14 bridge is
greyscale and becomes RGB). Each p0/p1 is the reference with a known distortion of random strength (Gaussian blur,
noise, JPEG, x4 down/up-sampling, colour shift, a shifted crop). judge (fraction of raters preferring p1, in fifths)
and same (fraction judging the pair identical, in thirds) are seeded random numbers, shaped (1,) float32 as in BAPPS.
"""
import glob
import io
import os
import sys

import numpy as np
from PIL import Image, ImageFilter

out, data = sys.argv[1], sys.argv[2]
n2afc = int(sys.argv[3]) if len(sys.argv) > 3 else 10
njnd = int(sys.argv[4]) if len(sys.argv) > 4 else 12
rng = np.random.RandomState(1234)

sources = [Image.open(p).convert("RGB") for p in sorted(glob.glob(os.path.join(data, "BAPPS/imgs/ex_*.png")))]
big = [Image.open(p).convert("RGB") for p in sorted(glob.glob(os.path.join(data, "Set5/image_SRF_4/*_HR.png")) +
                                                      glob.glob(os.path.join(data, "Set14/image_SRF_4/*_HR.png")))]
if len(sources) != 3 or len(big) != 19:
    sys.exit("bapps_fixture.py: expected the 3 LPIPS patches and 19 Set5/Set14 HR images under " + data)


def crop(img, dx=0, dy=0):
    w, h = img.size
    x, y = rng.randint(0, w - 72), rng.randint(0, h - 72)
    return img.crop((x + 4 + dx, y + 4 + dy, x + 68 + dx, y + 68 + dy)), (img, x, y)


def patch():
    if rng.rand() < 0.15:
        return sources[rng.randint(len(sources))].copy(), None
    return crop(big[rng.randint(len(big))])


def distort(p, origin):
    kind = rng.randint(6)
    a = np.asarray(p, dtype=np.float32)
    if kind == 0:
        return p.filter(ImageFilter.GaussianBlur(radius=0.5 + 2.5 * rng.rand()))
    if kind == 1:
        return Image.fromarray(np.clip(a + rng.randn(*a.shape) * (5 + 40 * rng.rand()), 0, 255).astype(np.uint8))
    if kind == 2:
        buf = io.BytesIO()
        p.save(buf, format="JPEG", quality=int(5 + 60 * rng.rand()))
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    if kind == 3:
        return p.resize((16, 16), Image.BICUBIC).resize((64, 64), Image.BILINEAR)
    if kind == 4:
        shift = (rng.rand(3) - 0.5) * 80
        return Image.fromarray(np.clip(a + shift, 0, 255).astype(np.uint8))
    if origin is None:
        return p.transpose(Image.FLIP_LEFT_RIGHT)
    img, x, y = origin
    d = rng.randint(1, 4)
    return img.crop((x + 4 + d, y + 4 + d, x + 68 + d, y + 68 + d))


def save_png(img, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img.save(path)


def save_npy(v, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, np.array([v], dtype=np.float32))


for subset in ["traditional", "cnn", "superres", "deblur", "color", "frameinterp"]:
    d = os.path.join(out, "2afc", "val", subset)
    for i in range(n2afc):
        ref, origin = patch()
        stem = "%06d" % i
        save_png(ref, os.path.join(d, "ref", stem + ".png"))
        save_png(distort(ref, origin), os.path.join(d, "p0", stem + ".png"))
        save_png(distort(ref, origin), os.path.join(d, "p1", stem + ".png"))
        save_npy(rng.randint(0, 6) / 5.0, os.path.join(d, "judge", stem + ".npy"))
for subset in ["traditional", "cnn"]:
    d = os.path.join(out, "jnd", "val", subset)
    for i in range(njnd):
        p0, origin = patch()
        stem = "%06d" % i
        save_png(p0, os.path.join(d, "p0", stem + ".png"))
        save_png(distort(p0, origin), os.path.join(d, "p1", stem + ".png"))
        save_npy(rng.randint(0, 4) / 3.0, os.path.join(d, "same", stem + ".npy"))
print("ok")

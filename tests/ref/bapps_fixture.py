#!/usr/bin/env python3
"""Builds a small BAPPS-format tree from real images, for tests/lua/test_bapps.lua (needs only numpy and Pillow).

Usage: bapps_fixture.py OUTDIR SHARED_DATA_DIR [TRIPLETS_PER_SUBSET] [PAIRS_PER_JND_SUBSET]

Layout (LPIPS's tarballs; docs/benchmarks/bapps.md):
  OUTDIR/2afc/val/{traditional,cnn,superres,deblur,color,frameinterp}/{ref,p0,p1}/NNNNNN.png, judge/NNNNNN.npy
  OUTDIR/jnd/val/{traditional,cnn}/{p0,p1}/NNNNNN.png, same/NNNNNN.npy
Patches are 64 x 64 RGB: the three LPIPS example patches and crops of the Set5/Set14 HR images (Set14 bridge is
greyscale and becomes RGB). Each p0/p1 is the reference with a known distortion of random strength (Gaussian blur,
noise, JPEG, down/up-sampling, colour shift, a shifted crop). judge (fraction of 5 raters preferring p1) and same
(fraction of 3 raters judging the pair identical) are seeded binomial draws that follow the distortion strengths, so
that a good metric scores above chance; shaped (1,) float32 as in BAPPS.
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
    """p with a random distortion of random strength; returns the image and the strength in [0, 1]"""
    kind, k = rng.randint(6 if origin else 5), rng.rand()   # the shifted crop needs the source image
    a = np.asarray(p, dtype=np.float32)
    if kind == 0:
        return p.filter(ImageFilter.GaussianBlur(radius=0.3 + 2.7 * k)), k
    if kind == 1:
        return Image.fromarray(np.clip(a + rng.randn(*a.shape) * (3 + 45 * k), 0, 255).astype(np.uint8)), k
    if kind == 2:
        buf = io.BytesIO()
        p.save(buf, format="JPEG", quality=int(70 - 65 * k))
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), k
    if kind == 3:
        s = 48 - int(36 * k)
        return p.resize((s, s), Image.BICUBIC).resize((64, 64), Image.BILINEAR), k
    if kind == 4:
        shift = (rng.rand(3) - 0.5) * 2 * (5 + 60 * k)
        return Image.fromarray(np.clip(a + shift, 0, 255).astype(np.uint8)), k
    img, x, y = origin
    d = 1 + int(3 * k)
    return img.crop((x + 4 + d, y + 4 + d, x + 68 + d, y + 68 + d)), k


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
        p0, k0 = distort(ref, origin)
        p1, k1 = distort(ref, origin)
        while np.array_equal(np.asarray(p0), np.asarray(p1)):   # an exact tie would test rounding, not the metric
            p1, k1 = distort(ref, origin)
        save_png(p0, os.path.join(d, "p0", stem + ".png"))
        save_png(p1, os.path.join(d, "p1", stem + ".png"))
        # 5 raters, each preferring the milder distortion with probability 0.5 + (k0 - k1)
        prob = min(max(0.5 + (k0 - k1), 0.0), 1.0)
        save_npy(rng.binomial(5, prob) / 5.0, os.path.join(d, "judge", stem + ".npy"))
for subset in ["traditional", "cnn"]:
    d = os.path.join(out, "jnd", "val", subset)
    for i in range(njnd):
        p0, origin = patch()
        stem = "%06d" % i
        save_png(p0, os.path.join(d, "p0", stem + ".png"))
        p1, k = distort(p0, origin)
        save_png(p1, os.path.join(d, "p1", stem + ".png"))
        # 3 raters, each calling the pair identical with probability 1 - k
        save_npy(rng.binomial(3, 1.0 - k) / 3.0, os.path.join(d, "same", stem + ".npy"))
print("ok")

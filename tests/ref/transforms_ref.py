"""Expected outputs for tests/lua/test_transforms.lua, computed with Pillow 9 / torchvision 0.14 (Debian packages).

usage: transforms_ref.py OUTDIR SHARED_DATA_DIR
Each case writes OUTDIR/<name>.npy (C x H x W float32, or uint8-valued / 255 for 8-bit results) and a line
"<name><TAB><source file><TAB><op><TAB><args>" to OUTDIR/cases.txt, which the Lua test replays with dpl.transforms.
"""
import os
import sys

import numpy as np
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image, ImageFilter

out, data = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
lines = []


def save(name, src, op, args, arr):
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[None]
    elif arr.ndim == 3 and arr.shape[2] in (3, 4) and arr.shape[0] not in (1, 3):
        arr = arr.transpose(2, 0, 1)
    np.save(os.path.join(out, name + ".npy"), np.ascontiguousarray(arr, dtype=np.float32))
    lines.append("\t".join([name, src, op, args]))


def pil(img):
    return np.asarray(img).astype(np.float32) / 255.0


s5 = os.path.join(data, "Set5/image_SRF_4")
s14 = os.path.join(data, "Set14/image_SRF_4")
files = {
    "bird": os.path.join(s5, "img_002_SRF_4_HR.png"),        # 288 x 288
    "baboon": os.path.join(s14, "img_001_SRF_4_HR.png"),     # 480 x 500
    "bridge": os.path.join(s14, "img_003_SRF_4_HR.png"),     # gray
    "comic": os.path.join(s14, "img_005_SRF_4_HR.png"),      # 360 x 248 (portrait)
    "butterfly_lr": os.path.join(s5, "img_003_SRF_4_LR.png"),  # 64 x 64
}

# ---- Pillow resize through torchvision's PIL path (8-bit) -----------------------------------------------------------
for key in ["bird", "baboon", "bridge", "comic", "butterfly_lr"]:
    img = Image.open(files[key]).convert("RGB")
    for interp, mode in [("bilinear", T.InterpolationMode.BILINEAR), ("bicubic", T.InterpolationMode.BICUBIC)]:
        for size in [288, 72, 37]:
            save("resize_%s_%s_%d" % (key, interp, size), files[key], "resize", "%d %s" % (size, interp),
                 pil(T.Resize(size, interpolation=mode)(img)))
        save("resize_%s_%s_rect" % (key, interp), files[key], "resize", "{101,57} %s" % interp,
             pil(T.Resize((101, 57), interpolation=mode)(img)))
    # the float path: Pillow mode "F" per channel
    a = np.asarray(img).astype(np.float32) / 255.0
    for interp, flt in [("bilinear", Image.BILINEAR), ("bicubic", Image.BICUBIC)]:
        res = np.stack([np.asarray(Image.fromarray(a[..., c], "F").resize((53, 71), flt)) for c in range(3)])
        save("resizef_%s_%s" % (key, interp), files[key], "resize_float", "{71,53} %s" % interp, res)

# the super-resolution pipeline (docs/benchmarks/superres.md) on one image: HR = Resize(288) + CenterCrop(288);
# LR = GaussianBlur(1) + Resize(72, bicubic) + CenterCrop(72)
img = Image.open(files["baboon"]).convert("RGB")
save("sr_hr_baboon", files["baboon"], "sr_hr", "288", pil(T.CenterCrop(288)(T.Resize(288)(img))))
lr = T.CenterCrop(72)(T.Resize(72, interpolation=T.InterpolationMode.BICUBIC)(img.filter(ImageFilter.GaussianBlur(1))))
save("sr_lr_baboon", files["baboon"], "sr_lr", "72", pil(lr))

# ---- GaussianBlur ------------------------------------------------------------------------------------------------
for key in ["bird", "bridge", "comic"]:
    img = Image.open(files[key]).convert("RGB")
    for radius in [1, 2, 0.5, 3.7]:
        save("blur_%s_%s" % (key, radius), files[key], "blur", str(radius), pil(img.filter(ImageFilter.GaussianBlur(radius))))

# ---- crops, flips, padding ------------------------------------------------------------------------------------------
for key in ["comic", "butterfly_lr"]:
    t = F.to_tensor(Image.open(files[key]).convert("RGB"))
    for size in ["101", "{64,63}", "{63,64}", "{99,64}", "{300,260}", "{57,58}"]:
        hw = eval(size.replace("{", "(").replace("}", ")"))
        save("ccrop_%s_%s" % (key, size.replace(",", "x").strip("{}")), files[key], "center_crop", size,
             T.CenterCrop(hw)(t).numpy())
    save("hflip_%s" % key, files[key], "hflip", "", F.hflip(t).numpy())
lr = F.to_tensor(Image.open(files["butterfly_lr"]).convert("RGB"))
small = lr[:, 10:42, 20:52]   # 32 x 32, as an SVHN digit
save("pad_reflect_32", files["butterfly_lr"], "pad_reflect_svhn", "16", T.Pad(16, padding_mode="reflect")(small).numpy())

# ---- torchvision tensor resize without antialias (the delineation evaluation path) ----------------------------------
mrd = sorted(os.listdir(os.path.join(data, "MassachusettsRoads/images")))[0]
for sub in ["images", "masks"]:
    p = os.path.join(data, "MassachusettsRoads", sub, mrd)
    t = F.to_tensor(Image.open(p))
    save("tresize_" + sub, p, "resize_tensor", "224", F.resize(t, 224, antialias=False).numpy())
t = F.to_tensor(Image.open(files["comic"]).convert("RGB"))
save("tresize_comic_up", files["comic"], "resize_tensor", "{500,301}", F.resize(t, (500, 301), antialias=False).numpy())

# ---- MATLAB imresize, written from imresize.m's formulas (the shipped *_LR.png files are checked directly) ----------
def cubic(x):
    ax = np.abs(x)
    return (1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1) + (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))


def contributions(n, m, scale, symmetric):
    width = 4.0 / scale if scale < 1 else 4.0
    u = np.arange(1, m + 1) / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    idx = left[:, None] + np.arange(int(np.ceil(width)) + 2)[None]
    w = scale * cubic(scale * (u[:, None] - idx)) if scale < 1 else cubic(u[:, None] - idx)
    w = w / w.sum(1, keepdims=True)
    if symmetric:
        aux = np.concatenate([np.arange(1, n + 1), np.arange(n, 0, -1)])
        idx = aux[(idx.astype(int) - 1) % (2 * n)]
    else:
        idx = np.clip(idx, 1, n).astype(int)
    return idx - 1, w


def imresize(a, out_hw, scale_hw, symmetric, uint8):
    a = a.astype(np.float64)            # C x H x W
    steps = [(1, (out_hw[0], scale_hw[0])), (2, (out_hw[1], scale_hw[1]))]
    for axis, (m, sc) in sorted(steps, key=lambda s: s[1][1]):      # smaller scale first, rows on ties (stable)
        idx, w = contributions(a.shape[axis], m, sc, symmetric)
        a = np.moveaxis((np.moveaxis(a, axis, -1)[..., idx] * w).sum(-1), -1, axis)
        if uint8:
            a = np.clip(np.floor(a + 0.5), 0, 255)
    return a


for key in ["bird", "comic"]:
    img = np.asarray(Image.open(files[key]).convert("RGB")).transpose(2, 0, 1)
    h, w = img.shape[1:]
    for sym in [0, 1]:
        for scale in [0.25, 1 / 3, 2.0]:
            oh, ow = int(np.ceil(h * scale)), int(np.ceil(w * scale))
            save("imresize_%s_%g_s%d" % (key, scale, sym), files[key], "imresize", "%r %d 1" % (scale, sym),
                 imresize(img, (oh, ow), (scale, scale), sym, True) / 255)
        save("imresize_%s_size_s%d" % (key, sym), files[key], "imresize", "{50,77} %d 1" % sym,
             imresize(img, (50, 77), (50 / h, 77 / w), sym, True) / 255)
        save("imresizef_%s_s%d" % (key, sym), files[key], "imresize", "0.3 %d 0" % sym,
             imresize(img / 255.0, (int(np.ceil(h * 0.3)), int(np.ceil(w * 0.3))), (0.3, 0.3), sym, False))

with open(os.path.join(out, "cases.txt"), "w") as f:
    f.write("\n".join(lines) + "\n")

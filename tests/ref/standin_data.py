#!/usr/bin/env python3
"""Writes generated STAND-IN images for the test suites, in the folder layout of ../shared (numpy + Pillow only).

THESE ARE NOT THE DATASETS. They are synthetic images made here from a fixed seed, for the end-to-end suites whose
assertions hold on any images (sweep mechanics, resume after kill -9, SLURM arrays and merges, JSON shapes, store rows,
parity with a PyTorch reference computed at test time on the same files), so that those suites run on a machine
without the reference data of ../shared (CI). Nothing here resembles Set5, Set14, BAPPS or Massachusetts Roads beyond
the file names, formats and folder layout; no number measured on them says anything about those datasets. Suites
opt in with test.suite(name, {shared = {...}, standin = true}) (lua/dpl/test.lua, "Reference files"; README, Tests).

Usage: standin_data.py OUTDIR

Writes under OUTDIR/data (the layout tests read under $DPL_SHARED/data):
  BAPPS/imgs/ex_{ref,p0,p1}.png                 64 x 64 RGB: a scene and two distortions of it (blur, noise)
  Set5/image_SRF_4/img_00{1..5}_SRF_4_{HR,LR}.png     RGB; LR = HR / 4 (Pillow bicubic, not MATLAB's imresize)
  Set14/image_SRF_4/img_0{01..14}_SRF_4_{HR,LR}.png   as Set5; img_003 single-channel (mode L) as in the real set
  MassachusettsRoads/{images,masks}/<the 4 stems>.png  260 x 260 RGB aerial-like tiles; masks mode L, 0/255 road lines
Set5/Set14 have the real files' sizes (SIZES; tests crop and resize at fixed places); the MRD tiles are small on
purpose (CI time; the real ones are 1500 x 1500). 260 is, as 1500, 4 times an odd number: a bilinear resize to 224
or 64 (the delineation evaluation) then never samples exactly halfway between two pixels, where a 0/1 mask would
interpolate to a tie at 0.5 that float rounding breaks either way.

Each image has real structure: a smooth two-colour gradient, low-frequency shading, filled shapes with hard edges
(ellipses, rectangles, polygons), stripe and band-limited noise textures and fine pixel noise, so that networks,
metrics, resizes and crops see edges and textures rather than flat colours.
"""
import os
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

MRD_STEMS = ["10078735_15", "18478975_15", "22679080_15", "23429170_15"]
# (width, height) of the HR files of SelfExSR's x4 Set5 and Set14, in file order
SIZES = {"Set5": [(512, 512), (288, 288), (256, 256), (280, 280), (228, 344)],
         "Set14": [(500, 480), (720, 576), (512, 512), (352, 288), (248, 360), (276, 276), (500, 360), (352, 288),
                   (512, 512), (512, 512), (768, 512), (512, 512), (528, 656), (584, 388)]}


def smooth_noise(rng, h, w, cell):
    """band-limited noise in about [-1, 1]: a coarse random grid resized up bicubically"""
    gh, gw = max(2, h // cell + 2), max(2, w // cell + 2)
    g = Image.fromarray(((rng.rand(gh, gw) * 255)).astype(np.uint8))
    up = np.asarray(g.resize((w, h), Image.BICUBIC), dtype=np.float32)
    return up / 127.5 - 1.0


def scene(rng, h, w):
    """an RGB uint8 image (h, w, 3) with gradients, shapes, textures and noise"""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.rand() * 2 * np.pi
    t = (np.cos(angle) * xx / w + np.sin(angle) * yy / h)
    t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
    c0, c1 = rng.rand(3) * 255, rng.rand(3) * 255
    a = c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]
    a += 40 * smooth_noise(rng, h, w, 24)[..., None] * rng.rand(3)[None, None, :]
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(6, 12)):
        colour = tuple(int(v) for v in rng.randint(0, 256, 3))
        x0, y0 = rng.randint(-w // 4, w), rng.randint(-h // 4, h)
        x1, y1 = x0 + rng.randint(8, max(9, w // 2)), y0 + rng.randint(8, max(9, h // 2))
        kind = rng.randint(3)
        if kind == 0:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        elif kind == 1:
            draw.rectangle((x0, y0, x1, y1), fill=colour, outline=tuple(255 - c for c in colour))
        else:
            pts = [(int(x0 + rng.rand() * (x1 - x0)), int(y0 + rng.rand() * (y1 - y0))) for _ in range(rng.randint(3, 7))]
            draw.polygon(pts, fill=colour)
    a = np.asarray(img, dtype=np.float32)
    # a striped patch and a band-limited noise texture, blended into parts of the image
    mask = np.zeros((h, w), np.float32)
    y0, x0 = rng.randint(0, h // 2), rng.randint(0, w // 2)
    mask[y0:y0 + h // 3, x0:x0 + w // 3] = 1
    period = 3 + rng.rand() * 6
    stripes = 60 * np.sin(2 * np.pi * (xx * np.cos(angle + 1) + yy * np.sin(angle + 1)) / period)
    a += (mask * stripes)[..., None]
    a += 25 * smooth_noise(rng, h, w, 4)[..., None] * (smooth_noise(rng, h, w, 40)[..., None] > 0)
    a += rng.randn(h, w, 3) * 3
    return np.clip(a, 0, 255).astype(np.uint8)


def save(img, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img.save(path)


def sr_set(rng, out, name, grey=()):
    d = os.path.join(out, "data", name, "image_SRF_4")
    for i, (w, h) in enumerate(SIZES[name], 1):
        hr = Image.fromarray(scene(rng, h, w))
        if i in grey:
            hr = hr.convert("L")
        save(hr, os.path.join(d, "img_%03d_SRF_4_HR.png" % i))
        save(hr.resize((w // 4, h // 4), Image.BICUBIC), os.path.join(d, "img_%03d_SRF_4_LR.png" % i))


def road_tile(rng, n=260):
    """an aerial-like RGB tile and its road mask (L, 0/255): textured ground, buildings, roads as grey bands whose
    centre lines (a few pixels wide, as MRD's masks) are the mask"""
    ground = np.stack([90 + 30 * smooth_noise(rng, n, n, 32), 105 + 35 * smooth_noise(rng, n, n, 32),
                       70 + 25 * smooth_noise(rng, n, n, 32)], axis=-1)
    ground += 18 * smooth_noise(rng, n, n, 3)[..., None] + rng.randn(n, n, 3) * 4
    img = Image.fromarray(np.clip(ground, 0, 255).astype(np.uint8))
    mask = Image.new("L", (n, n), 0)
    di, dm = ImageDraw.Draw(img), ImageDraw.Draw(mask)
    for _ in range(rng.randint(15, 30)):   # buildings
        x, y, s = rng.randint(0, n), rng.randint(0, n), rng.randint(5, 16)
        g = int(rng.randint(120, 230))
        di.rectangle((x, y, x + s, y + int(s * (0.6 + rng.rand()))), fill=(g, g - 10, g - 20))
    roads = []
    for k in range(rng.randint(3, 6)):     # roughly horizontal or vertical polylines crossing the tile
        along = np.linspace(-10, n + 10, 6)
        across = rng.randint(20, n - 20) + np.cumsum(rng.randn(6) * 12)
        pts = list(zip(along, across)) if k % 2 == 0 else list(zip(across, along))
        roads.append([(float(x), float(y)) for x, y in pts])
    for pts in roads:
        grey = int(rng.randint(150, 200))
        di.line(pts, fill=(grey, grey, grey - 5), width=int(rng.randint(6, 10)), joint="curve")
    for pts in roads:
        dm.line(pts, fill=255, width=int(rng.randint(3, 6)), joint="curve")
    img = img.filter(ImageFilter.GaussianBlur(radius=0.6))
    m = np.where(np.asarray(mask) > 127, 255, 0).astype(np.uint8)   # strictly 0/255
    return img, Image.fromarray(m, mode="L")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: standin_data.py OUTDIR")
    out = sys.argv[1]
    rng = np.random.RandomState(20261206)
    ref = Image.fromarray(scene(rng, 64, 64))
    d = os.path.join(out, "data", "BAPPS", "imgs")
    save(ref, os.path.join(d, "ex_ref.png"))
    save(ref.filter(ImageFilter.GaussianBlur(radius=1.2)), os.path.join(d, "ex_p0.png"))
    noisy = np.asarray(ref, dtype=np.float32) + rng.randn(64, 64, 3) * 12
    save(Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)), os.path.join(d, "ex_p1.png"))
    sr_set(rng, out, "Set5")
    sr_set(rng, out, "Set14", grey=(3,))
    for stem in MRD_STEMS:
        img, mask = road_tile(rng)
        save(img, os.path.join(out, "data", "MassachusettsRoads", "images", stem + ".png"))
        save(mask, os.path.join(out, "data", "MassachusettsRoads", "masks", stem + ".png"))
    with open(os.path.join(out, "STANDIN.txt"), "w") as f:
        f.write("Generated stand-in images for dpl's tests (tests/ref/standin_data.py), NOT the datasets.\n")
    print("ok")


if __name__ == "__main__":
    main()

"""Fixtures and expected pixels for tests/lua/test_image.lua, made with Pillow (Debian python3-pil).

usage: image_ref.py OUTDIR SHARED_DATA_DIR
Writes synthetic PNG/JPEG/TIFF files in every layout the reader must handle, corrupt and truncated files, and for
each (file, mode) pair an .npy of np.asarray(Image.open(f).convert(mode)) as C x H x W uint8 (uint16 for 16-bit
"keep"). OUTDIR/cases.txt lists "file<TAB>mode<TAB>expected.npy<TAB>scale" lines; the test checks
image.load(file, {mode}) == expected / scale exactly.
"""
import os
import sys

import numpy as np
from PIL import Image

out, data = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
cases = []


def chw(a):
    a = np.asarray(a)
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def expect(path, mode, tag):
    im = Image.open(path)
    if mode == "keep":
        if im.mode == "1":
            im = im.convert("L")    # 1-bit: white is 1.0, as for any other gray image
        if im.mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        scale = 255
        if im.mode.startswith("I"):     # Pillow opens 16-bit gray PNGs as "I" or "I;16"
            im, scale = np.asarray(im).astype(np.uint16), 65535
        a = chw(im)
    else:
        a = chw(im.convert(mode))
        scale = 255
    npy = os.path.join(out, "%s_%s.npy" % (tag, mode))
    np.save(npy, np.ascontiguousarray(a))
    cases.append("%s\t%s\t%s\t%d" % (path, mode, npy, scale))


# ---- real files from ../shared/data ----------------------------------------------------------------------------
real = []
for sub in ["Set5/image_SRF_4", "Set14/image_SRF_4", "BAPPS/imgs", "MassachusettsRoads/images", "MassachusettsRoads/masks"]:
    d = os.path.join(data, sub)
    names = sorted(os.listdir(d))
    if sub.startswith("Massachusetts"):
        names = names[:1]      # 1500 x 1500: one image and one mask are enough
    real += [os.path.join(d, n) for n in names if n.endswith(".png")]
for i, p in enumerate(real):
    for mode in ["RGB", "L", "keep"]:
        expect(p, mode, "real%03d" % i)

# ---- synthetic files -----------------------------------------------------------------------------------------------
rng = np.random.RandomState(0)
# smooth content plus noise, so JPEG exercises real DCT work, with odd sizes (partial MCUs)
yy, xx = np.mgrid[0:37, 0:53]
base = np.stack([(xx * 4.7) % 256, (yy * 6.1) % 256, ((xx + yy) * 2.3) % 256], -1)
rgb = np.clip(base + rng.randint(-20, 21, base.shape), 0, 255).astype(np.uint8)
rgba = np.concatenate([rgb, rng.randint(0, 256, (37, 53, 1)).astype(np.uint8)], -1)
gray = rgb[..., 0].copy()


def make(name, im, **kw):
    p = os.path.join(out, name)
    im.save(p, **kw)
    return p


files = {
    "rgb.png": make("rgb.png", Image.fromarray(rgb)),
    "rgba.png": make("rgba.png", Image.fromarray(rgba, "RGBA")),
    "gray.png": make("gray.png", Image.fromarray(gray)),
    "la.png": make("la.png", Image.fromarray(rgba[..., [0, 3]], "LA")),
    "bits1.png": make("bits1.png", Image.fromarray(gray > 128)),
    "palette.png": make("palette.png", Image.fromarray(rgb).quantize(37)),
    "gray16.png": make("gray16.png", Image.fromarray((gray.astype(np.uint16) * 257 + rng.randint(0, 257, gray.shape)).astype(np.uint16), "I;16")),
    "baseline.jpg": make("baseline.jpg", Image.fromarray(rgb), quality=90),
    "q444.jpg": make("q444.jpg", Image.fromarray(rgb), quality=75, subsampling=0),
    "progressive.jpg": make("progressive.jpg", Image.fromarray(rgb), quality=80, progressive=True),
    "gray.jpg": make("gray.jpg", Image.fromarray(gray), quality=85),
    "rgb.tif": make("rgb.tif", Image.fromarray(rgb)),
    "lzw.tif": make("lzw.tif", Image.fromarray(rgb), compression="tiff_lzw"),
    "gray.tif": make("gray.tif", Image.fromarray(gray), compression="tiff_deflate"),
    "rgba.tif": make("rgba.tif", Image.fromarray(rgba, "RGBA")),
    "bits1.tif": make("bits1.tif", Image.fromarray(gray > 128)),      # 1-bit: read through TIFFReadRGBAImage
}
# a palette image with a transparent entry
pal = Image.fromarray(rgb).quantize(16)
files["palette_trns.png"] = make("palette_trns.png", pal, transparency=3)

for name, p in files.items():
    for mode in ["RGB", "L", "keep"]:
        if name == "gray16.png" and mode != "keep":
            continue     # Pillow clips I;16 to 8 bits on convert; dpl scales by 65535 instead (documented)
        expect(p, mode, name.replace(".", "_"))

# ---- corrupt and truncated files --------------------------------------------------------------------------------
def corrupt(name, data_bytes):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data_bytes)


raw = {k: open(v, "rb").read() for k, v in files.items()}
corrupt("trunc.png", raw["rgb.png"][: len(raw["rgb.png"]) // 2])
corrupt("trunc_end.png", raw["rgb.png"][:-12])                       # IEND chunk missing
bad = bytearray(raw["rgb.png"]); bad[len(bad) // 2] ^= 0xFF
corrupt("crc.png", bytes(bad))                                          # IDAT CRC mismatch
corrupt("header_only.png", raw["rgb.png"][:8])
corrupt("trunc.jpg", raw["baseline.jpg"][: len(raw["baseline.jpg"]) // 2])
corrupt("header_only.jpg", raw["baseline.jpg"][:4])
corrupt("trunc.tif", raw["rgb.tif"][: len(raw["rgb.tif"]) // 3])
corrupt("header_only.tif", raw["rgb.tif"][:8])
corrupt("garbage.png", bytes(rng.randint(0, 256, 1000).astype(np.uint8)))
corrupt("empty.png", b"")

with open(os.path.join(out, "cases.txt"), "w") as f:
    f.write("\n".join(cases) + "\n")

#!/usr/bin/env python3
"""Small stand-ins for the dataset sources, for tests/lua/test_fetch_data.lua.

Usage: fetch_fixtures.py SERVED_DIR

Lays out SERVED_DIR like the official servers' URL paths (the test's HTTP server serves DIR/<url path>):
BAPPS tarballs laid out as LPIPS's (twoafc_val.tar.gz: val/<subset>/{ref,p0,p1,judge}; jnd.tar.gz:
jnd/val/<subset>/{p0,p1,same}; see LPIPS scripts/download_dataset_valonly.sh) made of seeded random 64x64
patches, the MRD index pages (absolute and relative links) with small TIFFs, the three SVHN .mat files
(scipy.io.savemat, compressed), and the BSDS300 tarball. Also writes SERVED_DIR/../fixture_sources.lua: the real
dataset sources (lua/dpl/data/sources.lua) with the sizes and SHA-256 of the SVHN stand-ins in place of the real
ones, for data/fetch.lua --sources.
"""
import hashlib
import io
import os
import sys
import tarfile

import numpy as np
import scipy.io
from PIL import Image

out = sys.argv[1]


def put(path, data):
    full = os.path.join(out, path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "wb") as f:
        f.write(data)


def npy(value):
    b = io.BytesIO()
    np.save(b, np.array([value], dtype=np.float32))
    return b.getvalue()


def tarball(members):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w:gz") as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return b.getvalue()


def encoded(image, fmt):
    b = io.BytesIO()
    image.save(b, format=fmt)
    return b.getvalue()


patches = [Image.fromarray(np.random.RandomState(k).randint(0, 256, (64, 64, 3)).astype(np.uint8)) for k in range(3)]
png = [encoded(p, "PNG") for p in patches]
two, jnd = [], []
for sub in ("traditional", "cnn", "superres", "deblur", "color", "frameinterp"):
    for i in range(3):
        stem = "%06d" % i
        for k, folder in enumerate(("ref", "p0", "p1")):
            two.append(("val/%s/%s/%s.png" % (sub, folder, stem), png[(i + k) % 3]))
        two.append(("val/%s/judge/%s.npy" % (sub, stem), npy(i / 2.0)))
for sub in ("traditional", "cnn"):
    for i in range(2):
        stem = "%06d" % i
        jnd.append(("jnd/val/%s/p0/%s.png" % (sub, stem), png[i]))
        jnd.append(("jnd/val/%s/p1/%s.png" % (sub, stem), png[i + 1]))
        jnd.append(("jnd/val/%s/same/%s.npy" % (sub, stem), npy(i / 3.0)))
put("/~rich.zhang/projects/2018_perceptual/dataset/twoafc_val.tar.gz", tarball(two))
put("/~rich.zhang/projects/2018_perceptual/dataset/jnd.tar.gz", tarball(jnd))

for split in ("train", "valid", "test"):
    for kind, ext, mode in (("sat", "tiff", "RGB"), ("map", "tif", "L")):
        base = "/~vmnih/data/mass_roads/%s/%s/" % (split, kind)
        names = ["1000%d_15.%s" % (k, ext) for k in range(2)]
        html = "<html><body>"
        html += '<a href="https://www.cs.toronto.edu%s%s">%s</a>\n' % (base, names[0], names[0])   # absolute
        html += '<a href="%s">%s</a> <a href="../">up</a></body></html>\n' % (names[1], names[1])    # relative
        put(base + "index.html", html.encode())
        for k, n in enumerate(names):
            b = io.BytesIO()
            Image.new(mode, (12, 10), (40 * k, 80, 120) if mode == "RGB" else 255 * k).save(b, format="TIFF")
            put(base + n, b.getvalue())

rng = np.random.RandomState(3)
svhn = {}
for split, n in (("train", 5), ("test", 4), ("extra", 3)):
    b = io.BytesIO()
    scipy.io.savemat(b, {"X": rng.randint(0, 256, (32, 32, 3, n)).astype(np.uint8),
                         "y": rng.randint(1, 11, (n, 1)).astype(np.float64)}, do_compression=True)
    put("/housenumbers/%s_32x32.mat" % split, b.getvalue())
    svhn["%s_32x32.mat" % split] = (len(b.getvalue()), hashlib.sha256(b.getvalue()).hexdigest())

bsd = [("BSDS300/images/test/%d.jpg" % (100 + k), encoded(patches[k], "JPEG")) for k in range(3)]
bsd.append(("BSDS300/images/train/1.jpg", png[0]))
put("/Research/Projects/CS/vision/bsds/BSDS300-images.tgz", tarball(bsd))

with open(os.path.join(out, "..", "fixture_sources.lua"), "w") as f:
    f.write("-- written by tests/ref/fetch_fixtures.py: the real sources, SVHN with its stand-ins' sizes and SHA-256\n")
    f.write("local s = require \"dpl.data.sources\"\nlocal fixture = {\n")
    for name, (size, digest) in sorted(svhn.items()):
        f.write("  [\"%s\"] = {%d, \"%s\"},\n" % (name, size, digest))
    f.write("}\nfor _, item in ipairs(s.svhn) do item.bytes, item.sha256 = fixture[item.file][1], fixture[item.file][2] end\n")
    f.write("return s\n")

#!/usr/bin/env python3
"""Small stand-ins for the dataset sources, for tests/lua/test_fetch_data.lua.

Usage: fetch_fixtures.py SERVED_DIR

Lays out SERVED_DIR like the official servers' URL paths (the test's HTTP server serves DIR/<url path>):
BAPPS tarballs laid out as LPIPS's (twoafc_val.tar.gz: val/<subset>/{ref,p0,p1,judge}; jnd.tar.gz:
jnd/val/<subset>/{p0,p1,same}; see LPIPS scripts/download_dataset_valonly.sh) made from the
LPIPS example patches in $DPL_SHARED, the MRD index pages (absolute and relative links) with small TIFFs, the three
SVHN .mat files (scipy.io.savemat, compressed), and the BSDS300 tarball.
"""
import io
import os
import sys
import tarfile

import numpy as np
import scipy.io
from PIL import Image

out = sys.argv[1]
shared = os.environ.get("DPL_SHARED", "../shared")
imgs = [os.path.join(shared, "data", "BAPPS", "imgs", n) for n in ("ex_ref.png", "ex_p0.png", "ex_p1.png")]


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


png = [open(p, "rb").read() for p in imgs]
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
for split, n in (("train", 5), ("test", 4), ("extra", 3)):
    b = io.BytesIO()
    scipy.io.savemat(b, {"X": rng.randint(0, 256, (32, 32, 3, n)).astype(np.uint8),
                         "y": rng.randint(1, 11, (n, 1)).astype(np.float64)}, do_compression=True)
    put("/housenumbers/%s_32x32.mat" % split, b.getvalue())

bsd = [("BSDS300/images/test/%d.jpg" % (100 + k), open(imgs[k], "rb").read()) for k in range(3)]
bsd.append(("BSDS300/images/train/1.jpg", png[0]))
put("/Research/Projects/CS/vision/bsds/BSDS300-images.tgz", tarball(bsd))

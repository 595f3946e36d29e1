#!/usr/bin/env python3
"""Fixtures for the SVHN / STL-10 readers (tests/lua/test_datasets.lua).

Usage: imagesets_ref.py OUTDIR

Writes SVHN format-2 .mat files with scipy.io.savemat (compressed and not, labels as double and as uint8), an
STL-10 image/label binary pair, and what torchvision's SVHN / STL10 datasets make of them (images as N x 3 x H x W
float32 = ToTensor, labels with SVHN's 10 -> 0 and STL-10's 1..10 -> 0..9), following torchvision 0.14's code:
SVHN transposes X (H, W, 3, N) with (3, 2, 0, 1); STL10 reshapes to (-1, 3, 96, 96) and transposes (0, 1, 3, 2).
"""
import os
import sys

import numpy as np
import scipy.io

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.RandomState(5)

n = 37
X = rng.randint(0, 256, (32, 32, 3, n)).astype(np.uint8)
y = rng.randint(1, 11, (n, 1)).astype(np.float64)
y[0, 0] = 10
scipy.io.savemat(os.path.join(out, "svhn_c.mat"), {"X": X, "y": y}, do_compression=True)
scipy.io.savemat(os.path.join(out, "svhn_u.mat"), {"y": y.astype(np.uint8), "X": X, "extra": np.arange(3.0)},
                 do_compression=False)
scipy.io.savemat(os.path.join(out, "svhn_noy.mat"), {"X": X}, do_compression=True)
scipy.io.savemat(os.path.join(out, "svhn_badx.mat"), {"X": X[:, :, :2], "y": y}, do_compression=True)
np.save(os.path.join(out, "svhn_images.npy"), (np.transpose(X, (3, 2, 0, 1)) / 255.0).astype(np.float32))
labels = y.astype(np.int64).squeeze()
np.place(labels, labels == 10, 0)
np.save(os.path.join(out, "svhn_labels.npy"), labels.astype(np.float32))

m = 5
raw = rng.randint(0, 256, m * 3 * 96 * 96).astype(np.uint8)
raw.tofile(os.path.join(out, "stl_X.bin"))
ly = rng.randint(1, 11, m).astype(np.uint8)
ly.tofile(os.path.join(out, "stl_y.bin"))
imgs = np.transpose(np.reshape(raw, (-1, 3, 96, 96)), (0, 1, 3, 2))
np.save(os.path.join(out, "stl_images.npy"), (imgs / 255.0).astype(np.float32))
np.save(os.path.join(out, "stl_labels.npy"), (ly.astype(np.int64) - 1).astype(np.float32))

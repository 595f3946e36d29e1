#!/usr/bin/env python3
"""A tiny data root in the real SVHN (format 2, MATLAB v5 .mat via scipy.io.savemat) and STL-10 (binary) formats for
tests/lua/test_autoencoder_experiment.lua, with an easy labelling: every image of class c is a smooth random texture
tinted with colour c of a fixed palette, so that codes of even a briefly trained autoencoder separate the classes
better than chance.

Usage: autoencoder_fixture.py ROOT [N_AE N_TRAIN N_TEST]
  ROOT/svhn/{extra,train,test}_32x32.mat          X: 32 x 32 x 3 x N uint8, y: N x 1 (1..10, 10 = digit 0)
  ROOT/stl10/stl10_binary/{unlabeled,train,test}_X.bin, {train,test}_y.bin   (N x 3 x 96 x 96 column-major, labels 1..10)
"""
import os
import sys

import numpy as np
import scipy.io

root = sys.argv[1]
n_ae, n_train, n_test = (int(v) for v in sys.argv[2:5]) if len(sys.argv) > 4 else (96, 120, 60)
rng = np.random.RandomState(11)
palette = rng.rand(10, 3) * 0.8 + 0.1


def images(n, side):
    labels = rng.randint(0, 10, n)
    small = rng.rand(n, side // 8, side // 8, 3)
    tex = small.repeat(8, axis=1).repeat(8, axis=2)          # n x side x side x 3, blocky texture
    img = 0.5 * tex + 0.5 * palette[labels][:, None, None, :]
    return (img * 255).round().clip(0, 255).astype(np.uint8), labels


os.makedirs(os.path.join(root, "svhn"), exist_ok=True)
for split, n in (("extra", n_ae), ("train", n_train), ("test", n_test)):
    img, labels = images(n, 32)
    y = np.where(labels == 0, 10, labels).reshape(n, 1).astype(np.uint8)
    scipy.io.savemat(os.path.join(root, "svhn", split + "_32x32.mat"), {"X": np.transpose(img, (1, 2, 3, 0)), "y": y},
                     do_compression=split == "train")

d = os.path.join(root, "stl10", "stl10_binary")
os.makedirs(d, exist_ok=True)
for split, n in (("unlabeled", n_ae // 2), ("train", n_train // 2), ("test", n_test // 2)):
    img, labels = images(n, 96)
    # STL-10 stores each image channel by channel, each channel column-major (torchvision transposes (0, 1, 3, 2))
    np.transpose(img, (0, 3, 2, 1)).tofile(os.path.join(d, split + "_X.bin"))
    if split != "unlabeled":
        (labels + 1).astype(np.uint8).tofile(os.path.join(d, split + "_y.bin"))

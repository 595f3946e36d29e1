"""Reference values for tests/lua/test_sr_metrics.lua, from scikit-image 0.19 (Debian python3-skimage) and, for the
torchmetrics-style Gaussian SSIM, a float64 PyTorch transcription of torchmetrics 0.11's _ssim_update (torchmetrics
itself is not packaged in Debian).

usage: sr_metrics_ref.py DIR
DIR/pairs.txt lists "name<TAB>sr.npy<TAB>hr.npy<TAB>ysr.npy<TAB>yhr.npy<TAB>shave" (C x H x W float32 images in [0,1],
and dpl's H x W luminance of each); writes DIR/expected.txt with "name<TAB>metric<TAB>value" lines.
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

d = sys.argv[1]
out = []


def y_matlab(img, round_y, gray_as_y):
    """MATLAB rgb2ycbcr's Y (16..235) of the 8-bit image round(255 x)."""
    q = np.floor(np.clip(img.astype(np.float64), 0, 1) * 255 + 0.5) / 255
    if q.shape[0] == 1:
        y = q[0] * 255 if gray_as_y else 16 + 219.0 * q[0]
    else:
        y = 16 + 65.481 * q[0] + 128.553 * q[1] + 24.966 * q[2]
    return np.floor(y + 0.5) if round_y else y


def shave(a, s):
    return a[s:-s, s:-s] if s else a


def tm_ssim(p, t, data_range=None):
    """torchmetrics 0.11 StructuralSimilarityIndexMeasure() on one H x W image, in float64."""
    p = torch.from_numpy(p)[None, None].double()
    t = torch.from_numpy(t)[None, None].double()
    if data_range is None:
        data_range = max(float(p.max() - p.min()), float(t.max() - t.min()))
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    dist = torch.arange((1 - 11) / 2, (1 + 11) / 2, step=1, dtype=torch.float64)
    g = torch.exp(-torch.pow(dist / 1.5, 2) / 2)
    g = (g / g.sum())[None]
    kernel = torch.matmul(g.t(), g)[None, None]
    p = F.pad(p, (5, 5, 5, 5), mode="reflect")
    t = F.pad(t, (5, 5, 5, 5), mode="reflect")
    o = F.conv2d(torch.cat((p, t, p * p, t * t, p * t)), kernel)
    mp, mt = o[0], o[1]
    sp, st, spt = o[2] - mp ** 2, o[3] - mt ** 2, o[4] - mp * mt
    s = ((2 * mp * mt + c1) * (2 * spt + c2)) / ((mp ** 2 + mt ** 2 + c1) * (sp + st + c2))
    return float(s[..., 5:-5, 5:-5].mean())


for line in open(os.path.join(d, "pairs.txt")):
    name, fsr, fhr, fysr, fyhr, s = line.rstrip("\n").split("\t")
    s = int(s)
    sr, hr = np.load(fsr), np.load(fhr)
    ysr, yhr = np.load(fysr).astype(np.float64), np.load(fyhr).astype(np.float64)

    # the usual SR protocol: rounded MATLAB Y, gray images as Y, shave s, data range 255, Gaussian SSIM
    a, b = shave(y_matlab(sr, True, True), s), shave(y_matlab(hr, True, True), s)
    out.append((name, "sr_psnr", peak_signal_noise_ratio(b, a, data_range=255)))
    out.append((name, "sr_ssim", structural_similarity(b, a, data_range=255, gaussian_weights=True, sigma=1.5,
                                                       use_sample_covariance=False)))
    out.append((name, "sr_ssim_tm", tm_ssim(a, b, 255)))

    # REF's four test numbers (docs/benchmarks/superres.md); REF converts every image to RGB first
    rgb = lambda x: np.repeat(x, 3, 0) if x.shape[0] == 1 else x
    srr, hrr = rgb(sr).astype(np.float64), rgb(hr).astype(np.float64)
    fy = lambda x: 16 + 65.481 * x[0] + 128.553 * x[1] + 24.966 * x[2]
    ya, yb = fy(srr), fy(hrr)
    out.append((name, "ref_psnr", peak_signal_noise_ratio(yb, ya, data_range=yb.max() - yb.min())))
    q = lambda x: np.floor(np.clip(x, 0, 1) * 255 + 0.5) / 255
    yq = lambda x: (65.738 * x[0] + 129.057 * x[1] + 25.064 * x[2]) / 256
    qa, qb = shave(yq(q(srr)), 2), shave(yq(q(hrr)), 2)
    out.append((name, "ref_mssim", structural_similarity(qa, qb, data_range=1)))
    out.append((name, "ref_psnr_2", peak_signal_noise_ratio(qb, qa)))   # data range inferred: 1 for floats >= 0
    out.append((name, "ref_tensor_ssim", tm_ssim(ya, yb)))

    # the generic functions on dpl's own luminance planes
    out.append((name, "psnr_default_range", peak_signal_noise_ratio(yhr, ysr, data_range=yhr.max() - yhr.min())))
    out.append((name, "ssim_uniform_255", structural_similarity(ysr, yhr, data_range=255)))
    out.append((name, "ssim_uniform_shave", structural_similarity(shave(ysr, s), shave(yhr, s), data_range=255)))
    out.append((name, "ssim_gauss_default", tm_ssim(ysr, yhr)))

# REF's validation PSNR on a batch (docs/benchmarks/superres.md): one MSE over the batch, data range of the whole HR
# batch's Y
bsr, bhr = np.load(os.path.join(d, "batch_sr.npy")).astype(np.float64), np.load(os.path.join(d, "batch_hr.npy")).astype(np.float64)
fyb = lambda x: 16 + 65.481 * x[:, 0] + 128.553 * x[:, 1] + 24.966 * x[:, 2]
ya, yb = fyb(bsr), fyb(bhr)
out.append(("batch", "batch_psnr", 10 * math.log10((yb.max() - yb.min()) ** 2 / np.mean((ya - yb) ** 2))))

with open(os.path.join(d, "expected.txt"), "w") as f:
    for name, metric, v in out:
        f.write("%s\t%s\t%.17g\n" % (name, metric, v))

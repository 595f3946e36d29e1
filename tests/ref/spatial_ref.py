#!/usr/bin/env python3
"""PyTorch references for tests/lua/test_spatial.lua (Debian python3-torch 1.13).

Usage: spatial_ref.py OUTDIR

For every case below writes, as float32 .npy files in OUTDIR:
  <id>_x.npy    the input (N x C x H x W)
  <id>_y.npy    the output of the op
  <id>_g.npy    a fixed random grad_output
  <id>_gx.npy   the gradient of sum(y * g) with respect to x
  <id>_idx.npy  max pooling only: the argmax indices (y * W + x per plane)
and OUTDIR/cases.lua, a Lua table describing the cases (op and arguments in dpl.F's terms), so the test and
this script share one list.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from reflib import save_npy, write_cases

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.RandomState(1234)


def save(name, a):
    save_npy(out, name, a)


def pair(v):
    return list(v) if isinstance(v, (tuple, list)) else [v, v]



cases = []


def case(cid, op, shape, fn, ties=False, **args):
    x = rng.randn(*shape).astype(np.float32)
    if ties:
        x = np.round(x * 1.5).astype(np.float32)   # many equal values inside windows: tests the first-max rule
    xt = torch.from_numpy(x.copy()).requires_grad_()
    res = fn(xt)
    y, idx = (res if isinstance(res, tuple) else (res, None))
    g = rng.randn(*y.shape).astype(np.float32)
    y.backward(torch.from_numpy(g))
    save(cid + "_x", x)
    save(cid + "_y", y.detach().numpy())
    save(cid + "_g", g)
    save(cid + "_gx", xt.grad.numpy())
    if idx is not None:
        save(cid + "_idx", idx.numpy().astype(np.float64))
    d = dict(id=cid, op=op)
    d.update(args)
    cases.append(d)


def max_pool(cid, shape, k, s=None, p=0, d=1, ceil=False, ties=False):
    opts = dict(padding=pair(p), dilation=pair(d), ceil_mode=ceil)
    if s is not None:
        opts["stride"] = pair(s)
    case(cid, "max_pool2d", shape,
         lambda x: F.max_pool2d(x, k, s, p, d, ceil_mode=ceil, return_indices=True),
         ties=ties, kernel=pair(k), opts=opts)


def avg_pool(cid, shape, k, s=None, p=0, ceil=False, cip=True):
    opts = dict(padding=pair(p), ceil_mode=ceil, count_include_pad=cip)
    if s is not None:
        opts["stride"] = pair(s)
    case(cid, "avg_pool2d", shape, lambda x: F.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=cip),
         kernel=pair(k), opts=opts)


def adaptive(cid, shape, size):
    case(cid, "adaptive_avg_pool2d", shape, lambda x: F.adaptive_avg_pool2d(x, size), size=pair(size))


def pad(cid, shape, pads, mode, value=0.0):
    tmode = {"zero": "constant"}.get(mode, mode)
    kw = {"value": value} if tmode == "constant" else {}
    case(cid, "pad2d", shape, lambda x: F.pad(x, tuple(pads), mode=tmode, **kw), pads=list(pads), mode=mode,
         value=value)


def upsample(cid, shape, mode, size=None, scale=None):
    kw = {"align_corners": False} if mode == "bilinear" else {}
    if size is not None:
        case(cid, "upsample2d", shape, lambda x: F.interpolate(x, size=tuple(size), mode=mode, **kw), size=list(size),
             mode=mode)
    else:
        case(cid, "upsample2d", shape, lambda x: F.interpolate(x, scale_factor=scale, mode=mode, **kw), scale=scale,
             mode=mode)


S = (2, 13, 9, 7)
# max pooling: overlapping windows, ceil_mode windows partly outside, the ceil rule dropping a window that would
# start in the right padding, dilation, rectangular parameters, ties
max_pool("mp_k3s2p1", S, 3, 2, 1)
max_pool("mp_k3s2_ceil", S, 3, 2, 0, ceil=True)
max_pool("mp_k2s2_ceil", S, 2, 2, 0, ceil=True)
max_pool("mp_k2_default_stride", S, 2)
max_pool("mp_k3s1p1_dil2", S, 3, 1, 1, 2)
max_pool("mp_rect", S, (3, 2), (2, 1), (1, 0), (1, 2), ceil=True)
max_pool("mp_ceil_rule", (1, 3, 4, 10), 2, 3, 1, ceil=True)
max_pool("mp_k3s2p1_ceil_dil2", (1, 5, 11, 10), 3, 2, 1, 2, ceil=True)
max_pool("mp_ties", S, 3, 1, 1, ties=True)
max_pool("mp_kernel_covers", (1, 2, 2, 3), 3, 2, 0, ceil=True)
# average pooling: both count_include_pad choices, ceil_mode windows clipped at H + pad, rectangular
avg_pool("ap_k3s2p1_cip", S, 3, 2, 1, cip=True)
avg_pool("ap_k3s2p1_nocip", S, 3, 2, 1, cip=False)
avg_pool("ap_k3s2p1_ceil_cip", S, 3, 2, 1, ceil=True, cip=True)
avg_pool("ap_k3s2p1_ceil_nocip", S, 3, 2, 1, ceil=True, cip=False)
avg_pool("ap_k2s2_ceil", S, 2, 2, 0, ceil=True)
avg_pool("ap_k4s3p2_ceil_cip", S, 4, 3, 2, ceil=True, cip=True)
avg_pool("ap_rect_ceil_nocip", S, (3, 2), (2, 3), (1, 1), ceil=True, cip=False)
avg_pool("ap_k2_default_stride", S, 2)
# adaptive average pooling: sizes that do not divide the input, identity, larger than the input, global
adaptive("aap_7x5_3x2", (2, 13, 7, 5), (3, 2))
adaptive("aap_9x7_4x3", S, (4, 3))
adaptive("aap_identity", S, (9, 7))
adaptive("aap_up", (1, 3, 5, 4), (7, 6))
adaptive("aap_global", S, (1, 1))
adaptive("aap_7x7", (1, 4, 13, 11), (7, 7))
# padding
pad("pad_reflect_1213", S, (1, 2, 3, 1), "reflect")
pad("pad_reflect_3322", S, (3, 3, 2, 2), "reflect")
pad("pad_reflect_6_8", S, (6, 6, 8, 8), "reflect")
pad("pad_replicate_1320", S, (1, 3, 2, 0), "replicate")
pad("pad_replicate_big", S, (5, 4, 3, 10), "replicate")
pad("pad_zero", S, (2, 1, 0, 3), "zero")
pad("pad_constant_value", S, (1, 1, 2, 2), "constant", 1.5)
pad("pad_constant_crop", S, (-1, 2, 1, -2), "constant", -0.5)
# resizing
upsample("up_nearest_13x5", S, "nearest", size=(13, 5))
upsample("up_nearest_2x", S, "nearest", size=(18, 14))
upsample("up_nearest_down", S, "nearest", size=(4, 3))
upsample("up_nearest_scale1.5", S, "nearest", scale=1.5)
upsample("up_nearest_scale0.6", S, "nearest", scale=0.6)
upsample("up_bilinear_13x11", S, "bilinear", size=(13, 11))
upsample("up_bilinear_down_4x3", S, "bilinear", size=(4, 3))
upsample("up_bilinear_down_7x5", S, "bilinear", size=(7, 5))
upsample("up_bilinear_same", S, "bilinear", size=(9, 7))
upsample("up_bilinear_2x", S, "bilinear", size=(18, 14))
upsample("up_bilinear_scale1.7", S, "bilinear", scale=1.7)
upsample("up_bilinear_scale0.6", S, "bilinear", scale=0.6)
upsample("up_bilinear_1x1", (1, 2, 1, 1), "bilinear", size=(3, 4))

write_cases(out, cases)

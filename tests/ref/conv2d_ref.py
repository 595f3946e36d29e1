#!/usr/bin/env python3
"""PyTorch references for tests/lua/test_conv2d_torch.lua (Debian python3-torch 1.13).

Usage: conv2d_ref.py OUTDIR

For every case below writes, as float32 .npy files in OUTDIR:
  <id>_x.npy, <id>_w.npy, <id>_b.npy (when the case has a bias)   the operands
  <id>_y.npy                                                      F.conv2d(x, w, b, ...)
  <id>_g.npy                                                      a fixed random grad_output
  <id>_gx.npy, <id>_gw.npy, <id>_gb.npy                           the gradients of sum(y * g)
and OUTDIR/cases.lua, a Lua table describing the cases (shapes and options in dpl's terms), so the test and this
script share one list.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from reflib import conv_case, write_cases

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.RandomState(1357)
torch.set_num_threads(1)


cases = []


def case(cid, xshape, wshape, bias=True, stride=1, padding=0, dilation=1, groups=1):
    x = torch.from_numpy(rng.randn(*xshape).astype(np.float32)).requires_grad_()
    w = torch.from_numpy(rng.randn(*wshape).astype(np.float32)).requires_grad_()
    b = torch.from_numpy(rng.randn(wshape[0]).astype(np.float32)).requires_grad_() if bias else None
    conv_case(out, cases, rng, cid, lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation, groups), x, w, b,
              dict(stride=stride, padding=padding, dilation=dilation, groups=groups))


# odd shapes: 9x7 planes, 13 channels, stride 2, dilation 2, groups 3, depthwise, ResNeXt's 32 groups
case("p1_13ch", (2, 13, 9, 7), (5, 13, 3, 3), padding=1)
case("s2_p1", (3, 13, 9, 7), (8, 13, 3, 3), stride=2, padding=1)
case("d2_p2", (2, 6, 9, 7), (9, 6, 3, 3), padding=2, dilation=2)
case("k32_s21_p12_d12", (2, 5, 9, 7), (4, 5, 3, 2), bias=False, stride=(2, 1), padding=(1, 2), dilation=(1, 2))
case("g3", (2, 12, 9, 7), (6, 4, 3, 3), padding=1, groups=3)
case("g3_13out_s2", (3, 9, 9, 7), (39, 3, 3, 3), stride=2, padding=1, groups=3)
case("depthwise_13", (3, 13, 9, 7), (13, 1, 3, 3), padding=1, groups=13)
case("depthwise_x2_s2_d2", (2, 4, 9, 7), (8, 1, 3, 3), bias=False, stride=2, padding=2, dilation=2, groups=4)
case("resnext_32g", (2, 64, 7, 5), (64, 2, 3, 3), bias=False, stride=2, padding=1, groups=32)
case("k1", (3, 13, 9, 7), (7, 13, 1, 1))
case("k1_s2", (3, 13, 9, 7), (7, 13, 1, 1), bias=False, stride=2)
case("alexnet_k11_s4", (2, 3, 35, 35), (16, 3, 11, 11), stride=4, padding=2)
case("kernel_eq_padded", (2, 3, 4, 5), (4, 3, 6, 7), padding=1)
case("k5_s3_40out", (1, 7, 13, 11), (40, 7, 5, 5), stride=3, padding=2)

write_cases(out, cases)

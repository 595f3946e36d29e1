#!/usr/bin/env python3
"""PyTorch references for tests/lua/test_conv_transpose.lua (Debian python3-torch 1.13).

Usage: conv_transpose_ref.py OUTDIR

For every case below writes, as float32 .npy files in OUTDIR:
  <id>_x.npy, <id>_w.npy, <id>_b.npy (when the case has a bias)   the operands
  <id>_y.npy                                                      F.conv_transpose2d(x, w, b, ...)
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
rng = np.random.RandomState(4321)
torch.set_num_threads(1)


cases = []


def case(cid, xshape, wshape, bias=True, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    x = torch.from_numpy(rng.randn(*xshape).astype(np.float32)).requires_grad_()
    w = torch.from_numpy(rng.randn(*wshape).astype(np.float32)).requires_grad_()
    b = torch.from_numpy(rng.randn(wshape[1] * groups).astype(np.float32)).requires_grad_() if bias else None
    conv_case(out, cases, rng, cid,
              lambda x, w, b: F.conv_transpose2d(x, w, b, stride, padding, output_padding, groups, dilation), x, w, b,
              dict(stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups))


# odd shapes: 9x7 planes, 13 channels, stride 2, dilation 2, groups 3, output_padding 1
case("s2_p1_op1_13ch", (2, 13, 9, 7), (13, 5, 3, 3), stride=2, padding=1, output_padding=1)
case("g3_d2_p2", (2, 9, 9, 7), (9, 4, 3, 3), padding=2, dilation=2, groups=3)
case("g3_d2_s23_op12", (1, 6, 5, 4), (6, 2, 3, 2), bias=False, stride=(2, 3), padding=(1, 0), output_padding=(1, 2),
     dilation=2, groups=3)
# output_padding >= stride (allowed because the dilation is larger): rows no input reaches
case("op_ge_stride_d3", (2, 4, 6, 5), (4, 3, 3, 3), stride=1, output_padding=2, dilation=3)
case("unet_k2_s2", (2, 8, 5, 4), (8, 4, 2, 2), stride=2)
case("k1", (1, 13, 9, 7), (13, 7, 1, 1))
case("depthwise_k5_s2_p2_op1", (2, 4, 7, 6), (4, 1, 5, 5), bias=False, stride=2, padding=2, output_padding=1, groups=4)
case("s3_p3_op2_13x3", (1, 3, 13, 3), (3, 2, 3, 3), stride=3, padding=3, output_padding=2)
case("g3_s2_d2_op1_13out", (3, 6, 9, 7), (6, 13, 3, 3), stride=2, padding=1, output_padding=1, dilation=2, groups=3)

write_cases(out, cases)

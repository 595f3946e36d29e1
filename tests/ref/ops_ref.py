#!/usr/bin/env python3
"""PyTorch references for the op case tables (dpl.test.op_cases, e.g. tests/lua/test_ops.lua), in float64.

Usage: ops_ref.py DIR

DIR/cases.json lists the cases the Lua side wrote: {"id", "torch": an expression over x0, x1, ... (torch, F, math and
op in scope: op("name", ...) is torch.name, else F.name, else torch.special.name), "inputs": the number of inputs, "grad": which inputs need a gradient, "g": whether a grad_output exists}.
The inputs are DIR/<id>_x<k>.npy (float32, made by the Lua side so both sides see the same numbers) and the
grad_output DIR/<id>_g.npy. For each case this writes DIR/<id>_y.npy (the output) and DIR/<id>_gx<k>.npy (the
gradient of sum(y * g) with respect to input k), computed in float64 and saved as float32; a case whose expression
fails gets DIR/<id>_error.txt instead, so the Lua side can say which one and why.
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

d = sys.argv[1]
torch.set_num_threads(1)
with open(os.path.join(d, "cases.json")) as f:
    cases = json.load(f)


# the PyTorch function of an op named as in dpl.h (torch.exp, F.silu, torch.special.erf, ...)
def op(name, *args):
    for space in (torch, F, torch.special):
        fn = getattr(space, name, None)
        if fn is not None:
            return fn(*args)
    raise NameError("no torch, F or torch.special function named " + name)


def path(name):
    return os.path.join(d, name + ".npy")


for c in cases:
    cid = c["id"]
    try:
        xs = []
        for k in range(c["inputs"]):
            x = torch.from_numpy(np.load(path("%s_x%d" % (cid, k))).astype(np.float64))
            if c["grad"][k]:
                x.requires_grad_()
            xs.append(x)
        scope = {"torch": torch, "F": F, "math": math, "op": op}
        scope.update({"x%d" % k: x for k, x in enumerate(xs)})
        y = eval(c["torch"], scope)
        if isinstance(y, tuple):
            y = y[0]
        if c["g"] and any(c["grad"]):
            g = torch.from_numpy(np.load(path(cid + "_g")).astype(np.float64))
            y.backward(g)
            for k, x in enumerate(xs):
                if c["grad"][k]:
                    np.save(path("%s_gx%d" % (cid, k)), np.float32(x.grad.numpy()))
        np.save(path(cid + "_y"), np.ascontiguousarray(y.detach().numpy().astype(np.float32)))
    except Exception as e:  # reported per case by the Lua side
        with open(os.path.join(d, cid + "_error.txt"), "w") as f:
            f.write("%s: %s" % (type(e).__name__, e))

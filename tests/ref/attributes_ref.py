#!/usr/bin/env python3
"""torchvision references for tests/lua/test_attributes.lua (python3-torch 1.13, python3-torchvision 0.14).

Usage: attributes_ref.py OUTFILE SIZE FLOPS_ARCH...

Writes one fact a line, space-separated:
  params ARCH TOTAL                 parameters of the whole model (GoogLeNet and Inception v3 without the auxiliary
                                    classifiers), for all 14 architectures
  layer_params ARCH INDEX N         parameters of the children 0..INDEX of the reference truncation's list (spec
                                    section 0), at each of the E, S, M, L indices
and for the FLOPS_ARCHs, at a 1 x 3 x SIZE x SIZE input:
  flops ARCH TOTAL                  forward cost of the whole model, counted by forward hooks on the leaf modules as
                                    ptflops does (conv / linear multiply-adds + one per output element for a bias;
                                    BatchNorm 2 per input element (affine); ReLU, SiLU, Sigmoid one per output
                                    element; max / average / adaptive pooling one per input element)
  layer_flops ARCH INDEX F C H W    the same for the children 0..INDEX, and the output shape there
  depth ARCH D                      longest chain of convolution / matrix-product nodes (ConvolutionBackward0,
                                    AddmmBackward0, MmBackward0) in torch's autograd graph of the whole model
  layer_depth ARCH INDEX D          the same at each extraction index
"""
import os
import sys

import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reflib import LOSSNETS  # noqa: E402

torch.set_num_threads(1)
ARCHS = LOSSNETS
MATMUL_NODES = ("ConvolutionBackward", "AddmmBackward", "MmBackward")

# the values do not matter: skip torchvision's (slow) initialisation
for _name in ("normal_", "uniform_", "kaiming_uniform_", "kaiming_normal_", "trunc_normal_", "constant_", "zeros_",
              "ones_", "xavier_uniform_"):
    setattr(torch.nn.init, _name, lambda t, *a, **k: t)


def build(arch):
    kw = {"weights": None}
    if arch in ("googlenet", "inception_v3"):
        kw.update(init_weights=False, aux_logits=False)
    return getattr(torchvision.models, arch)(**kw).eval()


def children(model, attr):
    return list((getattr(model, attr) if attr else model).children())


def chain_depth(t):
    memo = {}

    def visit(fn):
        if fn is None:
            return 0
        if fn in memo:
            return memo[fn]
        best = 0
        for nxt, _ in fn.next_functions:
            best = max(best, visit(nxt))
        memo[fn] = best + (1 if type(fn).__name__.startswith(MATMUL_NODES) else 0)
        return memo[fn]

    return visit(t.grad_fn)


def main():
    out, size, flops_archs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    sys.setrecursionlimit(100000)
    lines = []
    for arch, (attr, layers) in ARCHS.items():
        model = build(arch)
        lines.append("params %s %d" % (arch, sum(p.numel() for p in model.parameters())))
        ch = children(model, attr)
        for i in layers:
            lines.append("layer_params %s %d %d" % (arch, i, sum(p.numel() for c in ch[: i + 1] for p in c.parameters())))
        if arch not in flops_archs:
            continue
        count = [0]

        def hook(m, inp, y):
            x = inp[0]
            if isinstance(m, nn.Conv2d):
                count[0] += y.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
                count[0] += y.numel() if m.bias is not None else 0
            elif isinstance(m, nn.Linear):
                count[0] += y.numel() * m.in_features + (y.numel() if m.bias is not None else 0)
            elif isinstance(m, nn.BatchNorm2d):
                count[0] += x.numel() * (2 if m.affine else 1)
            elif isinstance(m, (nn.ReLU, nn.SiLU, nn.Sigmoid)):
                count[0] += y.numel()
            elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
                count[0] += x.numel()

        for m in model.modules():
            if not list(m.children()):
                m.register_forward_hook(hook)
        with torch.no_grad():
            h = torch.zeros(1, 3, size, size)
            for i, c in enumerate(ch[: max(layers) + 1]):
                h = c(h)
                if i in layers:
                    lines.append("layer_flops %s %d %d %d %d %d" % ((arch, i, count[0]) + tuple(h.shape[1:])))
            count[0] = 0
            model(torch.zeros(1, 3, size, size))
            lines.append("flops %s %d" % (arch, count[0]))
        # depth: at 96 x 96 (the whole model must run; the graph does not depend on the size)
        for p in model.parameters():
            p.requires_grad_(False)
        x = torch.rand(1, 3, 96, 96, requires_grad=True)
        h = x
        for i, c in enumerate(ch[: max(layers) + 1]):
            h = c(h)
            if i in layers:
                lines.append("layer_depth %s %d %d" % (arch, i, chain_depth(h)))
        lines.append("depth %s %d" % (arch, chain_depth(model(x))))
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

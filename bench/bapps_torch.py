#!/usr/bin/env python3
"""PyTorch side of bench/bapps.lua: BAPPS triplets per second of the paper's distance (docs/benchmarks/bapps.md) on the
CPU, the way the reference implementation computes it (torchvision features, eval mode, no grad, F.normalize).

Usage: bapps_torch.py THREADS BATCH REPS ARCH:LAYER ...   (LAYER = E, S, M or L)
Prints one JSON object per network: {"arch", "layer", "seconds" (best of REPS for one batch), "triplets_per_s"}.
"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F
import torchvision

threads, batch, reps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
INDEX = {"alexnet": ("features", [1, 4, 7, 11]), "vgg16": ("features", [3, 8, 15, 29]),
         "squeezenet1_1": ("features", [1, 3, 7, 12]), "resnet18": (None, [2, 4, 5, 7])}
gen = torch.Generator().manual_seed(0)
x = torch.rand((3 * batch, 3, 64, 64), generator=gen)
mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
models = {}
for spec in sys.argv[4:]:
    arch, layer = spec.split(":")
    attr, idxs = INDEX[arch]
    if arch not in models:
        models[arch] = getattr(torchvision.models, arch)(weights=None).eval()
    m = models[arch]
    net = torch.nn.Sequential(*list((getattr(m, attr) if attr else m).children())[: idxs["ESML".index(layer)] + 1])

    def run():
        with torch.no_grad():
            f = F.normalize(net((x - mean) / std), p=2, dim=1)
            ref, p0, p1 = f[:batch], f[batch:2 * batch], f[2 * batch:]
            d0 = ((ref - p0) ** 2).sum(1).mean((1, 2))
            d1 = ((ref - p1) ** 2).sum(1).mean((1, 2))
            return (d0 < d1).float().sum().item()

    run()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    print(json.dumps({"arch": arch, "layer": layer, "seconds": best, "triplets_per_s": batch / best}), flush=True)

"""bench/train_torch.py - the PyTorch side of bench/train.lua: one training step of a benchmark, timed.

    /usr/bin/python3 bench/train_torch.py --threads 2 --repeat 3 JOBS

JOBS is a file (or FIFO) of jobs written by the Lua benchmark, one JSON object a line, run one at a time so that the
benchmark can interleave dpl's runs with ours: {"name", "kind", "arch", "upto", "shape": [N, C, H, W], ...}.
kind "superres": the super-resolution transformation network (tests/ref/superres_ref.py, the module dpl's
lua/dpl/models/superres.lua mirrors) with x{scale} upscaling of an N x 3 x H x W input, trained with Adam(1e-3) on the
feature MSE of the reference truncation (children of torchvision's list attribute, up to child `upto`, frozen, eval
mode, random weights) of its output against an N x 3 x (scale H) x (scale W) target: one step is zero_grad, forward,
the target's features without a graph, the loss, backward and the optimizer step.
kind "delineation": the road delineation U-Net (tests/ref/delineation_ref.py, the module dpl's lua/dpl/models/unet.lua
mirrors) refining an N x 1 map of an N x 3 x H x W input K = 3 times, trained with Adam(1e-3) on the iteration-weighted
BCE + 0.01 x feature MSE of the truncated loss network (frozen, training mode, ImageNet normalisation) of each map
repeated to 3 channels against the mask's. Other benchmarks' steps are added to STEPS.

Prints a first line {"torch": version, "threads": n}, then one JSON object per job:
{"name": ..., "best_ms": ..., "times_ms": [...]} (after one warm-up step).
"""
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
from superres_ref import SuperResNet  # noqa: E402
from delineation_ref import MEAN, STD, UNet, refine  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_peer import serve, truncated  # noqa: E402


def superres_step(job):
    n, c, h, w = job["shape"]
    scale = job.get("scale", 4)
    net = SuperResNet(scale)
    loss_net = truncated(job["arch"], job["upto"])
    for p in loss_net.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    lr = torch.rand(n, c, h, w)
    hr = torch.rand(n, c, h * scale, w * scale)

    def step():
        opt.zero_grad()
        out = net(lr)
        with torch.no_grad():
            target = loss_net(hr)
        loss = F.mse_loss(loss_net(out), target)
        loss.backward()
        opt.step()
    return step


def delineation_step(job):
    n, c, h, w = job["shape"]
    K, mu = 3, 0.01
    net = UNet().train()
    loss_net = truncated(job["arch"], job["upto"]).train()
    for p in loss_net.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    rgb = torch.rand(n, c, h, w)
    mask = (torch.rand(n, 1, h, w) > 0.9).float()
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)

    def feats(m):
        return loss_net((torch.cat([m, m, m], 1) - mean) / std)

    def step():
        opt.zero_grad()
        maps = refine(net, rgb, K)
        fm = [feats(m) for m in maps]
        with torch.no_grad():
            ft = feats(mask)
        coeff = K * (K + 1) / 2
        bce = sum((i + 1) * F.binary_cross_entropy(maps[i], mask) for i in range(K)) / coeff
        mse = sum((i + 1) * F.mse_loss(fm[i], ft) for i in range(K)) / coeff
        (bce + mu * mse).backward()
        opt.step()
    return step


STEPS = {"superres": superres_step, "delineation": delineation_step}


def run_job(job, repeat):
    step = STEPS[job["kind"]](job)
    step()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    return {"name": job["name"], "best_ms": min(times), "times_ms": times}


if __name__ == "__main__":
    sys.exit(serve(run_job, __doc__))

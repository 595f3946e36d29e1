#!/usr/bin/env python3
"""torchvision references for tests/lua/test_architectures.lua (Debian python3-torch 1.13, python3-torchvision 0.14).

Usage: architectures_ref.py OUTDIR [ARCH ...]

For alexnet, vgg11, vgg16, vgg16_bn, vgg19, squeezenet1_1, resnet18, resnet50, resnext50_32x4d and densenet121 (or
the archs named) writes, in OUTDIR:
  input.npy                 a fixed random input, 2 x 3 x 64 x 64 (shared by every arch)
  ARCH/keys.txt             every state_dict key, in order
  ARCH/KEY.npy              each state_dict tensor as float32 (num_batches_tracked too). Its values are seeded: the
                            torchvision initialisation under torch.manual_seed, then every bias and every BatchNorm
                            weight, bias, running_mean and running_var (positive) replaced by random values, so a
                            tensor loaded into the wrong place or left at its default shows.
  ARCH/KEY.lowrank_a.npy,   instead of KEY.npy for the Linear weights with more than 4M elements (the classifiers of
  ARCH/KEY.lowrank_b.npy    AlexNet and VGG, up to 411 MB each): the weight is set to A @ B (rank 32) in the model
                            and only A and B are written; the keys are listed in ARCH/lowrank.txt. The test rebuilds
                            the weight with a matmul.
  ARCH/out_I.npy            the reference truncation's output (docs/benchmarks/lossnets.md: the children of the list
                            attribute run in order, eval mode, no grad) at each extraction index I (E, S, M, L)
  ARCH/gradout_I.npy,       at the M index, eval mode: a fixed random g and the gradient of sum(out_I * g) with respect
  ARCH/gradin_I.npy         to the input (loss networks are backpropagated through), computed in float64
  ARCH/train_I.npy          the same in train mode (BatchNorm with batch statistics) at the M index, for the archs
                            with BatchNorm (benchmarks 3 and 4 run the loss network in train mode)
  ARCH/logits.npy           the full model's forward in eval mode (classification), 2 x 1000
"""
import copy
import os
import sys
import time

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reflib import LOSSNETS  # noqa: E402

ARCHS = {a: LOSSNETS[a] for a in ("alexnet", "vgg11", "vgg16", "vgg16_bn", "vgg19", "squeezenet1_1", "resnet18",
                                   "resnet50", "resnext50_32x4d", "densenet121")}
LOWRANK_OVER = 4 * 1024 * 1024
RANK = 32

out = sys.argv[1]
names = sys.argv[2:] or list(ARCHS)
os.makedirs(out, exist_ok=True)
torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))


def save(path, a):
    np.save(path, np.array(a, dtype=np.float32, order="C"))  # keeps 0-d arrays 0-d


rng = np.random.RandomState(2024)
x = torch.from_numpy(rng.standard_normal((2, 3, 64, 64)).astype(np.float32))
save(os.path.join(out, "input.npy"), x.numpy())


def skip_big(fn):
    """torch.nn.init functions that leave the tensors above LOWRANK_OVER alone (they are set low-rank below):
    initialising a 411 MB classifier only to overwrite it takes seconds"""
    def wrapped(t, *args, **kwargs):
        if t.numel() > LOWRANK_OVER:
            return t
        return fn(t, *args, **kwargs)
    return wrapped


for _name in ("normal_", "uniform_", "kaiming_uniform_", "kaiming_normal_", "constant_", "zeros_", "ones_"):
    setattr(torch.nn.init, _name, skip_big(getattr(torch.nn.init, _name)))


def truncated(model, attr, upto):
    parent = getattr(model, attr) if attr else model
    return list(parent.children())[: upto + 1]


for i, arch in enumerate(names):
    t0 = time.time()
    attr, layers = ARCHS[arch]
    d = os.path.join(out, arch)
    os.makedirs(d, exist_ok=True)
    torch.manual_seed(100 + i)
    model = getattr(torchvision.models, arch)(weights=None)
    gen = torch.Generator().manual_seed(200 + i)
    bn_prefixes = {n + "." for n, m in model.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}
    sd = model.state_dict()
    lowrank = []
    with torch.no_grad():
        for key, t in sd.items():
            prefix = key[: key.rfind(".") + 1]
            leaf = key[len(prefix):]
            if prefix in bn_prefixes:
                if leaf == "weight":
                    t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
                elif leaf == "bias":
                    t.copy_(torch.randn(t.shape, generator=gen) * 0.2)
                elif leaf == "running_mean":
                    t.copy_(torch.randn(t.shape, generator=gen) * 0.2)
                elif leaf == "running_var":
                    t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
                elif leaf == "num_batches_tracked":
                    t.fill_(7)
            elif leaf == "bias":
                t.copy_(torch.randn(t.shape, generator=gen) * 0.05)
            elif t.dim() == 2 and t.numel() > LOWRANK_OVER:
                # the default Linear init has std 1/sqrt(3 fan_in); A @ B keeps that scale
                std = 1.0 / np.sqrt(3.0 * t.shape[1])
                a = torch.randn((t.shape[0], RANK), generator=gen) * (std / np.sqrt(RANK))
                b = torch.randn((RANK, t.shape[1]), generator=gen)
                t.copy_(a @ b)
                save(os.path.join(d, key + ".lowrank_a.npy"), a.numpy())
                save(os.path.join(d, key + ".lowrank_b.npy"), b.numpy())
                lowrank.append(key)
    model.load_state_dict(sd)
    with open(os.path.join(d, "keys.txt"), "w") as f:
        for key in sd:
            f.write(key + "\n")
    with open(os.path.join(d, "lowrank.txt"), "w") as f:
        for key in lowrank:
            f.write(key + "\n")
    for key, t in sd.items():
        if key not in lowrank:
            save(os.path.join(d, key + ".npy"), t.float().numpy())

    model.eval()
    with torch.no_grad():
        children = truncated(model, attr, max(layers))
        h = x
        for j, child in enumerate(children):
            h = child(h)
            if j in layers:
                save(os.path.join(d, "out_%d.npy" % j), h.numpy())
        save(os.path.join(d, "logits.npy"), model(x).numpy())
        # the input gradient of sum(out_M * g) for a fixed random g (eval mode): loss networks are backpropagated.
        # Computed in float64: where a pre-activation is within rounding of zero, float32 runs may take either side
        # of a ReLU kink, so the float64 gradient is the fair reference for any float32 implementation.
        with torch.enable_grad():
            m64 = copy.deepcopy(torch.nn.Sequential(*truncated(model, attr, layers[2]))).double()
            xg = x.double().clone().requires_grad_()
            h = m64(xg)
            g = torch.from_numpy(np.random.RandomState(300 + i).standard_normal(h.shape).astype(np.float32))
            (h * g.double()).sum().backward()
            del m64
            save(os.path.join(d, "gradout_%d.npy" % layers[2]), g.numpy())
            save(os.path.join(d, "gradin_%d.npy" % layers[2]), xg.grad.numpy())
        if bn_prefixes:
            model.train()
            h = x
            for j, child in enumerate(truncated(model, attr, layers[2])):
                h = child(h)
            save(os.path.join(d, "train_%d.npy" % layers[2]), h.numpy())
    print(arch, "ok %.1f s" % (time.time() - t0), flush=True)

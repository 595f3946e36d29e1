#!/usr/bin/env python3
"""torchvision references for tests/lua/test_lossnets.lua: the 56 loss networks loaded from real torch.save files.

Usage: lossnets_ref.py OUTDIR [ARCH ...]      (default: all 14 architectures)

For every arch writes, under OUTDIR/<arch>/:
  zip.pth, legacy.pth  the same seeded random state_dict saved by torch.save in the zip format (the default since
                       PyTorch 1.6) and in the legacy format (_use_new_zipfile_serialization=False), float32 (and
                       int64 num_batches_tracked) as torchvision's own files. For the archs in FULL the whole
                       model's state_dict (classifier included: what a user drops into weights/); for the others only
                       the keys of the children up to the L layer (the loader must pick the keys it needs either way)
  input.npy            a random input, 2 x 3 x 64 x 64 (float32, uniform in [-1, 1])
  ok                   written last: the arch's files are complete
  out_<idx>.npy        the reference truncation's output (docs/benchmarks/lossnets.md: the children of the list
                       attribute, run in order, eval mode) at each extraction index E, S, M, L, computed in
                       float64 from the float32 weights that are in the files, saved as float32
and OUTDIR/resnet50/upto_S.pth: resnet50 truncated at its S layer (zip), for the test that a file lacking the tensors
a deeper layer needs is refused with the missing names.

Weights (architectures_inception_ref.py's scheme, so that activations stay O(1) through the 271 layers of EfficientNet-B7):
conv/linear weights ~ N(0, 1/fan_in), biases ~ N(0, 0.1^2), BatchNorm weight ~ U(0.5, 1.5), bias ~ N(1, 0.5^2);
every BatchNorm's running statistics are set to the statistics of its actual input on a calibration batch, then
perturbed at random (running_mean, running_var and num_batches_tracked all random, matching no batch); BatchNorms
past the L layer get plain random statistics.
"""
import os
import sys
import warnings

import numpy as np
import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reflib import LOSSNETS  # noqa: E402
from architectures_inception_ref import randomise, save  # noqa: E402  (same random scheme as the model tests)

warnings.filterwarnings("ignore")
torch.set_num_threads(1)  # the Lua side of the test runs beside it on small machines

ARCHS = LOSSNETS
FULL = {"resnet18", "squeezenet1_1"}  # small archs: the whole files stay small (disk use of the test)
# never run by the reference truncation (docs/benchmarks/lossnets.md)
SKIP_CHILDREN = {"aux1", "aux2", "AuxLogits"}


def named_children(model, attr):
    """(state_dict prefix, module) of the list the reference truncates"""
    if attr is None:
        return [(name + ".", m) for name, m in model.named_children() if name not in SKIP_CHILDREN]
    return [("%s.%s." % (attr, name), m) for name, m in getattr(model, attr).named_children()]


def build(arch):
    kw = {"weights": None}
    if arch in ("googlenet", "inception_v3"):
        kw["init_weights"] = False  # every tensor is overwritten below
    if arch == "inception_v3":
        kw["aux_logits"] = True     # torchvision's checkpoint has the AuxLogits keys; keep them in the full dict
    return getattr(torchvision.models, arch)(**kw)


def calibrate(model, children, upto, x, gen):
    """running statistics of each BN run up to `upto` := its input's batch statistics on x plus 6 random images,
    perturbed; the others plain random"""
    model.eval()
    done = set()

    def pre_hook(m, args):
        if m in done:
            return
        done.add(m)
        h = args[0]
        mean = h.mean(dim=(0, 2, 3))
        var = h.var(dim=(0, 2, 3), unbiased=True).clamp_min(1e-4)
        n = m.num_features
        m.running_mean.copy_(mean + torch.randn(n, generator=gen, dtype=torch.float64) * 0.1 * var.sqrt())
        m.running_var.copy_(var * (torch.rand(n, generator=gen, dtype=torch.float64) * 0.8 + 0.6))
        m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=gen)))

    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    hooks = [m.register_forward_pre_hook(pre_hook) for m in bns]
    with torch.no_grad():
        h = torch.cat([x, torch.rand(6, 3, x.shape[2], x.shape[3], generator=gen, dtype=torch.float64) * 2 - 1])
        for _, c in children[: upto + 1]:
            h = c(h)
    for hk in hooks:
        hk.remove()
    with torch.no_grad():
        for m in bns:
            if m not in done:
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen, dtype=torch.float64) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen, dtype=torch.float64) + 0.5)
                m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=gen)))


def keys_upto(model, children, upto):
    prefixes = tuple(p for p, _ in children[: upto + 1])
    return [k for k in model.state_dict() if k.startswith(prefixes)]


def make(arch, out):
    attr, layers = ARCHS[arch]
    gen = torch.Generator().manual_seed(1000 + sum(ord(c) for c in arch))
    model = build(arch).double()
    randomise(model, gen)
    children = named_children(model, attr)
    x = torch.rand(2, 3, 64, 64, generator=gen, dtype=torch.float64) * 2 - 1
    x = x.float().double()
    calibrate(model, children, layers[3], x, gen)
    model.float()  # the files hold float32; the references are computed from exactly those values

    d = os.path.join(out, arch)
    os.makedirs(d, exist_ok=True)
    sd = model.state_dict()
    if arch not in FULL:
        sd = {k: sd[k] for k in keys_upto(model, children, layers[3])}
    torch.save(sd, os.path.join(d, "zip.pth"))
    torch.save(sd, os.path.join(d, "legacy.pth"), _use_new_zipfile_serialization=False)
    if arch == "resnet50":
        s = model.state_dict()
        torch.save({k: s[k] for k in keys_upto(model, children, layers[1])}, os.path.join(d, "upto_S.pth"))

    model.double()
    save(os.path.join(d, "input.npy"), x)
    with torch.no_grad():
        h = x
        for i, (_, c) in enumerate(children[: layers[3] + 1]):
            h = c(h)
            if i in layers:
                save(os.path.join(d, "out_%d.npy" % i), h)
    open(os.path.join(d, "ok"), "w").close()  # the test waits for this file (it runs beside this script)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    archs = sys.argv[2:] or list(ARCHS)
    for arch in archs:
        make(arch, out)
        print(arch, "ok", flush=True)
    with open(os.path.join(out, "done"), "w") as f:
        f.write("\n".join(archs) + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""PyTorch reference for tests/lua/test_bapps.lua: the BAPPS benchmark (docs/benchmarks/bapps.md) on a BAPPS-format
tree, with seeded random torchvision weights; written from docs/benchmarks/bapps.md, with torchvision models.

Usage: bapps_ref.py FIXTURE_DIR OUTDIR ARCH:LAYER[,LAYER...] ...
LAYER is E, S, M, L, or lpips: LPIPS v0.1 (alexnet, vgg16, squeezenet1_1 backbones) with the linear layers read from
$LPIPS_WEIGHTS/v0.1/{alex,vgg,squeeze}.pth, written here from LPIPS's definition ([-1,1] input, ScalingLayer, unit
normalisation with eps 1e-10, learned channel weights, spatial mean, sum over LPIPS's layers).

Writes OUTDIR/ARCH.pth (a seeded random state_dict, torch.save; BatchNorm statistics randomised too, the classifier
left out) and OUTDIR/ref.json: a list of {"arch", "layer", "2afc": {subset: score, "mean": x}, "jnd": {subset: mAP,
"pooled": x}} in the order given, the shape experiments/bapps.lua --json writes; and OUTDIR/margins.json: per
network and 2AFC subset the smallest |d0 - d1| / max(d0, d1) (a float32 implementation can flip a comparison only
where this is tiny).
"""
import glob
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image

fixture, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))

INDEX = {"alexnet": ("features", [1, 4, 7, 11]), "vgg16": ("features", [3, 8, 15, 29]),
         "squeezenet1_1": ("features", [1, 3, 7, 12]), "resnet18": (None, [2, 4, 5, 7])}
SUBSETS_2AFC = ["traditional", "cnn", "superres", "deblur", "color", "frameinterp"]
SUBSETS_JND = ["traditional", "cnn"]
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def load_img(path):
    # docs/benchmarks/bapps.md: RGB, Resize((64,64)) bilinear (a no-op for 64x64 patches), ToTensor, ImageNet Normalize
    img = Image.open(path).convert("RGB")
    if img.size != (64, 64):
        img = img.resize((64, 64), Image.BILINEAR)
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)


def stems(d):
    return sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(d, "*.png")))


def seeded(arch, seed):
    torch.manual_seed(seed)
    model = getattr(torchvision.models, arch)(weights=None)
    gen = torch.Generator().manual_seed(seed + 1)
    bn = {n + "." for n, m in model.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}
    sd = model.state_dict()
    with torch.no_grad():
        for key, t in sd.items():
            prefix, leaf = key[: key.rfind(".") + 1], key[key.rfind(".") + 1:]
            if prefix in bn and leaf in ("weight", "running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif prefix in bn and leaf in ("bias", "running_mean"):
                t.copy_(torch.randn(t.shape, generator=gen) * 0.2)
            elif leaf == "bias":
                t.copy_(torch.randn(t.shape, generator=gen) * 0.05)
    model.load_state_dict(sd)
    keep = {k: v for k, v in sd.items() if not k.startswith("classifier.") and not k.startswith("fc.")}
    torch.save(keep, os.path.join(out, arch + ".pth"))
    return model.eval()


def distance(children, idx, a, b):
    def feats(x):
        h = (x - MEAN) / STD
        for child in children[: idx + 1]:
            h = child(h)
        return F.normalize(h, p=2, dim=1)
    return ((feats(a) - feats(b)) ** 2).sum(1).mean((1, 2))


LPIPS = {"alexnet": ("alex", [1, 4, 7, 9, 11]), "vgg16": ("vgg", [3, 8, 15, 22, 29]),
         "squeezenet1_1": ("squeeze", [1, 4, 7, 9, 10, 11, 12])}
SHIFT = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
SCALE = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)


def lpips_distance(arch, children, a, b):
    net, layers = LPIPS[arch]
    lin = torch.load(os.path.join(os.environ["LPIPS_WEIGHTS"], "v0.1", net + ".pth"), map_location="cpu")

    def feats(x):
        h, out = (x * 2 - 1 - SHIFT) / SCALE, []
        for j, child in enumerate(children[: max(layers) + 1]):
            h = child(h)
            if j in layers:
                out.append(h / (torch.sqrt((h ** 2).sum(1, keepdim=True)) + 1e-10))
        return out
    d = 0
    for k, (x, y) in enumerate(zip(feats(a), feats(b))):
        d = d + F.conv2d((x - y) ** 2, lin["lin%d.model.1.weight" % k]).mean((2, 3)).view(-1)
    return d


def voc_ap(rec, prec):
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = max(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def jnd_map(d, s):
    order = np.argsort(d, kind="stable")
    s = s[order]
    tp = np.cumsum(s)
    fp = np.cumsum(1 - s)
    fn = np.sum(s) - tp
    return voc_ap(tp / (tp + fn), tp / (tp + fp))


models, results, margins = {}, [], []
for i, spec in enumerate(sys.argv[3:]):
    arch, layers = spec.split(":")
    attr, idxs = INDEX[arch]
    if arch not in models:
        models[arch] = seeded(arch, 900 + 10 * len(models))
    model = models[arch]
    children = list((getattr(model, attr) if attr else model).children())
    for layer in layers.split(","):
        if layer == "lpips":
            dist_fn = lambda a, b: lpips_distance(arch, children, a, b)
        else:
            dist_fn = (lambda i: lambda a, b: distance(children, i, a, b))(idxs["ESML".index(layer)])
        res = {"arch": arch, "layer": layer, "2afc": {}, "jnd": {}}
        with torch.no_grad():
            for subset in SUBSETS_2AFC:
                d = os.path.join(fixture, "2afc", "val", subset)
                if not os.path.isdir(d):
                    continue
                names = stems(os.path.join(d, "ref"))
                ref = torch.stack([load_img(os.path.join(d, "ref", n + ".png")) for n in names])
                p0 = torch.stack([load_img(os.path.join(d, "p0", n + ".png")) for n in names])
                p1 = torch.stack([load_img(os.path.join(d, "p1", n + ".png")) for n in names])
                h = np.array([np.load(os.path.join(d, "judge", n + ".npy")).reshape(-1)[0] for n in names], np.float64)
                d0 = dist_fn(ref, p0).numpy().astype(np.float64)
                d1 = dist_fn(ref, p1).numpy().astype(np.float64)
                score = np.where(d0 < d1, 1 - h, np.where(d1 < d0, h, 0.5))
                gap = float(np.min(np.abs(d0 - d1) / np.maximum(np.maximum(d0, d1), 1e-30)))
                margins.append({"arch": arch, "layer": layer, "subset": subset, "min_relative_gap": gap})
                res["2afc"][subset] = float(score.mean())
            res["2afc"]["mean"] = float(np.mean([v for k, v in res["2afc"].items()]))
            ds, ss = [], []
            for subset in SUBSETS_JND:
                d = os.path.join(fixture, "jnd", "val", subset)
                if not os.path.isdir(d):
                    continue
                names = stems(os.path.join(d, "p0"))
                p0 = torch.stack([load_img(os.path.join(d, "p0", n + ".png")) for n in names])
                p1 = torch.stack([load_img(os.path.join(d, "p1", n + ".png")) for n in names])
                s = np.array([np.load(os.path.join(d, "same", n + ".npy")).reshape(-1)[0] for n in names], np.float64)
                dist = dist_fn(p0, p1).numpy().astype(np.float64)
                res["jnd"][subset] = jnd_map(dist, s)
                ds.append(dist)
                ss.append(s)
            if ds:
                res["jnd"]["pooled"] = jnd_map(np.concatenate(ds), np.concatenate(ss))
        results.append(res)
with open(os.path.join(out, "ref.json"), "w") as f:
    json.dump(results, f, indent=1)
with open(os.path.join(out, "margins.json"), "w") as f:
    json.dump(margins, f, indent=1)
print("ok")

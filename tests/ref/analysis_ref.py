#!/usr/bin/env python3
"""The reference of tests/lua/test_analysis.lua: the paper's analysis (docs/analysis.md) of a synthetic data set,
computed independently with numpy and scipy.

Usage: analysis_ref.py IN.json OUT.json

IN.json (written by the test): {"values": {score: {arch: {layer: v}}}, "numbers": {score: benchmark number},
"archs": [paper order], "attributes": [{"name", "of": "arch"|"layer", "field"}], "attrs": {arch: {..., "layers":
{layer: {...}}}}}. OUT.json: best layers, per-score ranks (ties averaged, rank 1 = highest best value), mean ranks
per benchmark number and overall (numbers weighted equally), and Pearson/Spearman r and two-sided p of every score
with every attribute per layer group (E, S, M, L, best = each architecture's best layer, all = every network).
"""
import json
import sys

import numpy as np
from scipy import stats

LAYERS = ["E", "S", "M", "L"]
inp = json.load(open(sys.argv[1]))
values, numbers, archs = inp["values"], inp["numbers"], inp["archs"]


def best_of(per):
    out = {}
    for a, layers in per.items():
        present = [(l, layers[l]) for l in LAYERS if l in layers]
        if present:
            # the first layer among equal maxima (E before S before M before L)
            m = max(v for _, v in present)
            out[a] = next((l, v) for l, v in present if v == m)
    return out


out = {"best": {}, "rank": {}, "mean_rank": {}, "overall": {}, "corr": []}
per_number = {}
for score, per in values.items():
    best = best_of(per)
    out["best"][score] = {a: b[0] for a, b in best.items()}
    names = [a for a in archs if a in best]
    r = stats.rankdata([-best[a][1] for a in names], method="average")
    out["rank"][score] = dict(zip(names, r.tolist()))
    n = str(numbers[score])
    for a, ra in zip(names, r):
        per_number.setdefault(n, {}).setdefault(a, []).append(ra)
for n, per in per_number.items():
    out["mean_rank"][n] = {a: float(np.mean(v)) for a, v in per.items()}
overall = {}
for n, per in out["mean_rank"].items():
    for a, v in per.items():
        overall.setdefault(a, []).append(v)
out["overall"] = {a: float(np.mean(v)) for a, v in overall.items()}


def attr(a, layer, at):
    e = inp["attrs"].get(a)
    if e is None:
        return None
    if at["of"] == "arch":
        return e.get(at["field"])
    return e["layers"].get(layer, {}).get(at["field"])


for score, per in values.items():
    best = best_of(per)
    for group in LAYERS + ["best", "all"]:
        points = []
        for a in archs:
            if group == "best":
                if a in best:
                    points.append((a, best[a][0], best[a][1]))
            else:
                for l in LAYERS:
                    if (group == "all" or group == l) and l in per.get(a, {}):
                        points.append((a, l, per[a][l]))
        for at in inp["attributes"]:
            xy = [(attr(a, l, at), v) for a, l, v in points]
            xy = [(x, y) for x, y in xy if x is not None]
            x = np.array([p[0] for p in xy], dtype=float)
            y = np.array([p[1] for p in xy], dtype=float)
            row = {"score": score, "group": group, "attribute": at["name"], "n": len(xy)}
            if len(xy) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0:
                pr = stats.pearsonr(x, y)
                sr = stats.spearmanr(x, y)
                row.update(pearson=float(pr[0]), pearson_p=float(pr[1]), spearman=float(sr[0]),
                           spearman_p=float(sr[1]))
            out["corr"].append(row)

json.dump(out, open(sys.argv[2], "w"))

#!/usr/bin/env python3
"""numpy references for tests/lua/test_metrics.lua, written from the formulas (docs/benchmarks/bapps.md, §3.4, §4.3).

Usage: metrics_ref.py OUTDIR

Writes the inputs as float32 .npy files in OUTDIR and OUTDIR/expected.lua, a Lua table of the expected values
(in double precision, computed from the float32 inputs as the reference code's numpy arrays would be).
"""
import os
import sys

import numpy as np

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.RandomState(20231)
expected = {}


def save(name, a):
    a = np.ascontiguousarray(np.asarray(a, dtype=np.float32))
    np.save(os.path.join(out, name + ".npy"), a)
    return a.astype(np.float64)


# ---- 2AFC: LPIPS score_2afc_dataset ----------------------------------------------------------------------------------
def score_2afc(d0s, d1s, gts):
    scores = (d0s < d1s) * (1. - gts) + (d1s < d0s) * gts + (d1s == d0s) * .5
    return np.mean(scores)


n = 1000
d0 = rng.rand(n)
d1 = rng.rand(n)
d1[::7] = d0[::7]                       # exact ties score 0.5
judge = rng.randint(0, 6, n) / 5.0      # 5 raters: 0, .2, ..., 1
d0, d1, judge = save("afc_d0", d0), save("afc_d1", d1), save("afc_judge", judge)
expected["afc_score"] = score_2afc(d0, d1, judge)
expected["afc_accuracy"] = np.mean((d0 < d1) == (judge < 0.5))

# ---- JND: LPIPS score_jnd_dataset + voc_ap ---------------------------------------------------------------------------
def voc_ap(rec, prec):
    mrec = np.concatenate(([0.], rec, [1.]))
    mpre = np.concatenate(([0.], prec, [0.]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


def jnd_map(ds, sames):
    order = np.argsort(ds)   # numpy's default sort, as LPIPS (insertion sort, hence stable, for <= 16 values)
    s = sames[order]
    tps = np.cumsum(s)
    fps = np.cumsum(1 - s)
    fns = np.sum(s) - tps
    with np.errstate(invalid="ignore", divide="ignore"):
        precs = tps / (tps + fps)
        recs = tps / (tps + fns)
    return voc_ap(recs, precs)


# a large subset without ties, 3 raters
d = save("jnd_d", rng.rand(2000) ** 2)
same = save("jnd_same", rng.randint(0, 4, 2000) / 3.0)
expected["jnd_map"] = jnd_map(d, same)
# a second subset, and the pooled mAP over both (REF concatenates cnn and traditional)
d2 = save("jnd_d2", rng.rand(1500) * 0.8)
same2 = save("jnd_same2", rng.randint(0, 4, 1500) / 3.0)
expected["jnd_map2"] = jnd_map(d2, same2)
expected["jnd_map_pooled"] = jnd_map(np.concatenate([d, d2]), np.concatenate([same, same2]))
# small with ties in distance and runs of same = 0 (recall stays flat)
dt = save("jnd_ties_d", [0.5, 0.1, 0.5, 0.3, 0.1, 0.9, 0.3, 0.5, 0.2, 0.7, 0.3, 0.1])
st = save("jnd_ties_same", [1, 0, 2 / 3, 0, 1 / 3, 1, 0, 0, 1, 1 / 3, 2 / 3, 0])
expected["jnd_ties"] = jnd_map(dt, st)
# hard labels, perfect ranking: every same pair closer than every different pair -> AP 1
expected["jnd_perfect"] = jnd_map(np.array([0.1, 0.2, 0.3, 0.4]), np.array([1., 1., 0., 0.]))
# worst ranking
expected["jnd_worst"] = jnd_map(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0., 0., 1., 1.]))
# no pair judged the same: recall 0/0 -> NaN
expected["jnd_none_same"] = jnd_map(np.array([0.1, 0.2, 0.3]), np.array([0., 0., 0.]))

# ---- delineation: TZ/REF test.py (pred > 0.3, gt > 0.5, strict per-pixel counts, per image then mean) -------------
preds, gts = [], []
for i in range(3):
    p = rng.rand(20, 24).astype(np.float32)
    p[0, :6] = np.float32(0.3)           # exactly at the threshold: not a positive (the comparison is in float32)
    g = (rng.rand(20, 24) > 0.7).astype(np.float32)
    preds.append(p)
    gts.append(g)
P = np.stack(preds)[:, None]
G = np.stack(gts)[:, None]
save("del_pred", P)
save("del_gt", G)
comp, corr, qual = [], [], []
for p, g in zip(P, G):
    pb = p > np.float32(0.3)
    gb = g > 0.5
    tp = np.sum(pb & gb)
    fn = np.sum(~pb & gb)
    fp = np.sum(pb & ~gb)
    comp.append(tp / (tp + fn))
    corr.append(tp / (tp + fp))
    qual.append(tp / (tp + fp + fn))
    if len(comp) == 1:
        expected["del_tp0"], expected["del_fp0"], expected["del_fn0"] = int(tp), int(fp), int(fn)
# the published test.py: for k in 1..K, for i in 1..k: add metric(iteration i); then divide by the image count
iters = [P, np.clip(P + 0.1, 0, 1).astype(np.float32), np.clip(P - 0.2, 0, 1).astype(np.float32)]
save("del_pred2", iters[1])
save("del_pred3", iters[2])
tot = np.zeros(3)
for img in range(len(P)):
    g = G[img] > 0.5
    per_iter = []
    for it in iters:
        pb = it[img] > np.float32(0.3)
        tp = np.sum(pb & g); fn = np.sum(~pb & g); fp = np.sum(pb & ~g)
        per_iter.append(np.array([tp / (tp + fn), tp / (tp + fp), tp / (tp + fp + fn)]))
    for k in range(len(iters)):
        for i in range(k + 1):
            tot += per_iter[i]
tot /= len(P)
expected["del_pub_completeness"], expected["del_pub_correctness"], expected["del_pub_quality"] = tot
expected["del_completeness"] = np.mean(comp)
expected["del_correctness"] = np.mean(corr)
expected["del_quality"] = np.mean(qual)

# ---- classification accuracy: argmax(output) == argmax(one-hot) ----------------------------------------------------
logits = rng.randn(257, 10)
logits[::9, 3] = logits[::9].max(axis=1)   # ties: the first maximum wins, as torch.argmax / np.argmax
labels = rng.randint(0, 10, 257)
labels[::4] = np.argmax(logits[::4], axis=1)
logits = save("cls_logits", logits)
save("cls_labels", labels)
onehot = np.eye(10)[labels]
save("cls_onehot", onehot)
expected["cls_accuracy"] = np.mean(np.argmax(logits, axis=1) == np.argmax(onehot, axis=1))


def lua(v):
    v = float(v)
    if np.isnan(v):
        return "0/0"
    return repr(v)


with open(os.path.join(out, "expected.lua"), "w") as f:
    f.write("return {\n")
    for k, v in expected.items():
        f.write("  %s = %s,\n" % (k, lua(v)))
    f.write("}\n")

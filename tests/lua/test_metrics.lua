-- Metrics against numpy references written from the formulas (tests/ref/metrics_ref.py): the BAPPS 2AFC score and
-- JND mAP as LPIPS computes them (with ties, flat recall runs, the pooled variant and the NaN case), the delineation
-- completeness / correctness / quality of the reference test script, and classification accuracy.
local dpl = require "dpl"
local test = require "dpl.test"
local bapps = require "dpl.metrics.bapps"
local delin = require "dpl.metrics.delineation"
local cls = require "dpl.metrics.classification"
local S = test.suite("metrics", {configurations = {"default"}})   -- default only: host-side metrics

local root = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/.."
local dir = os.tmpname() .. "_metrics"
local ok = os.execute(("/usr/bin/python3 '%s/tests/ref/metrics_ref.py' '%s'"):format(root, dir))
local E = (ok == 0 or ok == true) and dofile(dir .. "/expected.lua") or nil

local function load(name) return dpl.load_npy(dir .. "/" .. name .. ".npy", {device = "cpu"}) end
local function need(t) t:ok(E, "tests/ref/metrics_ref.py (python3-numpy) must run to make the references") end

S:add("2AFC score and accuracy match LPIPS's formula, ties scoring 0.5", function(t)
  need(t)
  local d0, d1, h = load("afc_d0"), load("afc_d1"), load("afc_judge")
  t:near(bapps.score_2afc(d0, d1, h), E.afc_score, 1e-12)
  t:near(bapps.accuracy_2afc(d0, d1, h), E.afc_accuracy, 1e-12)
  -- hand-checked cases: p0 closer -> 1-h; p1 closer -> h; equal -> 0.5
  t:eq(bapps.scores_2afc({0.1, 0.5, 0.3}, {0.2, 0.4, 0.3}, {0.2, 0.2, 0.8})[1], 0.8)
  t:near(bapps.score_2afc({0.1, 0.5, 0.3}, {0.2, 0.4, 0.3}, {0.2, 0.2, 0.8}), (0.8 + 0.2 + 0.5) / 3, 1e-15)
  t:near(bapps.average_2afc({traditional = 0.7, cnn = 0.8, superres = 0.6}), 0.7, 1e-15)
end)

S:add("2AFC rejects mismatched inputs", function(t)
  t:raises(function() bapps.score_2afc({1, 2}, {1}, {0, 0}) end, "d0 has 2 values but d1 has 1")
  t:raises(function() bapps.score_2afc({}, {}, {}) end, "no triplets")
  t:raises(function() bapps.score_2afc({1, "x"}, {1, 2}, {0, 0}) end, "element 2")
end)

S:add("JND mAP matches LPIPS's voc_ap on large subsets and the pooled union", function(t)
  need(t)
  local d, s, d2, s2 = load("jnd_d"), load("jnd_same"), load("jnd_d2"), load("jnd_same2")
  t:near(bapps.jnd_map(d, s), E.jnd_map, 1e-12)
  t:near(bapps.jnd_map(d2, s2), E.jnd_map2, 1e-12)
  t:near(bapps.jnd_map_pooled({{d, s}, {d2, s2}}), E.jnd_map_pooled, 1e-12)
  -- pooling is not the mean of the subset mAPs
  t:ok(math.abs(E.jnd_map_pooled - (E.jnd_map + E.jnd_map2) / 2) > 1e-4, "the test data distinguishes the two")
end)

S:add("JND mAP with tied distances, perfect and worst rankings, and no same pair", function(t)
  need(t)
  t:near(bapps.jnd_map(load("jnd_ties_d"), load("jnd_ties_same")), E.jnd_ties, 1e-12)
  t:near(bapps.jnd_map({0.1, 0.2, 0.3, 0.4}, {1, 1, 0, 0}), E.jnd_perfect, 1e-15)
  t:near(bapps.jnd_map({0.1, 0.2, 0.3, 0.4}, {0, 0, 1, 1}), E.jnd_worst, 1e-15)
  t:eq(E.jnd_perfect, 1)
  local v = bapps.jnd_map({0.1, 0.2, 0.3}, {0, 0, 0})
  t:ok(v ~= v and E.jnd_none_same ~= E.jnd_none_same, "NaN, as LPIPS gives")
  t:raises(function() bapps.jnd_map({0 / 0}, {1}) end, "NaN")
  t:raises(function() bapps.jnd_map_pooled({{{1, 2}, {1}}}) end, "part 1 has 2 distances but 1 same values")
end)

S:add("delineation completeness, correctness and quality per image, averaged", function(t)
  need(t)
  local p, g = load("del_pred"), load("del_gt")
  local m = delin.mean_scores(p, g)
  t:near(m.completeness, E.del_completeness, 1e-12)
  t:near(m.correctness, E.del_correctness, 1e-12)
  t:near(m.quality, E.del_quality, 1e-12)
  t:eq(m.images[1].tp, E.del_tp0)
  t:eq(m.images[1].fp, E.del_fp0)
  t:eq(m.images[1].fn, E.del_fn0)
  -- a list of per-image maps gives the same
  local m2 = delin.mean_scores({p:select(1, 1), p:select(1, 2), p:select(1, 3)}, {g:select(1, 1), g:select(1, 2), g:select(1, 3)})
  t:near(m2.quality, E.del_quality, 1e-12)
end)

S:add("delineation: the published script's accumulation over iterations", function(t)
  need(t)
  local g = load("del_gt")
  local pub = delin.published_scores({load("del_pred"), load("del_pred2"), load("del_pred3")}, g)
  t:near(pub.completeness, E.del_pub_completeness, 1e-12)
  t:near(pub.correctness, E.del_pub_correctness, 1e-12)
  t:near(pub.quality, E.del_pub_quality, 1e-12)
  t:ok(pub.completeness > 1, "the published numbers can exceed 1")
end)

S:add("delineation: thresholds, empty ground truth and shape errors", function(t)
  -- exactly 0.3 is not a road pixel; 0.31 is; a GT of exactly 0.5 is background
  local s = delin.scores({0.3, 0.31, 0.9, 0.0}, {1, 1, 0.5, 1})
  t:eq(s.tp, 1); t:eq(s.fp, 1); t:eq(s.fn, 2)
  t:near(s.completeness, 1 / 3, 1e-15); t:near(s.correctness, 0.5, 1e-15); t:near(s.quality, 0.25, 1e-15)
  local e = delin.scores({0, 0}, {0, 0})
  t:ok(e.completeness ~= e.completeness, "no road in the GT: completeness is NaN")
  local m = delin.mean_scores({{0.9, 0}, {0, 0}}, {{1, 0}, {0, 0}}, {skip_undefined = true})
  t:eq(m.completeness, 1)
  local m2 = delin.mean_scores({{0.9, 0}, {0, 0}}, {{1, 0}, {0, 0}})
  t:ok(m2.completeness ~= m2.completeness, "by default NaN propagates, as in the reference")
  t:raises(function() delin.scores(dpl.zeros(1, 4, 4), dpl.zeros(1, 4, 5)) end, "differs from ground truth shape")
  t:raises(function() delin.mean_scores({{1}}, {}) end, "1 predictions but 0 ground-truth maps")
end)

S:add("classification accuracy: one-hot or index targets, first maximum wins", function(t)
  need(t)
  local logits, labels, onehot = load("cls_logits"), load("cls_labels"), load("cls_onehot")
  t:near(cls.accuracy(logits, onehot), E.cls_accuracy, 1e-15)
  t:near(cls.accuracy(logits, labels), E.cls_accuracy, 1e-15)
  t:eq(cls.accuracy({{1, 1, 0}, {0, 2, 2}}, {0, 1}), 1)
  t:eq(cls.accuracy({{1, 1, 0}, {0, 2, 2}}, {1, 2}), 0)
  t:raises(function() cls.accuracy({{1, 0}}, {2}) end, "not a class index in 0..1")
  t:raises(function() cls.accuracy({{1, 0}, {0, 1}}, {0}) end, "2 outputs but 1 targets")
  t:raises(function() cls.accuracy(dpl.zeros(2, 3, 4), {0, 1}) end, "must be 1-D or 2-D")
end)

return S

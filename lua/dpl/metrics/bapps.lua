-- BAPPS scores, computed as LPIPS's trainer.py does (docs/benchmarks/bapps.md).
--
--   local bapps = require "dpl.metrics.bapps"
--   bapps.score_2afc(d0, d1, judge)        -> mean 2AFC score of one subset
--   bapps.jnd_map(d, same)                 -> JND mAP of one subset
--   bapps.jnd_map_pooled({{d, same}, ...}) -> one mAP over the union of subsets (what REF reports)
--
-- Arguments are dpl tensors (any shape, read in row-major order) or Lua lists of numbers; all arithmetic is done in
-- double precision on the host, as numpy does on the arrays LPIPS builds.
local util = require "dpl.metrics.util"
local M = {}

-- Per-triplet 2AFC scores: d0 = D(ref, p0), d1 = D(ref, p1), h = fraction of raters who chose p1.
-- A triplet scores 1-h when p0 is judged closer by the metric (d0 < d1), h when p1 is (d1 < d0), 0.5 on a tie.
function M.scores_2afc(d0, d1, judge)
  d0, d1, judge = util.values(d0, "scores_2afc d0"), util.values(d1, "scores_2afc d1"), util.values(judge, "scores_2afc judge")
  local n = util.same_length("scores_2afc", {"d0", "d1", "judge"}, {d0, d1, judge})
  local out = {}
  for i = 1, n do
    local a, b, h = d0[i], d1[i], judge[i]
    if a < b then out[i] = 1 - h
    elseif b < a then out[i] = h
    elseif a == b then out[i] = 0.5
    else out[i] = 0 end   -- a NaN distance: LPIPS's boolean masks are all false, so the triplet scores 0
  end
  return out
end

-- Mean 2AFC score of a subset (the mean over triplets; REF's batch-size-weighted epoch mean equals it).
function M.score_2afc(d0, d1, judge)
  local s = M.scores_2afc(d0, d1, judge)
  if #s == 0 then error("score_2afc: no triplets", 2) end
  return util.mean(s)
end

-- The "accuracy" REF also logs (not the paper metric): the metric's choice agrees with the majority, i.e.
-- (d0 < d1) == (h < 0.5), averaged over triplets.
function M.accuracy_2afc(d0, d1, judge)
  d0, d1, judge = util.values(d0, "accuracy_2afc d0"), util.values(d1, "accuracy_2afc d1"), util.values(judge, "accuracy_2afc judge")
  local n = util.same_length("accuracy_2afc", {"d0", "d1", "judge"}, {d0, d1, judge})
  if n == 0 then error("accuracy_2afc: no triplets", 2) end
  local hits = 0
  for i = 1, n do
    if (d0[i] < d1[i]) == (judge[i] < 0.5) then hits = hits + 1 end
  end
  return hits / n
end

-- REF's 2AFC "avg": the unweighted mean of the subset scores (a table name -> score, or a list).
function M.average_2afc(scores)
  local list = {}
  for _, v in pairs(scores) do list[#list + 1] = v end
  if #list == 0 then error("average_2afc: no subset scores", 2) end
  return util.mean(list)
end

-- Average precision as LPIPS's voc_ap (use_07_metric=False): sentinels (recall 0 and 1, precision 0 and 0), the
-- precision envelope made non-increasing from the right, then the area summed where recall changes.
function M.voc_ap(rec, prec)
  local mrec, mpre = {0}, {0}
  for i = 1, #rec do mrec[i + 1], mpre[i + 1] = rec[i], prec[i] end
  mrec[#mrec + 1], mpre[#mpre + 1] = 1, 0
  for i = #mpre, 2, -1 do
    -- np.maximum propagates NaN
    local a, b = mpre[i - 1], mpre[i]
    if a ~= a or b ~= b then mpre[i - 1] = 0 / 0 elseif b > a then mpre[i - 1] = b end
  end
  local ap = 0
  for i = 1, #mrec - 1 do
    if mrec[i + 1] ~= mrec[i] then ap = ap + (mrec[i + 1] - mrec[i]) * mpre[i + 1] end
  end
  return ap
end

-- JND mAP: pairs sorted by ascending distance d; `same` (fraction of raters who saw no difference) is a soft label.
-- TP = cumsum(same), FP = cumsum(1 - same), FN = sum(same) - TP; precision = TP/(TP+FP), recall = TP/(TP+FN).
-- Equal distances keep their input order (a stable sort). numpy's default argsort, which LPIPS uses, is stable for
-- up to 16 values and may order ties differently beyond that; only exactly equal distances are affected.
-- When no pair has same > 0 the recall is 0/0 and the result is NaN, as in LPIPS.
function M.jnd_map(d, same)
  d, same = util.values(d, "jnd_map d"), util.values(same, "jnd_map same")
  local n = util.same_length("jnd_map", {"d", "same"}, {d, same})
  if n == 0 then error("jnd_map: no pairs", 2) end
  local order = {}
  for i = 1, n do
    if d[i] ~= d[i] then error(("jnd_map: distance %d is NaN"):format(i), 2) end
    order[i] = i
  end
  table.sort(order, function(a, b)
    if d[a] ~= d[b] then return d[a] < d[b] end
    return a < b
  end)
  local total = 0
  for i = 1, n do total = total + same[order[i]] end
  local rec, prec = {}, {}
  local tp, fp = 0, 0
  for k = 1, n do
    local s = same[order[k]]
    tp, fp = tp + s, fp + (1 - s)
    local fn = total - tp
    prec[k] = tp / (tp + fp)
    rec[k] = tp / (tp + fn)
  end
  return M.voc_ap(rec, prec)
end

-- REF's variant: one mAP over the union of the subsets (jnd/val/cnn and jnd/val/traditional concatenated).
-- parts: a list of {d, same} pairs (tensors or lists).
function M.jnd_map_pooled(parts)
  local d, same = {}, {}
  for p, part in ipairs(parts) do
    local pd = util.values(part[1] or part.d, ("jnd_map_pooled part %d d"):format(p))
    local ps = util.values(part[2] or part.same, ("jnd_map_pooled part %d same"):format(p))
    if #pd ~= #ps then
      error(("jnd_map_pooled: part %d has %d distances but %d same values"):format(p, #pd, #ps), 2)
    end
    for i = 1, #pd do d[#d + 1], same[#same + 1] = pd[i], ps[i] end
  end
  return M.jnd_map(d, same)
end

return M

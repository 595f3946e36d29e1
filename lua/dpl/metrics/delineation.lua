-- Road delineation scores as the reference test script computes them (docs/benchmarks/delineation.md): the prediction
-- is binarised at > 0.3 and the ground truth at > 0.5 (both on the 224x224 resized maps), pixels are counted strictly
-- (no tolerance buffer), and each score is computed per image, then averaged over images.
--   completeness = TP / (TP + FN), correctness = TP / (TP + FP), quality = TP / (TP + FP + FN)
--
--   local delin = require "dpl.metrics.delineation"
--   local s = delin.scores(pred, gt)                 -- one image: {completeness=, correctness=, quality=, tp=, fp=, fn=}
--   local m = delin.mean_scores(preds, gts)          -- lists of per-image maps, or N x 1 x H x W batches
local ffi = require "ffi"
local util = require "dpl.metrics.util"
local M = {}

-- The reference compares float32 maps with a Python float, which numpy/torch cast to float32 first: a prediction of
-- exactly float32(0.3) is therefore not above 0.3. Thresholds are rounded to float32 here for the same result.
local function f32(x) return tonumber(ffi.new("float[1]", x)[0]) end

M.PRED_THRESHOLD = 0.3
M.GT_THRESHOLD = 0.5

-- Scores of one image. pred, gt: tensors of the same shape (or flat lists). A denominator of 0 (e.g. no road pixel
-- in the ground truth for completeness) gives NaN, as the reference's array division does.
function M.scores(pred, gt, opts)
  opts = opts or {}
  local pt, gtt = f32(opts.pred_threshold or M.PRED_THRESHOLD), f32(opts.gt_threshold or M.GT_THRESHOLD)
  if util.is_tensor(pred) and util.is_tensor(gt) then
    local a, b = pred:size(), gt:size()
    if not (a == b) then
      error(("delineation.scores: prediction shape %s differs from ground truth shape %s"):format(tostring(a), tostring(b)), 2)
    end
  end
  local p, g = util.values(pred, "delineation.scores pred"), util.values(gt, "delineation.scores gt")
  util.same_length("delineation.scores", {"pred", "gt"}, {p, g})
  local tp, fp, fn = 0, 0, 0
  for i = 1, #p do
    local pi, gi = p[i] > pt, g[i] > gtt
    if pi and gi then tp = tp + 1 elseif gi then fn = fn + 1 elseif pi then fp = fp + 1 end
  end
  local out = {
    tp = tp, fp = fp, fn = fn,
    completeness = tp / (tp + fn),
    correctness = tp / (tp + fp),
    quality = tp / (tp + fp + fn),
  }
  if opts.tolerance and opts.tolerance > 0 then
    local h, w = opts.height, opts.width
    if util.is_tensor(pred) then h, w = pred:size(pred:dim() - 1), pred:size(pred:dim()) end
    if not (h and w and h * w == #p) then
      error("delineation.scores: a tolerance needs 2-D maps (tensors, or opts.height and opts.width)", 2)
    end
    M.relaxed(p, g, h, w, opts.tolerance, pt, gtt, out)
  end
  return out
end

-- Relaxed scores with a buffer of `tol` pixels (Wiedemann, Heipke, Mayer and Jamet 1998, as road extraction papers
-- use them, e.g. Mnih's relaxed precision and recall): a road pixel of one map is matched when the other map has a road
-- pixel within Euclidean distance tol (a disk, dy^2 + dx^2 <= tol^2).
--   relaxed_completeness = matched ground truth / ground truth           (0/0: NaN, no road in the ground truth)
--   relaxed_correctness  = matched prediction / prediction               (0/0: NaN, no road predicted)
--   relaxed_quality      = matched prediction / (prediction + unmatched ground truth)   (NaN when both are empty)
-- With tol = 0 they are the strict scores. p, g: flat row-major lists of h x w values; adds the scores to `out`.
function M.relaxed(p, g, h, w, tol, pt, gtt, out)
  out = out or {}
  pt, gtt = pt or f32(M.PRED_THRESHOLD), gtt or f32(M.GT_THRESHOLD)
  local n = h * w
  local pm, gm = ffi.new("uint8_t[?]", n), ffi.new("uint8_t[?]", n)
  local np_, ng = 0, 0
  for i = 1, n do
    if p[i] > pt then pm[i - 1] = 1; np_ = np_ + 1 end
    if g[i] > gtt then gm[i - 1] = 1; ng = ng + 1 end
  end
  local r = math.floor(tol)
  local offsets = {}
  for dy = -r, r do
    for dx = -r, r do
      if dy * dy + dx * dx <= tol * tol then offsets[#offsets + 1] = {dy, dx} end
    end
  end
  -- the pixels of `a` that have a pixel of `b` within the disk
  local function matched(a, b)
    local count = 0
    for y = 0, h - 1 do
      for x = 0, w - 1 do
        if a[y * w + x] == 1 then
          for _, o in ipairs(offsets) do
            local yy, xx = y + o[1], x + o[2]
            if yy >= 0 and yy < h and xx >= 0 and xx < w and b[yy * w + xx] == 1 then count = count + 1; break end
          end
        end
      end
    end
    return count
  end
  local mg, mp = matched(gm, pm), matched(pm, gm)
  out.relaxed_completeness = mg / ng
  out.relaxed_correctness = mp / np_
  out.relaxed_quality = mp / (np_ + ng - mg)
  return out
end

-- Splits an N x 1 x H x W (or N x H x W) tensor into its N images; a list is returned unchanged.
local function images(x)
  if util.is_tensor(x) then
    local list = {}
    for i = 1, x:size(1) do list[i] = x:select(1, i) end
    return list
  end
  return x
end

-- Per-image scores averaged over images. opts.skip_undefined = true leaves NaN scores (empty denominators) out of
-- the mean instead of letting them make it NaN.
function M.mean_scores(preds, gts, opts)
  opts = opts or {}
  preds, gts = images(preds), images(gts)
  if #preds ~= #gts then
    error(("delineation.mean_scores: %d predictions but %d ground-truth maps"):format(#preds, #gts), 2)
  end
  if #preds == 0 then error("delineation.mean_scores: no images", 2) end
  local keys = {"completeness", "correctness", "quality"}
  if opts.tolerance and opts.tolerance > 0 then
    keys = {"completeness", "correctness", "quality", "relaxed_completeness", "relaxed_correctness", "relaxed_quality"}
  end
  local sum, count = {}, {}
  for _, k in ipairs(keys) do sum[k], count[k] = 0, 0 end
  local per_image = {}
  for i = 1, #preds do
    local s = M.scores(preds[i], gts[i], opts)
    per_image[i] = s
    for _, k in ipairs(keys) do
      if not (opts.skip_undefined and s[k] ~= s[k]) then sum[k], count[k] = sum[k] + s[k], count[k] + 1 end
    end
  end
  local out = {images = per_image, counted = count}
  for _, k in ipairs(keys) do out[k] = sum[k] / count[k] end
  return out
end

-- The numbers the published test script prints (docs/benchmarks/delineation.md, a quirk): at iteration k it adds the
-- metrics of iterations 1..k again, and divides the totals by the number of images only, so with K iterations iteration
-- i is counted K - i + 1 times and the result can exceed 1. preds_by_iteration[k] holds the K-th iteration's maps (a
-- list or an N x 1 x H x W batch, as for mean_scores). Use mean_scores on the last iteration for the intended metric.
function M.published_scores(preds_by_iteration, gts, opts)
  local K = #preds_by_iteration
  if K == 0 then error("delineation.published_scores: no iterations", 2) end
  local per = {}
  for i = 1, K do per[i] = M.mean_scores(preds_by_iteration[i], gts, opts).images end
  return M.accumulate_published(per)
end

-- The published script's accumulation from per-image scores already computed: per_iteration[k] = the list of image
-- score tables of iteration k (as mean_scores' .images). keys: the measures (default the three strict ones).
-- opts.undefined_as_zero: an undefined (NaN) score adds nothing instead of making the total NaN.
function M.accumulate_published(per_iteration, keys, opts)
  local K = #per_iteration
  keys = keys or {"completeness", "correctness", "quality"}
  local total, n = {}, #per_iteration[1]
  for _, k in ipairs(keys) do total[k] = 0 end
  for i = 1, K do
    for _, k in ipairs(keys) do
      local sum = 0
      for _, s in ipairs(per_iteration[i]) do
        local v = s[k]
        if not (opts and opts.undefined_as_zero and v ~= v) then sum = sum + v end
      end
      total[k] = total[k] + (K - i + 1) * sum
    end
  end
  for _, k in ipairs(keys) do total[k] = total[k] / n end
  return total
end

return M

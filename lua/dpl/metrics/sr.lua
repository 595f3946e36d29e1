-- dpl.metrics.sr: image-quality metrics for super-resolution (docs/benchmarks/superres.md), computed on the host
-- in double precision.
--
--   local sr = require "dpl.metrics.sr"
--   local y = sr.rgb_to_y(img)                       -- MATLAB rgb2ycbcr's Y, 16..235, as an H x W tensor
--   sr.psnr(a, b, {data_range = 255})               -- 10 log10(R^2 / MSE); R defaults to max(b) - min(b)
--   sr.ssim(a, b, {data_range = 255})               -- Gaussian 11x11, sigma 1.5 (Wang et al.; torchmetrics)
--   sr.ssim(a, b, {window = "uniform", data_range = 1})  -- 7x7 uniform, sample covariance (skimage's default)
--   local p, s = sr.sr_scores(sr_img, hr_img, 4)    -- the usual SR protocol (see below)
--   local r = sr.reference_scores(sr_img, hr_img)   -- the four numbers REF's test.py prints
--   sr.batch_psnr(sr_batch, hr_batch)               -- REF's validation PSNR of one N x 3 x H x W batch
-- (the reference's protocol: docs/benchmarks/superres.md)
--
-- Images are C x H x W (or 1 x C x H x W) tensors in [0, 1], RGB or single-channel; a single-channel image is its own
-- luminance (R = G = B). 2-D tensors are taken as an already converted channel.
local ffi = require "ffi"
local T = require "dpl.tensor"
local C = require("dpl.ffi").C

local M = {}

local doubles = ffi.typeof("double[?]")

-- A plane: {data = double[h*w], h = h, w = w}
local function plane(h, w) return {data = doubles(h * w), h = h, w = w} end

local function shape3(x, fn)
  if not T.is_tensor(x) then error(fn .. ": expected a dpl.Tensor", 3) end
  local s = x:size()
  if #s == 4 and s[1] == 1 then return s[2], s[3], s[4] end
  if #s == 3 then return s[1], s[2], s[3] end
  if #s == 2 then return 0, s[1], s[2] end
  error(("%s: expected a C x H x W (or 1 x C x H x W, or H x W) image, got shape %s"):format(fn, tostring(s)), 3)
end

local function to_plane(x, fn)
  local c, h, w = shape3(x, fn)
  if c ~= 0 and c ~= 1 then error(("%s: expected a single channel here, got %d"):format(fn, c), 3) end
  local buf = x:contiguous():float_data()
  local p = plane(h, w)
  for i = 0, h * w - 1 do p.data[i] = buf[i] end
  return p
end

-- an H x W float tensor on the CPU
local function to_tensor(p)
  local f = ffi.new("float[?]", p.h * p.w)
  for i = 0, p.h * p.w - 1 do f[i] = p.data[i] end
  local n, shape = T.shape_args({p.h, p.w})
  return T.new(C.dpl_tensor_from_host, T.resolve_device("cpu"), n, shape, f)
end

-- ---- luminance ---------------------------------------------------------------------------------------------------
-- Weights applied to RGB in [0, 1] and an offset:
--   "matlab": rgb2ycbcr (ITU-R BT.601, studio swing): Y = 16 + 65.481 R + 128.553 G + 24.966 B, in 16..235
--   "ref_skimage": REF's Y for the skimage metrics: (65.738 R + 129.057 G + 25.064 B) / 256, in 0..~0.86
local Y_WEIGHTS = {
  matlab = {65.481, 128.553, 24.966, 16},
  ref_skimage = {65.738 / 256, 129.057 / 256, 25.064 / 256, 0},
}

-- opts.variant ("matlab"), opts.round: round to integers (MATLAB's uint8 result of rgb2ycbcr on a uint8 image),
-- opts.quantize: take the input as the 8-bit image round(255 x) first (what writing a PNG and reading it back gives),
-- opts.gray_as_y: a single-channel image is used as Y directly (255 x for "matlab"), as SR evaluation scripts do
-- (`if size(im, 3) > 1, im = rgb2ycbcr(im); end`); otherwise it is converted as R = G = B (16 + 219 x).
local function y_plane(x, opts, fn)
  opts = opts or {}
  local wts = Y_WEIGHTS[opts.variant or "matlab"]
  if not wts then error(fn .. ": variant must be \"matlab\" or \"ref_skimage\"", 3) end
  local c, h, w = shape3(x, fn)
  if c ~= 0 and c ~= 1 and c ~= 3 then error(("%s: expected 1 or 3 channels, got %d"):format(fn, c), 3) end
  local buf = x:contiguous():float_data()
  local n = h * w
  local p = plane(h, w)
  local function px(v)
    if opts.quantize then
      v = math.min(1, math.max(0, v))
      return math.floor(v * 255 + 0.5) / 255
    end
    return v
  end
  local sum = wts[1] + wts[2] + wts[3]
  for i = 0, n - 1 do
    local y
    if c == 3 then
      y = wts[4] + wts[1] * px(buf[i]) + wts[2] * px(buf[n + i]) + wts[3] * px(buf[2 * n + i])
    elseif opts.gray_as_y then
      y = px(buf[i]) * (wts[4] == 16 and 255 or 1)
    else
      y = wts[4] + sum * px(buf[i])
    end
    if opts.round then y = math.floor(y + 0.5) end
    p.data[i] = y
  end
  return p
end

function M.rgb_to_y(x, opts) return to_tensor(y_plane(x, opts, "rgb_to_y")) end

local function crop(p, s)
  if s == 0 then return p end
  if 2 * s >= p.h or 2 * s >= p.w then error(("shave %d leaves nothing of a %dx%d image"):format(s, p.h, p.w), 3) end
  local q = plane(p.h - 2 * s, p.w - 2 * s)
  for y = 0, q.h - 1 do
    for x = 0, q.w - 1 do q.data[y * q.w + x] = p.data[(y + s) * p.w + x + s] end
  end
  return q
end

-- ---- PSNR --------------------------------------------------------------------------------------------------------
local function psnr_planes(a, b, data_range)
  local sse, n = 0, a.h * a.w
  local lo, hi = math.huge, -math.huge
  for i = 0, n - 1 do
    local d = a.data[i] - b.data[i]
    sse = sse + d * d
    local v = b.data[i]
    if v < lo then lo = v end
    if v > hi then hi = v end
  end
  local r = data_range or (hi - lo)
  return 10 * math.log10(r * r / (sse / n))
end

local function same_size(a, b, fn)
  if a.h ~= b.h or a.w ~= b.w then
    error(("%s: images differ in size: %dx%d vs %dx%d"):format(fn, a.h, a.w, b.h, b.w), 3)
  end
end

-- PSNR of two single-channel images (tensors H x W or 1 x H x W). data_range defaults to max(b) - min(b), as
-- torchmetrics' PeakSignalNoiseRatio() with data_range=None infers it from the target. Identical images give inf.
function M.psnr(a, b, opts)
  opts = opts or {}
  local pa, pb = to_plane(a, "psnr"), to_plane(b, "psnr")
  same_size(pa, pb, "psnr")
  local s = opts.shave or 0
  return psnr_planes(crop(pa, s), crop(pb, s), opts.data_range)
end

-- ---- SSIM --------------------------------------------------------------------------------------------------------
-- "valid" separable correlation: only windows entirely inside the image
local function filter_valid(p, k)
  local n = #k
  local oh, ow = p.h - n + 1, p.w - n + 1
  local tmp = plane(p.h, ow)
  for y = 0, p.h - 1 do
    local row = y * p.w
    for x = 0, ow - 1 do
      local s = 0
      for j = 1, n do s = s + k[j] * p.data[row + x + j - 1] end
      tmp.data[y * ow + x] = s
    end
  end
  local out = plane(oh, ow)
  for y = 0, oh - 1 do
    for x = 0, ow - 1 do
      local s = 0
      for j = 1, n do s = s + k[j] * tmp.data[(y + j - 1) * ow + x] end
      out.data[y * ow + x] = s
    end
  end
  return out
end

local function product(a, b)
  local p = plane(a.h, a.w)
  for i = 0, a.h * a.w - 1 do p.data[i] = a.data[i] * b.data[i] end
  return p
end

local function gaussian_window(size, sigma)
  local k, sum = {}, 0
  for i = 1, size do
    local d = (i - 1) - (size - 1) / 2
    k[i] = math.exp(-(d * d) / (2 * sigma * sigma))
    sum = sum + k[i]
  end
  for i = 1, size do k[i] = k[i] / sum end
  return k
end

local function ssim_planes(a, b, opts)
  local uniform = opts.window == "uniform"
  local size = opts.size or (uniform and 7 or 11)
  if a.h < size or a.w < size then
    error(("ssim: the %dx%d image is smaller than the %dx%d window"):format(a.h, a.w, size, size), 3)
  end
  local k
  if uniform then
    k = {}
    for i = 1, size do k[i] = 1 / size end
  else
    k = gaussian_window(size, opts.sigma or 1.5)
  end
  local r = opts.data_range
  if not r then    -- torchmetrics: max of the two images' ranges
    local function range(p)
      local lo, hi = math.huge, -math.huge
      for i = 0, p.h * p.w - 1 do
        local v = p.data[i]
        if v < lo then lo = v end
        if v > hi then hi = v end
      end
      return hi - lo
    end
    r = math.max(range(a), range(b))
  end
  local c1, c2 = ((opts.k1 or 0.01) * r) ^ 2, ((opts.k2 or 0.03) * r) ^ 2
  -- skimage's use_sample_covariance=True scales the variances by NP / (NP - 1); the Gaussian form does not
  local sample = opts.sample_covariance
  if sample == nil then sample = uniform end
  local np = size * size
  local cov = sample and np / (np - 1) or 1
  local ux, uy = filter_valid(a, k), filter_valid(b, k)
  local uxx, uyy, uxy = filter_valid(product(a, a), k), filter_valid(product(b, b), k), filter_valid(product(a, b), k)
  local n, total = ux.h * ux.w, 0
  for i = 0, n - 1 do
    local mx, my = ux.data[i], uy.data[i]
    local vx = cov * (uxx.data[i] - mx * mx)
    local vy = cov * (uyy.data[i] - my * my)
    local vxy = cov * (uxy.data[i] - mx * my)
    total = total + ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
  end
  return total / n
end

-- Mean SSIM of two single-channel images over the windows that lie inside the image.
--   window = "gaussian" (default): size 11, sigma 1.5, population covariance: Wang et al.'s ssim.m (without its
--            automatic downsampling) and torchmetrics' StructuralSimilarityIndexMeasure
--   window = "uniform": size 7, sample covariance: skimage.metrics.structural_similarity's defaults
-- data_range defaults to the larger of the two images' ranges (torchmetrics); k1 .01, k2 .03; shave crops first.
function M.ssim(a, b, opts)
  opts = opts or {}
  if opts.window and opts.window ~= "uniform" and opts.window ~= "gaussian" then
    error("ssim: window must be \"gaussian\" or \"uniform\"", 2)
  end
  local pa, pb = to_plane(a, "ssim"), to_plane(b, "ssim")
  same_size(pa, pb, "ssim")
  local s = opts.shave or 0
  return ssim_planes(crop(pa, s), crop(pb, s), opts)
end

-- ---- protocols -----------------------------------------------------------------------------------------------------
-- The usual super-resolution protocol (the MATLAB scripts behind the SRCNN/VDSR/SelfExSR tables): both images taken as
-- 8-bit; Y of MATLAB's rgb2ycbcr on uint8 (16..235, rounded to integers; opts.round_y = false keeps the fraction),
-- single-channel images used as Y directly; `shave` pixels cut from every border (the scale factor by convention);
-- PSNR with data range 255 and Gaussian 11x11 SSIM with data range 255. Returns psnr, ssim.
function M.sr_scores(sr, hr, shave, opts)
  opts = opts or {}
  local y_opts = {variant = "matlab", quantize = true, round = opts.round_y ~= false, gray_as_y = true}
  local a, b = y_plane(sr, y_opts, "sr_scores"), y_plane(hr, y_opts, "sr_scores")
  same_size(a, b, "sr_scores")
  a, b = crop(a, shave or 0), crop(b, shave or 0)
  return psnr_planes(a, b, 255), ssim_planes(a, b, {data_range = 255})
end

-- The four numbers REF's super_res/test.py prints for one image (docs/benchmarks/superres.md), from float SR and HR
-- images in [0, 1]:
--   psnr:        torchmetrics PSNR on the float Y (16..235 scale), data range max - min of the HR's Y
--   mssim:       skimage SSIM (7x7 uniform, data range 1) on REF's Y' of the 8-bit images (PNG round trip), 2 px shaved
--   psnr_2:      skimage PSNR (data range 1) on the same Y'
--   tensor_ssim: torchmetrics SSIM (Gaussian 11, sigma 1.5) on the float Y, data range from the images
function M.reference_scores(sr, hr)
  local ya, yb = y_plane(sr, {variant = "matlab"}, "reference_scores"), y_plane(hr, {variant = "matlab"}, "reference_scores")
  same_size(ya, yb, "reference_scores")
  local qa = crop(y_plane(sr, {variant = "ref_skimage", quantize = true}, "reference_scores"), 2)
  local qb = crop(y_plane(hr, {variant = "ref_skimage", quantize = true}, "reference_scores"), 2)
  return {
    psnr = psnr_planes(ya, yb, nil),
    mssim = ssim_planes(qa, qb, {window = "uniform", data_range = 1}),
    psnr_2 = psnr_planes(qa, qb, 1),
    tensor_ssim = ssim_planes(ya, yb, {}),
  }
end

-- REF's validation PSNR for one batch (docs/benchmarks/superres.md): torchmetrics PeakSignalNoiseRatio() on the float Y
-- (16..235) of N x 3 x H x W (or N x 1 x H x W) batches: one MSE over every pixel of the batch, data range max - min of
-- the whole HR batch's Y. (REF then averages these per-batch values weighted by batch size.)
function M.batch_psnr(sr, hr)
  local fn = "batch_psnr"
  if not (T.is_tensor(sr) and T.is_tensor(hr)) or sr:dim() ~= 4 or hr:dim() ~= 4 then
    error(fn .. ": expected two N x C x H x W tensors", 2)
  end
  if not (sr:size() == hr:size()) then
    error(("%s: batches differ in shape: %s vs %s"):format(fn, tostring(sr:size()), tostring(hr:size())), 2)
  end
  local sse, n, lo, hi = 0, 0, math.huge, -math.huge
  for i = 1, sr:size(1) do
    local a = y_plane(sr:select(1, i), {variant = "matlab"}, fn)
    local b = y_plane(hr:select(1, i), {variant = "matlab"}, fn)
    for k = 0, a.h * a.w - 1 do
      local d = a.data[k] - b.data[k]
      sse = sse + d * d
      local v = b.data[k]
      if v < lo then lo = v end
      if v > hi then hi = v end
    end
    n = n + a.h * a.w
  end
  return 10 * math.log10((hi - lo) ^ 2 / (sse / n))
end

return M

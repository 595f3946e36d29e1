-- dpl.metrics.sr against scikit-image 0.19 (Debian python3-skimage) and a float64 transcription of torchmetrics'
-- SSIM (tests/ref/sr_metrics_ref.py) on real Set5/Set14 images and their bicubic reconstructions; and the bicubic
-- x4 baseline against the published figures. Without ../shared the comparisons run on the generated stand-ins of the
-- same names and sizes (lua/dpl/test.lua "Stand-in data"); the published figures need the real images.
local dpl = require "dpl"
local tf = require "dpl.data.transforms"
local sr = require "dpl.metrics.sr"
local test = require "dpl.test"
local S = test.suite("sr_metrics", {configurations = {"default"}, standin = true,   -- default only: host-side metrics
  shared = {"data/Set5/image_SRF_4/img_001_SRF_4_HR.png", "data/Set14/image_SRF_4/img_001_SRF_4_HR.png"}})

local shared = test.shared_dir()
local data = shared .. "/data"
local dir = os.tmpname() .. "_srmetrics"
os.execute("mkdir -p '" .. dir .. "'")

local function path(set, i, kind) return ("%s/%s/image_SRF_4/img_%03d_SRF_4_%s.png"):format(data, set, i, kind) end

-- pairs: HR with a float MATLAB-bicubic x4 reconstruction of the shipped LR (values slightly outside [0, 1] too),
-- including Set14 img_003 (single-channel) and non-square images
local PAIRS = {{"Set5", 1}, {"Set5", 3}, {"Set14", 3}, {"Set14", 5}, {"Set14", 12}}
local pairs_data

local function fixtures(t)
  if pairs_data then return pairs_data end
  pairs_data = {}
  local lines = {}
  for _, p in ipairs(PAIRS) do
    local name = p[1] .. "_" .. p[2]
    local hr = dpl.image.load(path(p[1], p[2], "HR"), {mode = "keep", device = "cpu"})
    local up = tf.imresize(dpl.image.load(path(p[1], p[2], "LR"), {mode = "keep", device = "cpu"}), 4, {uint8 = false})
    local f = {}
    for k, v in pairs {sr = up, hr = hr, ysr = sr.rgb_to_y(up), yhr = sr.rgb_to_y(hr)} do
      f[k] = ("%s/%s_%s.npy"):format(dir, name, k)
      v:save_npy(f[k])
    end
    lines[#lines + 1] = table.concat({name, f.sr, f.hr, f.ysr, f.yhr, "4"}, "\t")
    pairs_data[name] = {sr = up, hr = hr, ysr = sr.rgb_to_y(up), yhr = sr.rgb_to_y(hr)}
  end
  -- a batch of two 64 x 64 crops (RGB) for REF's validation PSNR
  local function crops(key)
    local list = {}
    for k, name in ipairs {"Set5_1", "Set14_5"} do
      list[k] = pairs_data[name][key]:narrow(2, 20, 64):narrow(3, 30, 64):contiguous():reshape({1, 3, 64, 64})
    end
    return dpl.cat(list, 1)
  end
  pairs_data.batch_sr, pairs_data.batch_hr = crops("sr"), crops("hr")
  pairs_data.batch_sr:save_npy(dir .. "/batch_sr.npy")
  pairs_data.batch_hr:save_npy(dir .. "/batch_hr.npy")
  local fh = io.open(dir .. "/pairs.txt", "w")
  fh:write(table.concat(lines, "\n") .. "\n")
  fh:close()
  local ok = os.execute("/usr/bin/python3 tests/ref/sr_metrics_ref.py '" .. dir .. "'")
  if not (ok == 0 or ok == true) then
    local has_torch = os.execute("/usr/bin/python3 -c 'import torch' 2>/dev/null")
    if not (has_torch == 0 or has_torch == true) then pairs_data = nil t:skip("python3-torch not installed") end
    t:ok(false, "tests/ref/sr_metrics_ref.py failed (needs python3-skimage and python3-torch)")
  end
  pairs_data.expected = {}
  for line in io.lines(dir .. "/expected.txt") do
    local name, metric, v = line:match("^([^\t]+)\t([^\t]+)\t(.+)$")
    pairs_data.expected[name .. "/" .. metric] = tonumber(v)
  end
  return pairs_data
end

local function each(t, fn)
  local d = fixtures(t)
  for _, p in ipairs(PAIRS) do
    local name = p[1] .. "_" .. p[2]
    fn(name, d[name], function(metric) return assert(d.expected[name .. "/" .. metric], metric) end)
  end
end

S:add("SR protocol (rounded MATLAB Y, shave 4, range 255): PSNR and Gaussian SSIM vs skimage and torchmetrics", function(t)
  each(t, function(name, p, ref)
    local psnr, ssim = sr.sr_scores(p.sr, p.hr, 4)
    t:near(psnr, ref("sr_psnr"), 1e-9, name .. " psnr")
    t:near(ssim, ref("sr_ssim"), 1e-9, name .. " ssim (skimage gaussian_weights)")
    t:near(ssim, ref("sr_ssim_tm"), 1e-9, name .. " ssim (torchmetrics)")
  end)
end)

S:add("REF's four test numbers (docs/benchmarks/superres.md)", function(t)
  each(t, function(name, p, ref)
    local r = sr.reference_scores(p.sr, p.hr)
    t:near(r.psnr, ref("ref_psnr"), 1e-9, name .. " Test PSNR")
    t:near(r.mssim, ref("ref_mssim"), 1e-9, name .. " Test MSSIM (skimage)")
    t:near(r.psnr_2, ref("ref_psnr_2"), 1e-9, name .. " Test PSNR_2 (skimage)")
    t:near(r.tensor_ssim, ref("ref_tensor_ssim"), 1e-9, name .. " Tensor MSSIM")
  end)
end)

S:add("REF's validation PSNR over a batch (docs/benchmarks/superres.md)", function(t)
  local d = fixtures(t)
  t:near(sr.batch_psnr(d.batch_sr, d.batch_hr), d.expected["batch/batch_psnr"], 1e-9)
  t:raises(function() sr.batch_psnr(d.batch_sr, d.batch_hr:narrow(1, 1, 1)) end, "batches differ in shape")
end)

S:add("generic psnr / ssim on luminance planes (default ranges, uniform window, shave)", function(t)
  each(t, function(name, p, ref)
    t:near(sr.psnr(p.ysr, p.yhr), ref("psnr_default_range"), 1e-9, name .. " psnr")
    t:near(sr.ssim(p.ysr, p.yhr, {window = "uniform", data_range = 255}), ref("ssim_uniform_255"), 1e-9, name)
    t:near(sr.ssim(p.ysr, p.yhr, {window = "uniform", data_range = 255, shave = 4}), ref("ssim_uniform_shave"), 1e-9, name)
    t:near(sr.ssim(p.ysr, p.yhr), ref("ssim_gauss_default"), 1e-9, name .. " gaussian, inferred range")
  end)
end)

S:add("identities and errors", function(t)
  local y = sr.rgb_to_y(dpl.image.load(path("Set5", 2, "HR"), {device = "cpu"}))
  t:eq(sr.psnr(y, y, {data_range = 255}), math.huge)
  t:near(sr.ssim(y, y), 1, 1e-12)
  t:near(sr.ssim(y, y, {window = "uniform"}), 1, 1e-12)
  -- rgb_to_y: white and black RGB give 235 and 16
  local wb = dpl.tensor({1, 0, 1, 0, 1, 0}):reshape({3, 1, 2})
  t:close(sr.rgb_to_y(wb), {{235, 16}}, {atol = 1e-4})
  t:raises(function() sr.psnr(y, y:narrow(1, 1, 10)) end, "images differ in size")
  t:raises(function() sr.ssim(y:narrow(1, 1, 5):narrow(2, 1, 5), y:narrow(1, 1, 5):narrow(2, 1, 5)) end, "smaller than")
  t:raises(function() sr.ssim(y, y, {window = "box"}) end, "window must be")
  t:raises(function() sr.sr_scores(y, y, 200) end, "shave 200")
  t:raises(function() sr.rgb_to_y(dpl.zeros({2, 4, 4})) end, "expected 1 or 3 channels")
end)

-- The bicubic baseline every SR paper reports: x4 MATLAB-bicubic upscaling of the shipped LR files, scored with the
-- protocol of sr.sr_scores (rounded Y of rgb2ycbcr, Set14's gray bridge used as Y, shave 4, PSNR and Gaussian SSIM
-- with range 255), averaged over images. Published (SelfExSR/VDSR tables): Set5 28.42 dB / 0.8101, Set14 25.99 dB /
-- 0.7023; measured: 28.4177 / 0.81008 and 25.9933 / 0.70226. Tolerance: 0.01 dB and 0.0002 (rounding of the tables).
S:add("bicubic x4 baseline on Set5 and Set14 lands on the published figures", function(t)
  test.need_real(t, "the published bicubic figures are of the real Set5/Set14")
  for _, set in ipairs {{"Set5", 5, 28.42, 0.8101}, {"Set14", 14, 25.99, 0.7023}} do
    local sp, ss = 0, 0
    for i = 1, set[2] do
      local hr = dpl.image.load(path(set[1], i, "HR"), {mode = "keep", device = "cpu"})
      local up = tf.imresize(dpl.image.load(path(set[1], i, "LR"), {mode = "keep", device = "cpu"}), 4)
      local p, s = sr.sr_scores(up, hr, 4)
      sp, ss = sp + p, ss + s
    end
    t:ok(math.abs(sp / set[2] - set[3]) <= 0.01, ("%s PSNR %.4f vs %.2f"):format(set[1], sp / set[2], set[3]))
    t:ok(math.abs(ss / set[2] - set[4]) <= 0.0002, ("%s SSIM %.5f vs %.4f"):format(set[1], ss / set[2], set[4]))
  end
end)

return S

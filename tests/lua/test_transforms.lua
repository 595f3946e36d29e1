-- dpl.transforms against Pillow 9 / torchvision 0.14 (Debian python3-pil, python3-torchvision) on real images from
-- ../shared/data: Pillow resize (torchvision's PIL path) and GaussianBlur bit-exact on 8-bit images, the float resize
-- path vs Pillow mode "F", the super-resolution pipeline (docs/benchmarks/superres.md), CenterCrop (with padding),
-- hflip, reflection Pad, torchvision's tensor resize without antialias, and MATLAB imresize: the 19 shipped Set5/Set14
-- *_LR.png files reproduced bit for bit from *_HR.png, and other scales/sizes vs a numpy version of imresize.m
-- (tests/ref). Without ../shared it runs on the generated stand-ins (same names and sizes; lua/dpl/test.lua "Stand-in
-- data"): the comparisons with Pillow and torchvision hold on any image; the shipped *_LR.png check needs the real files.
local dpl = require "dpl"
local tf = require "dpl.data.transforms"
local test = require "dpl.test"
local S = test.suite("transforms", {shared = {"data/Set5/image_SRF_4/img_001_SRF_4_HR.png",
  "data/Set14/image_SRF_4/img_001_SRF_4_HR.png", "data/MassachusettsRoads/images"}, standin = true})

local shared = test.shared_dir()
local data = shared .. "/data"
local dir = os.tmpname() .. "_transforms"
os.execute("mkdir -p '" .. dir .. "'")

local cases
local function fixtures(t)
  if cases then return cases end
  local ok = os.execute(("/usr/bin/python3 tests/ref/transforms_ref.py '%s' '%s'"):format(dir, data))
  if not (ok == 0 or ok == true) then
    local has_torch = os.execute("/usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null")
    if not (has_torch == 0 or has_torch == true) then t:skip("python3-torch / python3-torchvision not installed") end
    t:ok(false, "tests/ref/transforms_ref.py failed")
  end
  cases = {}
  for line in io.lines(dir .. "/cases.txt") do
    local name, src, op, args = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    cases[#cases + 1] = {name = name, src = src, op = op, args = args}
  end
  return cases
end

local function size_arg(s)
  local h, w = s:match("^{(%d+),(%d+)}$")
  if h then return {tonumber(h), tonumber(w)} end
  return tonumber(s)
end

local function apply(c, x)
  local a, b, u = c.args:match("^(%S*)%s*(%S*)%s*(%S*)$")
  if c.op == "resize" then return tf.resize(x, size_arg(a), {interpolation = b}) end
  if c.op == "resize_float" then return tf.resize(x, size_arg(a), {interpolation = b, uint8 = false}) end
  if c.op == "sr_hr" then return tf.center_crop(tf.resize(x, 288), 288) end
  if c.op == "sr_lr" then
    return tf.center_crop(tf.resize(tf.gaussian_blur(x, 1), 72, {interpolation = "bicubic"}), 72)
  end
  if c.op == "blur" then return tf.gaussian_blur(x, tonumber(a)) end
  if c.op == "center_crop" then return tf.center_crop(x, size_arg(a)) end
  if c.op == "hflip" then return tf.hflip(x) end
  if c.op == "pad_reflect_svhn" then return tf.pad_reflect(tf.crop(x, 11, 21, 32, 32), tonumber(a)) end
  if c.op == "resize_tensor" then return tf.resize_tensor(x, size_arg(a)) end
  if c.op == "imresize" then
    return tf.imresize(x, size_arg(a), {symmetric = b == "1", uint8 = u == "1"})
  end
  error("unknown op " .. c.op)
end

-- tolerance per op: 0 for the 8-bit paths (bit-exact); float paths differ only by float32 rounding. resize_tensor
-- uses dpl.upsample2d, whose source positions are computed in double where PyTorch's CPU kernel uses float32: up
-- to 4e-5 on the 1500 -> 224 downscale (0.01 grey levels); the binarised mask is checked to be identical.
local ATOL = {resize_float = 2e-6, resize_tensor = 1e-4, center_crop = 0, hflip = 0, pad_reflect_svhn = 0}

local function run(t, pattern, device)
  local n = 0
  for _, c in ipairs(fixtures(t)) do
    if c.name:match(pattern) then
      local mode = c.src:find("MassachusettsRoads", 1, true) and "keep" or "RGB"
      local x = dpl.image.load(c.src, {mode = mode, device = device})
      local y = apply(c, x)
      local ref = dpl.load_npy(dir .. "/" .. c.name .. ".npy", {device = device})
      t:shape(y, ref:size(), c.name)
      local atol = ATOL[c.op] or (c.name:match("^imresizef") and 1e-6) or 0
      local diff = (y - ref):abs():max():item()
      t:ok(diff <= atol, ("%s: max |diff| %.3g > %g"):format(c.name, diff, atol))
      if c.name == "tresize_masks" then
        t:eq((y:gt(0.5) - ref:gt(0.5)):abs():sum():item(), 0, "mask binarised at 0.5")
      end
      n = n + 1
    end
  end
  t:ok(n > 0, "no cases matched " .. pattern)
  return n
end

S:add("Pillow resize (torchvision PIL path), bilinear and bicubic, bit-exact", function(t)
  t:ok(run(t, "^resize_", "cpu") >= 40)
end)
S:add("Pillow resize float path (mode F)", function(t) run(t, "^resizef_", "cpu") end)
S:add("Pillow GaussianBlur, bit-exact", function(t) run(t, "^blur_", "cpu") end)
S:add("super-resolution pipeline (HR 288 crop, blurred bicubic LR 72)", function(t) run(t, "^sr_", "cpu") end)
S:add("center crop (with zero padding), hflip, reflection pad 32 -> 64", function(t)
  run(t, "^ccrop_", "cpu")
  run(t, "^hflip_", "cpu")
  run(t, "^pad_reflect", "cpu")
end)
S:add("torchvision tensor resize without antialias", function(t) run(t, "^tresize_", "cpu") end)
S:add("MATLAB imresize vs imresize.m formulas (replicate and symmetric, 8-bit and float)", function(t)
  run(t, "^imresize", "cpu")
end)

S:add("MATLAB imresize reproduces every Set5/Set14 *_LR.png from *_HR.png bit for bit", function(t)
  test.need_real(t, "the shipped *_LR.png files, made by MATLAB's imresize")
  local n = 0
  for _, set in ipairs {{"Set5", 5}, {"Set14", 14}} do
    for i = 1, set[2] do
      local base = ("%s/%s/image_SRF_4/img_%03d_SRF_4_"):format(data, set[1], i)
      local hr = dpl.image.load(base .. "HR.png", {mode = "keep", device = "cpu"})
      local lr = dpl.image.load(base .. "LR.png", {mode = "keep", device = "cpu"})
      local y = tf.imresize(hr, 1 / 4)
      t:shape(y, lr:size(), base)
      t:eq((y - lr):abs():max():item(), 0, base .. "LR.png")
      n = n + 1
    end
  end
  t:eq(n, 19)
end)

S:add("every device gives the same results (processing runs on the host)", function(t)
  for _, dev in ipairs(dpl.devices()) do
    run(t, "^resize_bird_bicubic_72$", dev)
    run(t, "^blur_bird_1$", dev)
    run(t, "^imresize_bird_0.25_s0$", dev)
    run(t, "^hflip_comic$", dev)
    run(t, "^pad_reflect", dev)
  end
end)

S:add("random crop: seeded, in bounds, equal to the crop it reports", function(t)
  local x = dpl.image.load(data .. "/Set5/image_SRF_4/img_003_SRF_4_LR.png", {device = "cpu"})   -- 64 x 64
  local a, b = tf.rng(42), tf.rng(42)
  local seen = {}
  for _ = 1, 200 do
    local c1, top, left = tf.random_crop(x, {24, 40}, a)
    local c2, top2, left2 = tf.random_crop(x, {24, 40}, b)
    t:eq(top, top2)
    t:eq(left, left2)
    t:ok(top >= 1 and top <= 41 and left >= 1 and left <= 25, "crop inside the image")
    t:shape(c1, {3, 24, 40})
    t:eq((c1 - c2):abs():max():item(), 0)
    t:eq((c1 - x:narrow(2, top, 24):narrow(3, left, 40)):abs():max():item(), 0)
    seen[top .. "," .. left] = true
  end
  local distinct = 0
  for _ in pairs(seen) do distinct = distinct + 1 end
  t:ok(distinct > 100, "positions should vary, got " .. distinct .. " distinct")
  -- a full-size crop is the image; a different seed gives a different sequence
  local full = tf.random_crop(x, 64, tf.rng(1))
  t:eq((full - x):abs():max():item(), 0)
  t:ok(tf.rng(1):randint(1, 1e9) ~= tf.rng(2):randint(1, 1e9))
end)

S:add("random horizontal flip: seeded, about half the time, flips exactly", function(t)
  local x = dpl.image.load(data .. "/Set5/image_SRF_4/img_003_SRF_4_LR.png", {device = "cpu"})
  local flipped_ref = tf.hflip(x)
  local a, b, count = tf.rng(7), tf.rng(7), 0
  for _ = 1, 400 do
    local y, f = tf.random_hflip(x, a)
    local _, f2 = tf.random_hflip(x, b)
    t:eq(f, f2)
    t:eq((y - (f and flipped_ref or x)):abs():max():item(), 0)
    if f then count = count + 1 end
  end
  t:ok(count > 150 and count < 250, "flipped " .. count .. " of 400")
  t:eq(select(2, tf.random_hflip(x, tf.rng(1), 0)), false)
  t:eq(select(2, tf.random_hflip(x, tf.rng(1), 1)), true)
end)

S:add("bad arguments give clear errors", function(t)
  local x = dpl.zeros({3, 8, 8})
  t:raises(function() tf.random_crop(x, 9, tf.rng(0)) end, "larger than the 8x8 image")
  t:raises(function() tf.random_crop(x, 4, {}) end, "rng must come from")
  t:raises(function() tf.resize(x, 4, {interpolation = "cubic"}) end, "interpolation must be")
  t:raises(function() tf.resize(dpl.zeros({8}), 4) end, "expected a (..., H, W) image tensor")
  t:raises(function() tf.crop(x, 5, 1, 5, 2) end, "outside the 8x8 image")
  t:raises(function() tf.gaussian_blur(x, -1) end, "radius must be in")
  t:raises(function() tf.imresize(x, 0) end, "scale must be positive")
  t:raises(function() tf.imresize(x, {0, 3}) end, "invalid output size")
  t:raises(function() tf.pad_reflect(x, 8) end, "reflect")
end)

return S

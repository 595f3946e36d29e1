-- dpl.image: PNG/JPEG/TIFF reading and PNG writing, checked pixel-exact against Pillow (Debian python3-pil) on the real
-- files in ../shared/data (Set5, Set14, BAPPS patches, Massachusetts Roads image and mask) and on files Pillow writes
-- at test time (tests/ref/image_ref.py: palette, 1-bit, 16-bit, LA, RGBA, baseline/progressive/4:4:4/gray JPEG,
-- raw/LZW/deflate/RGBA TIFF); corrupt and truncated files must give errors naming the file.
local dpl = require "dpl"
local test = require "dpl.test"
-- Without ../shared the synthetic cases run on the generated stand-ins (lua/dpl/test.lua "Stand-in data"); the real
-- files' case needs them.
local S = test.suite("image", {shared = {"data/Set5/image_SRF_4/img_001_SRF_4_HR.png",
  "data/Set14/image_SRF_4/img_003_SRF_4_HR.png", "data/BAPPS/imgs/ex_ref.png", "data/MassachusettsRoads"},
  standin = true})

local shared = test.shared_dir()
local data = shared .. "/data"
local dir = os.tmpname() .. "_image"
os.execute("mkdir -p '" .. dir .. "'")

local cases
local function fixtures(t)
  if cases then return cases end
  local ok = os.execute(("/usr/bin/python3 tests/ref/image_ref.py '%s' '%s'"):format(dir, data))
  t:ok(ok == 0 or ok == true, "tests/ref/image_ref.py failed (needs python3-pil, python3-numpy and ../shared/data)")
  cases = {}
  for line in io.lines(dir .. "/cases.txt") do
    local file, mode, npy, scale = line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)\t(%d+)$")
    cases[#cases + 1] = {file = file, mode = mode, npy = npy, scale = tonumber(scale)}
  end
  return cases
end

local function max_diff(a, b) return (a - b):abs():max():item() end

local function check_cases(t, filter, device)
  local n = 0
  for _, c in ipairs(fixtures(t)) do
    if filter(c.file) then
      local x = dpl.image.load(c.file, {mode = c.mode, device = device})
      local ref = dpl.load_npy(c.npy, {device = device}) / c.scale
      local what = c.file:match("[^/]+/[^/]+$") .. " mode " .. c.mode
      t:shape(x, ref:size(), what)
      t:eq(max_diff(x, ref), 0, what)
      n = n + 1
    end
  end
  return n
end

S:add("real PNGs in ../shared/data equal Pillow's pixels (RGB, L, keep)", function(t)
  test.need_real(t, "PNGs written by other encoders than Pillow")
  local n = check_cases(t, function(f) return f:find(data, 1, true) == 1 end, "cpu")
  t:ok(n >= 3 * (10 + 28 + 3 + 2), "expected every Set5/Set14/BAPPS file and one MRD image and mask, got " .. n)
  -- Set14 img_003 is a single-channel PNG: "keep" gives 1 channel, RGB repeats it
  local p = data .. "/Set14/image_SRF_4/img_003_SRF_4_HR.png"
  t:eq(dpl.image.load(p, {mode = "keep", device = "cpu"}):size(1), 1)
  local rgb = dpl.image.load(p, {device = "cpu"})
  t:eq(max_diff(rgb:narrow(1, 1, 1), rgb:narrow(1, 3, 1)), 0)
end)

S:add("synthetic PNG, JPEG and TIFF layouts equal Pillow's pixels", function(t)
  local n = check_cases(t, function(f) return f:find(dir, 1, true) == 1 end, "cpu")
  t:ok(n >= 45, "expected all synthetic fixtures, got " .. n)
  t:eq(dpl.image.load(dir .. "/rgba.png", {mode = "keep"}):size(1), 4)
  t:eq(dpl.image.load(dir .. "/la.png", {mode = "keep"}):size(1), 2)
  t:eq(dpl.image.load(dir .. "/palette_trns.png", {mode = "keep"}):size(1), 4)
  t:eq(dpl.image.load(dir .. "/gray16.png", {mode = "keep"}):size(1), 1)
end)

S:add("loads onto every device", function(t)
  for _, dev in ipairs(dpl.devices()) do
    check_cases(t, function(f) return f:find("Set5/image_SRF_4/img_001", 1, true) ~= nil end, dev)
    t:eq(dpl.image.load(dir .. "/baseline.jpg", {device = dev}):device(), dev)
  end
end)

S:add("save writes PNGs Pillow reads, rounding as torchvision.utils.save_image", function(t)
  fixtures(t)
  -- values chosen around the rounding boundaries, out of range and NaN
  local vals = {-0.5, 0, 0.5 / 255, 0.49 / 255, 1.5 / 255, 0.2, 0.5, 127.5 / 255, 0.999, 1, 1.7, 0 / 0}
  local x = dpl.tensor(vals, {device = "cpu"}):reshape({1, 3, 4})
  local p = dir .. "/saved_l.png"
  dpl.image.save(x, p)
  local y = dpl.image.load(p, {mode = "keep"})
  local expect = {}
  for i, v in ipairs(vals) do
    v = v ~= v and 0 or math.min(1, math.max(0, v))
    expect[i] = math.floor(v * 255 + 0.5) / 255
  end
  t:close(y:reshape(-1), expect, {atol = 1e-7, rtol = 0})
  -- RGB and RGBA, read back by Pillow
  for _, c in ipairs {3, 4} do
    local z = dpl.rand({1, c, 9, 7}, {seed = c, device = "cpu"})
    local q = ("%s/saved_%d.png"):format(dir, c)
    dpl.image.save(z, q)
    local npy = q .. ".npy"
    local ok = os.execute(("/usr/bin/python3 -c \"import numpy as np, sys; from PIL import Image; " ..
      "np.save(sys.argv[2], np.asarray(Image.open(sys.argv[1])).transpose(2, 0, 1))\" '%s' '%s'"):format(q, npy))
    t:ok(ok == 0 or ok == true, "Pillow could not read the saved PNG")
    local ref = dpl.load_npy(npy) / 255
    t:shape(ref, {c, 9, 7})
    t:eq(max_diff(ref, dpl.image.load(q, {mode = "keep"})), 0)
    t:ok(max_diff(ref, z:reshape({c, 9, 7})) <= 0.5 / 255 + 1e-6, "saved values round to the nearest level")
  end
end)

S:add("corrupt, truncated and unknown files give errors naming the file", function(t)
  fixtures(t)
  local expect = {
    ["trunc.png"] = "corrupt or truncated PNG", ["trunc_end.png"] = "corrupt or truncated PNG",
    ["crc.png"] = "corrupt or truncated PNG", ["header_only.png"] = "corrupt or truncated PNG",
    ["trunc.jpg"] = "corrupt or truncated JPEG", ["header_only.jpg"] = "corrupt or truncated JPEG",
    ["trunc.tif"] = "TIFF", ["header_only.tif"] = "TIFF",
    ["garbage.png"] = "not a PNG, JPEG or TIFF file", ["empty.png"] = "not a PNG, JPEG or TIFF file",
  }
  for name, msg in pairs(expect) do
    local p = dir .. "/" .. name
    local err = t:raises(function() dpl.image.load(p) end, msg, name)
    t:ok(err:find(p, 1, true), name .. ": the error must name the file: " .. err)
  end
  t:raises(function() dpl.image.load(dir .. "/missing.png") end, "missing.png: cannot open")
  t:raises(function() dpl.image.load(dir .. "/rgb.png", {mode = "CMYK"}) end, "mode must be")
  t:raises(function() dpl.image.save(dpl.zeros({5, 2, 2}), dir .. "/x.png") end, "C in 1..4")
  t:raises(function() dpl.image.save(dpl.zeros({2, 3, 2, 2}), dir .. "/x.png") end, "x.png")
  t:raises(function() dpl.image.save(dpl.zeros({3, 2, 2}), dir .. "/no/such/dir/x.png") end, "cannot write")
end)

S:add("randomly corrupted and truncated files never crash: a tensor or an error naming the file", function(t)
  fixtures(t)
  math.randomseed(20240601)
  local loaded, failed = 0, 0
  for _, name in ipairs {"rgb.png", "palette.png", "gray16.png", "baseline.jpg", "progressive.jpg", "rgb.tif",
                         "lzw.tif", "bits1.tif"} do
    local f = assert(io.open(dir .. "/" .. name, "rb"))
    local bytes = f:read("*a")
    f:close()
    for k = 1, tonumber(os.getenv("DPL_IMAGE_FUZZ_N") or 40) do   -- more with DPL_IMAGE_FUZZ_N
      local b = {bytes:byte(1, -1)}
      if k % 4 == 0 then                       -- truncate
        local n = math.random(1, #b - 1)
        for j = #b, n + 1, -1 do b[j] = nil end
      else                                     -- flip 1..8 bytes anywhere (headers included)
        for _ = 1, math.random(1, 8) do
          local j = math.random(1, #b)
          b[j] = bit.band(bit.bxor(b[j], math.random(1, 255)), 255)
        end
      end
      local p = ("%s/fuzz_%s_%d"):format(dir, name, k)
      local out = assert(io.open(p, "wb"))
      for j = 1, #b, 4096 do out:write(string.char(unpack(b, j, math.min(j + 4095, #b)))) end
      out:close()
      local ok, res = pcall(dpl.image.load, p, {mode = "keep", device = "cpu"})
      if ok then
        loaded = loaded + 1
        t:eq(res:dim(), 3)
      else
        failed = failed + 1
        t:ok(tostring(res):find(p, 1, true), "error must name the file: " .. tostring(res))
      end
    end
  end
  t:ok(failed > 100, ("most corrupt files must be rejected (%d rejected, %d decoded)"):format(failed, loaded))
end)

return S

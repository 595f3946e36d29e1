-- examples/sr_baseline.lua and examples/sr_degradation.lua run as a user runs them (a child dplrun).
-- Protocol checked: HR cropped to a multiple of 4 (a no-op for these files), LR = MATLAB bicubic imresize(hr, 1/4)
-- (bit-identical to the shipped *_LR.png), bicubic imresize(lr, 4) back, rounded rgb2ycbcr Y (Set14's gray bridge
-- used as Y), 4 px shaved, PSNR and Gaussian 11x11 SSIM with range 255, mean over images. Published: Set5 28.42 dB /
-- 0.8101, Set14 25.99 dB / 0.7023; tolerance 0.01 dB / 0.0002 (the tables' rounding). Measured: 28.4177 / 0.81008 and
-- 25.9933 / 0.70226.
local test = require "dpl.test"
-- default only: an example script run as a child process
local S = test.suite("sr_baseline example", {configurations = {"default"},
  shared = {"data/Set5/image_SRF_4/img_001_SRF_4_HR.png", "data/Set14/image_SRF_4/img_001_SRF_4_HR.png"}})

local i = 0
while arg[i - 1] do i = i - 1 end
local dplrun = arg[i]
if not dplrun:find("/") then dplrun = "./" .. dplrun end
local shared = os.getenv("DPL_SHARED") or "../shared"
local data = shared .. "/data"
local dir = os.tmpname() .. "_srbase"
os.execute("mkdir -p '" .. dir .. "'")

local function run(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"rc=$?\"")
  local out = p:read("*a")
  p:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return rc, out
end

local function hr_files(set, n)
  local list = {}
  for k = 1, n do list[k] = ("'%s/%s/image_SRF_4/img_%03d_SRF_4_HR.png'"):format(data, set, k) end
  return table.concat(list, " ")
end

S:add("Set5 and Set14 x4: published bicubic figures, one line per image, valid JSON", function(t)
  for _, set in ipairs {{"Set5", 5, 28.42, 0.8101}, {"Set14", 14, 25.99, 0.7023}} do
    local json = ("%s/%s.json"):format(dir, set[1])
    local rc, out = run(("%s examples/sr_baseline.lua --hr %s --scale 4 --json '%s'"):format(dplrun,
      hr_files(set[1], set[2]), json))
    t:eq(rc, 0, out)
    local lines = 0
    for _ in out:gmatch("img_%d+_SRF_4_HR%.png%s+PSNR") do lines = lines + 1 end
    t:eq(lines, set[2], "one line per image")
    local f = assert(io.open(json))
    local text = f:read("*a")
    f:close()
    local ok = os.execute(("/usr/bin/python3 -c \"import json, sys; d = json.load(open(sys.argv[1])); " ..
      "assert len(d['images']) == %d and set(d['mean']) == {'psnr', 'ssim'}\" '%s'"):format(set[2], json))
    t:ok(ok == 0 or ok == true, "JSON structure: " .. text:sub(1, 200))
    local doc = require("dpl.json").decode(text)
    local psnr, ssim = doc.mean.psnr, doc.mean.ssim
    t:ok(doc.config.scale == 4 and doc.config.dpl_version and doc.config.date, "the configuration in the JSON")
    t:ok(psnr and math.abs(psnr - set[3]) <= 0.01, ("%s mean PSNR %s vs %.2f"):format(set[1], tostring(psnr), set[3]))
    t:ok(ssim and math.abs(ssim - set[4]) <= 0.0002, ("%s mean SSIM %s vs %.4f"):format(set[1], tostring(ssim), set[4]))
    -- the printed mean agrees with the JSON
    local printed = tonumber(out:match("mean%s+PSNR%s+([%d.]+)"))
    t:near(printed, psnr, 1e-5)
  end
end)

S:add("directories, odd sizes (cropped to a multiple of S) and other scales", function(t)
  -- Regression (issue 11): the documented Set5/image_SRF_4 folder holds *_HR.png and *_LR.png; the LR files were
  -- scored as HR images too (10 images, 25.56 dB). A folder with *_HR.png files means those.
  local rc, out = run(("%s examples/sr_baseline.lua --hr '%s/Set5/image_SRF_4' --scale 4"):format(dplrun, data))
  t:eq(rc, 0, out)
  t:ok(out:find("(5 images, x4)", 1, true) and out:find("5 images (its *_HR.png files)", 1, true), out)
  t:ok(not out:find("_LR.png", 1, true), "no LR file scored: " .. out)
  t:near(tonumber(out:match("mean%s+PSNR%s+([%d.]+)")), 28.42, 0.01, "Set5 x4 from the folder")
  -- a folder without *_HR.png files: every image in it, counted
  local plain = dir .. "/plain"
  os.execute(("mkdir -p '%s' && cp '%s/Set5/image_SRF_4/img_001_SRF_4_HR.png' '%s/a.png' && " ..
    "cp '%s/Set5/image_SRF_4/img_002_SRF_4_HR.png' '%s/b.png'"):format(plain, data, plain, data, plain))
  rc, out = run(("%s examples/sr_baseline.lua --hr '%s' --scale 3"):format(dplrun, plain))
  t:eq(rc, 0, out)
  t:ok(out:find("(2 images, x3)", 1, true) and out:find(": 2 images\n", 1, true), out)
  -- a 61 x 59 PNG is cropped to 60 x 57
  local tmp = dir .. "/odd.png"
  os.execute(("/usr/bin/python3 -c \"from PIL import Image; Image.open('%s/Set5/image_SRF_4/img_002_SRF_4_HR.png')" ..
    ".crop((0, 0, 59, 61)).save('%s')\""):format(data, tmp))
  rc, out = run(("%s examples/sr_baseline.lua --hr '%s' --scale 3"):format(dplrun, tmp))
  t:eq(rc, 0, out)
  t:ok(out:find("odd.png%s+PSNR%s+%d+%.%d+ dB%s+SSIM 0%.%d+"), out)
end)

S:add("bad input: missing file, bad scale, no arguments", function(t)
  local rc, out = run(("%s examples/sr_baseline.lua --hr '%s/missing.png' --scale 4"):format(dplrun, dir))
  t:ok(rc == 2 and out:find("missing.png: no such file", 1, true), out)
  rc, out = run(("%s examples/sr_baseline.lua --hr '%s/Set5/image_SRF_4' --scale 4 --json '%s/no/such/dir/x.json'")
    :format(dplrun, data, dir))
  t:ok(rc == 2 and out:find("does not exist", 1, true) and not out:find("PSNR", 1, true), "checked before the work: " .. out)
  rc, out = run(("%s examples/sr_baseline.lua --hr '%s' --scale 0"):format(dplrun, dir .. "/odd.png"))
  t:ok(rc == 2 and out:find("positive integer", 1, true), out)
  rc, out = run(dplrun .. " examples/sr_baseline.lua")
  t:ok(rc ~= 0 and out:find("--hr", 1, true), out)
  rc, out = run(dplrun .. " examples/sr_baseline.lua --help")
  t:ok(rc == 0 and out:find("Usage", 1, true), out)
end)

S:add("examples/sr_degradation.lua prints the metrics and writes the images", function(t)
  local rc, out = run(("%s examples/sr_degradation.lua --image '%s/Set14/image_SRF_4/img_001_SRF_4_HR.png' --out '%s'")
    :format(dplrun, data, dir))
  t:eq(rc, 0, out)
  t:ok(out:find("HR 288x288, LR 72x72", 1, true), out)
  local psnr = tonumber(out:match("usual SR protocol %(Y, shave 4%): PSNR ([%d.]+) dB"))
  t:ok(psnr and psnr > 15 and psnr < 40, out)
  for _, name in ipairs {"hr.png", "lr.png", "bicubic.png"} do
    local f = io.open(dir .. "/" .. name, "rb")
    t:ok(f ~= nil, name .. " written")
    if f then f:close() end
  end
end)

return S

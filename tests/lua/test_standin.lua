-- The generated stand-in data (tests/ref/standin_data.py) and lua/dpl/test.lua's use of it ("Stand-in data"):
--  * the generator writes every file the stand-in suites declare, in ../shared's layout: Set5/Set14 HR at the real
--    sizes with LR = HR / 4, Set14 img_003 single-channel, MRD masks single-channel holding only 0 and 255, images
--    with structure (not flat), the same bytes on every run (seeded);
--  * a suite that accepts stand-ins runs on them without ../shared (one "using generated stand-in data" line, exit 0),
--    a case needing a real-only file is skipped on its own line and the suite still passes; without standin = true,
--    or with DPL_TEST_STANDIN=off, the suite is skipped (77); DPL_TEST_STANDIN=force uses them with ../shared there;
--  * two processes making them at once into an empty cache both succeed and leave one folder, no partial copies.
local dpl = require "dpl"
local test = require "dpl.test"
local S = test.suite("standin", {configurations = {"default"}})   -- host-side only

local here = arg[0]:match("^(.*)/[^/]*$") or "."
local root = here .. "/.."
local dplrun = test.dplrun()
local sh, slurp = test.run_command, test.read_file
local tmp = test.tmpdir("standin")
S.teardown = function() os.execute(("rm -rf '%s'"):format(tmp)) end

local made
local function generated(t)
  if made == nil then
    local rc, out = sh(("/usr/bin/python3 %s/tests/ref/standin_data.py '%s/a'"):format(root, tmp))
    made = rc == 0 or out
  end
  if made ~= true then
    if made:find("No module named", 1, true) then t:skip("numpy/Pillow missing: " .. made:sub(-200)) end
    t:ok(false, "tests/ref/standin_data.py failed: " .. made:sub(-800))
  end
  return tmp .. "/a/data"
end

S:add("the generator: ../shared's layout, real Set5/Set14 sizes, LR = HR / 4, L images, 0/255 masks, structure", function(t)
  local d = generated(t)
  local SIZES = {Set5 = {{512, 512}, {288, 288}, {256, 256}, {280, 280}, {228, 344}},
                 Set14 = {{500, 480}, {720, 576}, {512, 512}, {352, 288}, {248, 360}, {276, 276}, {500, 360},
                          {352, 288}, {512, 512}, {512, 512}, {768, 512}, {512, 512}, {528, 656}, {584, 388}}}
  for set, sizes in pairs(SIZES) do
    for i, wh in ipairs(sizes) do
      local base = ("%s/%s/image_SRF_4/img_%03d_SRF_4_"):format(d, set, i)
      local hr = dpl.image.load(base .. "HR.png", {mode = "keep", device = "cpu"})
      local lr = dpl.image.load(base .. "LR.png", {mode = "keep", device = "cpu"})
      local c = (set == "Set14" and i == 3) and 1 or 3
      t:shape(hr, {c, wh[2], wh[1]}, base .. "HR.png")
      t:shape(lr, {c, wh[2] / 4, wh[1] / 4}, base .. "LR.png")
      -- structure: a spread of values and edges (neighbouring pixels that differ a lot somewhere)
      local y = hr:narrow(1, 1, 1)
      local std = math.sqrt(((y - y:mean():item()):square()):mean():item())
      t:ok(std > 0.05, ("%s: not flat (std %.3f)"):format(base, std))
      local dx = (y:narrow(3, 2, wh[1] - 1) - y:narrow(3, 1, wh[1] - 1)):abs():max():item()
      t:ok(dx > 0.3, ("%s: has edges (largest step %.3f)"):format(base, dx))
    end
  end
  for _, name in ipairs {"ex_ref", "ex_p0", "ex_p1"} do
    t:shape(dpl.image.load(("%s/BAPPS/imgs/%s.png"):format(d, name), {mode = "keep", device = "cpu"}), {3, 64, 64})
  end
  for _, stem in ipairs {"10078735_15", "18478975_15", "22679080_15", "23429170_15"} do
    local img = dpl.image.load(("%s/MassachusettsRoads/images/%s.png"):format(d, stem), {mode = "keep", device = "cpu"})
    local m = dpl.image.load(("%s/MassachusettsRoads/masks/%s.png"):format(d, stem), {mode = "keep", device = "cpu"})
    t:eq(img:size(1), 3)
    t:shape(m, {1, img:size(2), img:size(3)}, stem .. " mask")
    t:eq((m * (m - 1)):abs():sum():item(), 0, stem .. ": mask values 0 and 255 only")
    local road = m:mean():item()
    t:ok(road > 0.01 and road < 0.2, ("%s: road-like share of mask pixels %.3f"):format(stem, road))
  end
  t:ok((slurp(tmp .. "/a/STANDIN.txt") or ""):find("NOT the datasets", 1, true) ~= nil, "STANDIN.txt says what they are")
  -- seeded: a second run writes the same bytes
  local rc, out = sh(("/usr/bin/python3 %s/tests/ref/standin_data.py '%s/b' && diff -r '%s/a' '%s/b'"):format(root,
    tmp, tmp, tmp))
  t:eq(rc, 0, "a second run differs: " .. out)
end)

-- a suite file that accepts stand-ins (or not), with a case that reads a stand-in file and one that needs a real-only file
local function suite_file(name, standin)
  local path = ("%s/%s.lua"):format(tmp, name)
  local f = assert(io.open(path, "w"))
  f:write(([[
local test = require "dpl.test"
local S = test.suite("probe", {shared = {"data/Set5/image_SRF_4/img_001_SRF_4_HR.png"}, standin = %s})
local dir = test.shared_dir()   -- at load time, as fixtures are made
S:add("reads a stand-in file", function(t)
  t:eq(test.shared_dir(), dir)
  local x = require("dpl").image.load(test.shared(t, "data/Set5/image_SRF_4/img_001_SRF_4_HR.png"), {device = "cpu"})
  t:shape(x, {3, 512, 512})
  print("shared_dir=" .. dir)
end)
S:add("needs real weights", function(t) test.shared(t, "data/LPIPS/weights/v0.1/alex.pth") end)
return S
]]):format(tostring(standin)))
  f:close()
  return path
end

local function probe(file, env)
  return sh(("cd '%s' && %s DPL_QUIET=1 %s --quiet %s/tests/run.lua '%s'"):format(tmp, env, dplrun, root, file))
end

S:add("a suite with standin = true runs on them without ../shared; the real-only case skips; off / not opted in: 77",
  function(t)
  generated(t)
  local cache = tmp .. "/cache1"
  local env = ("DPL_SHARED=/nonexistent DPL_CACHE_DIR='%s'"):format(cache)
  local yes, no = suite_file("probe_yes", true), suite_file("probe_no", false)
  local rc, out = probe(yes, env)
  t:eq(rc, 0, out)
  local dir = out:match("using generated stand%-in data: (%S+)")
  t:ok(dir ~= nil and dir:find(cache, 1, true) == 1, "one line names the stand-in folder: " .. out)
  t:ok(out:find("shared_dir=" .. dir, 1, true) ~= nil, "shared_dir() is that folder: " .. out)
  t:ok(out:find("ok     probe: reads a stand-in file", 1, true) ~= nil, out)
  t:ok(out:find("skip   probe: needs real weights (needs data/LPIPS/weights/v0.1/alex.pth of the real reference data",
    1, true) ~= nil, out)
  -- the stand-ins are the generator's output, reused by the next run (not made again)
  local rc2, out2 = sh(("diff -r '%s/a' '%s'"):format(tmp, dir))
  t:eq(rc2, 0, out2)
  os.execute(("touch -d '2000-01-01' '%s/STANDIN.txt'"):format(dir))
  rc, out = probe(yes, env)
  t:eq(rc, 0, out)
  local _, newer = sh(("find '%s/STANDIN.txt' -newermt '2001-01-01'"):format(dir))
  t:eq(newer, "", "the cached stand-ins were made again instead of reused")
  rc, out = probe(no, env)
  t:eq(rc, 77, "not opted in: skipped; " .. out)
  t:ok(out:find("needs data/Set5/image_SRF_4/img_001_SRF_4_HR.png of the reference data, not in /nonexistent", 1,
    true) ~= nil, out)
  rc, out = probe(yes, env .. " DPL_TEST_STANDIN=off")
  t:eq(rc, 77, "DPL_TEST_STANDIN=off: skipped; " .. out)
  -- with a complete ../shared the real folder is used, unless forced
  local real = tmp .. "/real"
  os.execute(("mkdir -p '%s/data/Set5' && cp -r '%s/a/data/Set5/image_SRF_4' '%s/data/Set5/'"):format(real, tmp, real))
  env = ("DPL_SHARED='%s' DPL_CACHE_DIR='%s'"):format(real, cache)
  rc, out = probe(yes, env)
  t:eq(rc, 77, "real folder, LPIPS missing there: " .. out)   -- a plain (not stand-in) run skips the weights case
  t:ok(out:find("shared_dir=" .. real, 1, true) ~= nil, out)
  t:ok(not out:find("using generated", 1, true), out)
  rc, out = probe(yes, env .. " DPL_TEST_STANDIN=force")
  t:eq(rc, 0, out)
  t:ok(out:find("using generated stand-in data: " .. dir, 1, true) ~= nil, out)
end)

S:add("two processes making the stand-ins at once: both run, one folder, no partial copies or older versions left",
      function(t)
  generated(t)
  local cache = tmp .. "/cache2"
  local env = ("DPL_SHARED=/nonexistent DPL_CACHE_DIR='%s'"):format(cache)
  -- an older generator's folder, which making this version removes
  os.execute(("mkdir -p '%s/standin-1' && touch '%s/standin-1/STANDIN.txt'"):format(cache, cache))
  local yes = suite_file("probe_yes", true)
  local cmd = ("cd '%s' && %s DPL_QUIET=1 %s --quiet %s/tests/run.lua '%s'"):format(tmp, env, dplrun, root, yes)
  local rc, out = sh(("(%s > '%s/p1.log' 2>&1; echo $? > '%s/p1.rc') & (%s > '%s/p2.log' 2>&1; echo $? > '%s/p2.rc') & "
    .. "wait"):format(cmd, tmp, tmp, cmd, tmp, tmp))
  t:eq(rc, 0, out)
  for _, p in ipairs {"p1", "p2"} do
    t:eq((slurp(("%s/%s.rc"):format(tmp, p)) or ""):gsub("%s+", ""), "0", slurp(("%s/%s.log"):format(tmp, p)))
  end
  local _, list = sh(("ls -A '%s'"):format(cache))
  local n = 0
  for name in list:gmatch("%S+") do
    n = n + 1
    t:ok(name:match("^standin%-%d+$") ~= nil, "only the finished folder: " .. list)
  end
  t:eq(n, 1, list)
end)

return S

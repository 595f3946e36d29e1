-- weights/fetch.lua lpips against a local HTTP server (tests/lua/http_fixture.lua) serving the real LPIPS linear
-- layers where their official location has them: the six files fetched past a 404 location, verified against the
-- manifest's checksums and found by dpl.perceptual. Needs the reference data's LPIPS/weights (skipped without); the
-- download machinery itself is tested without any reference file by test_download.lua.
local download = require "dpl.download"
local test = require "dpl.test"
-- default only: downloads from a local server, on the host
local S = test.suite("download_lpips", {configurations = {"default"}, shared = {"data/LPIPS/weights/v0.1/alex.pth"}})

local root = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/.."
local work = os.tmpname() .. "_dl_lpips"
local fx = dofile(root .. "/tests/lua/http_fixture.lua").new(root, work)
local sh = fx.sh
os.execute(("mkdir -p '%s'"):format(work))

local function write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

S:add("weights/fetch.lua lpips fetches the six linear layers and verifies them (real files)", function(t)
  local shared = test.shared_dir()
  -- served where the official location has them (GitHub's raw paths); the first location of each is 404 here
  local mirror = work .. "/lpips"
  local dir = mirror .. "/served/richzhang/PerceptualSimilarity/082bb24f84c091ea94de2867d34c4544f68e0963/lpips"
  os.execute(("mkdir -p '%s' && cp -r '%s/data/LPIPS/weights' '%s/'"):format(dir, shared, dir))
  local url = fx:server(mirror .. "/served", "--strict")
  local out = fx:run("", "weights/fetch.lua", ("lpips --dir '%s/w' --base-url %s"):format(mirror, url))
  t:ok(out:find("rc=0"), out)
  for _, v in ipairs {"0.1", "0.0"} do
    for _, net in ipairs {"alex", "vgg", "squeeze"} do
      local got = ("%s/w/lpips/v%s/%s.pth"):format(mirror, v, net)
      t:eq(download.sha256(got), download.sha256(("%s/data/LPIPS/weights/v%s/%s.pth"):format(shared, v, net)), got)
    end
  end
  t:ok(out:find("/master/lpips/weights/v0.1/alex.pth: HTTP 404; trying the next location", 1, true), out)
  -- the perceptual distance finds them in the weights folder
  write(mirror .. "/p.lua", 'print(require("dpl.perceptual").lpips_weights_path("vgg", "0.0"))')
  out = sh(("DPL_WEIGHTS='%s/w' DPL_SHARED=/nonexistent %s --quiet '%s/p.lua' 2>&1"):format(mirror, fx.dplrun, mirror))
  t:eq(out, mirror .. "/w/lpips/v0.0/vgg.pth\n")
  out = sh(("DPL_WEIGHTS=/nonexistent DPL_SHARED=/nonexistent %s --quiet '%s/p.lua' 2>&1"):format(fx.dplrun, mirror))
  t:ok(out:find("dplrun weights/fetch.lua lpips", 1, true), out)
end)

S.teardown = function()
  fx:stop()
  os.execute("rm -rf '" .. work .. "'")
end
return S

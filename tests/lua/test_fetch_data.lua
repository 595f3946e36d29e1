-- data/fetch.lua against local HTTP servers on 127.0.0.1 (tests/lua/http_fixture.lua) serving small stand-ins for
-- the official sources (tests/ref/fetch_fixtures.py), laid out at the official servers' paths: BAPPS tarballs found
-- at the old Berkeley address after the S3 location answers 404, extracted as LPIPS lays them out; an interrupted
-- download resumed, reported as incomplete (never present) meanwhile; files whose size differs from the published one
-- refused before they are downloaded; the Massachusetts Roads index pages followed file by file; --sources, --list,
-- --check (headers only), --verify (recorded SHA-256), data placed by hand, --help and the failures.
local test = require "dpl.test"
local bapps = require "dpl.data.bapps"
local mrd = require "dpl.data.mrd"
local sets = require "dpl.data.imagesets"
local folders = require "dpl.data.folders"
local dataset = require "dpl.data.dataset"
local download = require "dpl.download"
local S = test.suite("fetch data", {configurations = {"default"}})   -- default only: downloads and unpacking

local root = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/.."
local work = os.tmpname() .. "_fetchdata"
local fx = dofile(root .. "/tests/lua/http_fixture.lua").new(root, work)
local sh = fx.sh
local served = work .. "/served"
os.execute(("mkdir -p '%s'"):format(served))

local fixtures_ok = os.execute(("/usr/bin/python3 %s/tests/ref/fetch_fixtures.py '%s'"):format(root, served))
local fixture_sources = work .. "/fixture_sources.lua"
local strict   -- the server of the stand-ins; only exact paths exist (the S3 paths of BAPPS do not)
local function server()
  strict = strict or fx:server(served, "--strict")
  return strict
end
local function fetch(args) return fx:run("", "data/fetch.lua", args) end
local function requests() return select(2, fx:log(served):gsub("\n", "")) end

S:add("BAPPS: the S3 location answers 404, the Berkeley one serves; extracted, recorded, usable", function(t)
  t:ok(fixtures_ok == 0 or fixtures_ok == true, "the fixtures were written")
  local url = server()
  local dir = work .. "/data"
  local out = fetch(("bapps --quiet --dir '%s' --base-url %s"):format(dir, url))
  t:ok(out:find("rc=0") and out:find("bapps: in place"), out)
  t:ok(out:find(url .. "/dataset/twoafc_val.tar.gz: HTTP 404; trying the next location", 1, true), out)
  t:ok(out:find("trying " .. url .. "/~rich.zhang/projects/2018_perceptual/dataset/twoafc_val.tar.gz (location 2 of 2)", 1, true), out)
  t:ok(out:find("differs from 41486671", 1, true), "the third-party digest is compared, not enforced: " .. out)
  local ds = bapps.twoafc("frameinterp", {root = dir .. "/BAPPS"})
  t:eq(ds:len(), 3)
  t:near(dataset.get(ds, 2).judge, 0.5, 1e-7)
  t:eq(bapps.jnd("cnn", {root = dir .. "/BAPPS"}):len(), 2)
  t:ok(io.open(dir .. "/twoafc_val.tar.gz") == nil, "the archive is removed after extraction")
  -- the SHA-256 of the archive is recorded beside the data, in the extraction record too
  local sha = download.sha256(served .. "/~rich.zhang/projects/2018_perceptual/dataset/twoafc_val.tar.gz")
  t:eq(download.recorded(dir .. "/twoafc_val.tar.gz"), sha)
  local m = io.open(dir .. "/BAPPS/2afc/.fetched-twoafc_val.tar.gz"):read("*a")
  t:ok(m:find("sha256 " .. sha, 1, true), m)
  -- a second run finds everything in place and downloads nothing
  local before = requests()
  out = fetch(("bapps --quiet --dir '%s' --base-url %s"):format(dir, url))
  t:ok(out:find("rc=0"), out)
  t:eq(requests(), before)
  out = fetch(("--list --dir '%s'"):format(dir))
  t:ok(out:find("bapps%s+present") and out:find("svhn%s+missing") and out:find("twoafc_val.tar.gz"), out)
  t:ok(out:find("1. https://perceptual-similarity.s3.us-west-2.amazonaws.com/dataset/twoafc_val.tar.gz", 1, true)
       and out:find("2. https://people.eecs.berkeley.edu/", 1, true), "official first, the old address second: " .. out)
end)

S:add("an interrupted download is incomplete (never present) until a rerun resumes it", function(t)
  local url = fx:server(served, "--strict --drop-after 3000")
  local dir = work .. "/data_resume"
  local out = fetch(("bapps --quiet --dir '%s' --base-url %s"):format(dir, url))
  t:ok(out:find("run the same command again to resume", 1, true) and out:find("rc=1"), out)
  t:ok(out:find(dir .. "/twoafc_val.tar.gz", 1, true), "names where to put it by hand: " .. out)
  out = fetch(("--list --dir '%s'"):format(dir))
  t:ok(out:find("bapps%s+incomplete") and not out:find("bapps%s+present"), out)
  out = fetch(("bapps --quiet --dir '%s' --base-url %s"):format(dir, url))
  t:ok(out:find("rc=0"), out)
  t:ok(fx:log(served):find("GET /~rich.zhang/projects/2018_perceptual/dataset/twoafc_val.tar.gz bytes=3000-", 1, true),
       "resumed with a Range request")
  t:eq(bapps.twoafc("cnn", {root = dir .. "/BAPPS"}):len(), 3)
end)

S:add("a file whose size differs from the published one is refused before download; nothing is left", function(t)
  local dir = work .. "/data_bad"
  local out = fetch(("svhn --quiet --dir '%s' --base-url %s"):format(dir, server()))
  t:ok(out:find("train_32x32.mat", 1, true) and out:find("expected 182,040,794", 1, true) and out:find("rc=1"), out)
  t:ok(out:find("435e94d69a87fde4fd4d7f3dd208dfc32cb6ae8af2240d066de1df7508d083b8", 1, true), "names the SHA-256: " .. out)
  t:ok((download.file_size(dir .. "/svhn/train_32x32.mat") or download.file_size(dir .. "/svhn/train_32x32.mat.part")) == nil,
       "nothing under the final name, no partial copy")
  out = fetch(("--list --dir '%s'"):format(dir))
  t:ok(out:find("svhn%s+missing"), out)
end)

S:add("MRD follows the index pages (absolute and relative links); SVHN with its checksums; BSDS300 tarball", function(t)
  local url = server()
  local dir = work .. "/data2"
  local out = fetch(("mrd svhn bsd100 --quiet --dir '%s' --base-url %s --sources '%s'"):format(dir, url, fixture_sources))
  t:ok(out:find("rc=0"), out)
  local v = mrd.dataset("valid", {root = dir .. "/mass_roads"})
  t:eq(v:len(), 2)
  local s = dataset.get(v, 2)
  t:eq(s.name, "10001_15")
  t:shape(s.image, {3, 10, 12})
  t:eq(s.mask:min():item(), 1)
  t:eq(sets.svhn("extra", {root = dir .. "/svhn"}):len(), 3)
  t:eq(folders.bsd100({root = dir .. "/BSDS300"}):len(), 3)
  t:ok(out:find("svhn: train_32x32.mat (15,631 bytes, SHA-256 ", 1, true) and out:find(" verified)", 1, true), out)
  t:ok(download.recorded(dir .. "/mass_roads/valid/map/10001_15.tif"), "MRD files are recorded in SHA256SUMS")
  out = fetch(("--list --dir '%s' --sources '%s'"):format(dir, fixture_sources))
  t:ok(out:find("mrd%s+present") and out:find("svhn%s+present") and out:find("bsd100%s+present"), out)
  -- --verify recomputes every SHA-256: a flipped byte (same size) is found and named with the expected value
  out = fetch(("--verify svhn mrd --dir '%s' --sources '%s'"):format(dir, fixture_sources))
  t:ok(out:find("svhn%s+3 file%(s%) checked") and out:find("mrd%s+12 file%(s%) checked") and out:find("rc=0"), out)
  local f = io.open(dir .. "/svhn/test_32x32.mat", "r+b")
  f:seek("set", 200)
  local b = f:read(1)
  f:seek("set", 200)
  f:write(string.char((b:byte() + 1) % 256))
  f:close()
  out = fetch(("--verify svhn --dir '%s' --sources '%s'"):format(dir, fixture_sources))
  t:ok(out:find("BAD  the SHA-256 of test_32x32.mat is", 1, true) and out:find("not the expected", 1, true)
       and out:find("rc=1"), out)
end)

S:add("--check asks every location for its headers and says which answer with the expected size", function(t)
  local url = server()
  local out = fetch(("--check svhn --base-url %s --sources '%s'"):format(url, fixture_sources))
  t:ok(out:find("ok%s+http[^\n]+train_32x32%.mat  %(15,631 bytes%)") and out:find("rc=0"), out)
  out = fetch(("--check bapps --base-url %s"):format(url))
  t:ok(out:find("FAIL%s+" .. url:gsub("%p", "%%%0") .. "/dataset/twoafc_val%.tar%.gz  %(HTTP 404%)"), out)
  t:ok(out:find("WRONG SIZE", 1, true) and out:find("expected about 1.1 GB", 1, true), "a tiny stand-in is not BAPPS: " .. out)
  t:ok(out:find("no working location", 1, true) and out:find("rc=1"), out)
  out = fetch(("--check set5 --base-url %s"):format(fx:dead_url()))
  t:ok(out:find("FAIL", 1, true) and out:find("(17 more files not checked)", 1, true) and out:find("rc=1"), out)
end)

S:add("data placed by hand (no fetch record) is reported as such and left alone", function(t)
  local dir = work .. "/data_hand"
  os.execute(("mkdir -p '%s/BAPPS/2afc/val/cnn/judge' '%s/BAPPS/jnd/val/cnn/same'"):format(dir, dir))
  local out = fetch(("--list bapps --dir '%s'"):format(dir))
  t:ok(out:find("bapps%s+present %(placed by hand%)"), out)
  local before = requests()
  out = fetch(("bapps --quiet --dir '%s' --base-url %s"):format(dir, server()))
  t:ok(out:find("without a fetch record", 1, true) and out:find("rc=0"), out)
  t:eq(requests(), before)
end)

S:add("--help, unknown names and a file no location has fail clearly", function(t)
  local out = fetch("--help")
  t:ok(out:find("Usage") and out:find("%-%-base%-url") and out:find("%-%-check") and out:find("rc=0"), out)
  out = fetch(("nosuch --dir '%s'"):format(work .. "/d3"))
  t:ok(out:find("unknown dataset 'nosuch'") and out:find("rc=2"), out)
  out = fetch(("stl10 --quiet --dir '%s' --base-url %s"):format(work .. "/d3", server()))
  t:ok(out:find("/~acoates/stl10/stl10_binary.tar.gz: HTTP 404", 1, true) and out:find("(location 2 of 2)", 1, true)
       and out:find("Put the file there by hand", 1, true) and out:find("rc=1"), out)
  out = fetch("")
  t:ok(out:find("name at least one dataset") and out:find("rc=2"), out)
end)

S:add("every source has ordered locations, and a size or checksum where one is known", function(t)
  local sources = require "dpl.data.sources"
  for _, name in ipairs(sources.order) do
    local s = sources[name]
    t:ok(s and s.about and #s > 0, name)
    for _, item in ipairs(s) do
      local urls = item.urls or item.index
      t:ok(urls and #urls >= 1, name .. ": locations")
      if item.extract then t:ok(item.check and (item.bytes or item.approx_bytes), name .. ": check path and size") end
      if item.sha256 then t:eq(#item.sha256, 64, name) end
    end
  end
  t:eq(sources.bapps[1].urls[1], "https://perceptual-similarity.s3.us-west-2.amazonaws.com/dataset/twoafc_val.tar.gz")
end)

S.teardown = function()
  fx:stop()
  os.execute("rm -rf '" .. work .. "'")
end
return S

-- data/fetch.lua against a local HTTP server on 127.0.0.1 serving small stand-ins for the official sources
-- (tests/ref/fetch_fixtures.py): BAPPS tarballs (extracted with tar as LPIPS lays them out), the Massachusetts
-- Roads index pages followed file by file, single .mat files, --list, --help and the failures.
local test = require "dpl.test"
local bapps = require "dpl.data.bapps"
local mrd = require "dpl.data.mrd"
local sets = require "dpl.data.imagesets"
local folders = require "dpl.data.folders"
local dataset = require "dpl.data.dataset"
local S = test.suite("fetch data")

local root = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/.."
local work = os.tmpname() .. "_fetchdata"
local served = work .. "/served"
os.execute(("mkdir -p '%s'"):format(served))

local function sh(cmd)
  local p = io.popen(cmd)
  local out = p:read("*a")
  p:close()
  return out
end

local fixtures_ok = os.execute(("/usr/bin/python3 %s/tests/ref/fetch_fixtures.py '%s'"):format(root, served))
local server_pid
local function server()
  if server_pid then return server_pid.url end
  local portfile = work .. "/port"
  os.execute(("/usr/bin/python3 %s/tests/ref/http_server.py '%s' '%s' --lifetime 120 >/dev/null 2>&1 & echo $! > '%s.pid'")
    :format(root, served, portfile, portfile))
  for _ = 1, 100 do
    local f = io.open(portfile)
    if f then
      local port = f:read("*a")
      f:close()
      local pf = io.open(portfile .. ".pid")
      server_pid = {pid = pf:read("*a"):gsub("%s", ""), url = "http://127.0.0.1:" .. port}
      pf:close()
      return server_pid.url
    end
    os.execute("sleep 0.1")
  end
  error("the test HTTP server did not start")
end

local i = -1
while arg[i - 1] do i = i - 1 end
local dplrun = arg[i]
local function fetch(args)
  return sh(("%s --quiet %s/data/fetch.lua %s 2>&1; echo rc=$?"):format(dplrun, root, args))
end

S:add("BAPPS: tarballs downloaded, extracted into the 2AFC/JND tree, usable by the loaders", function(t)
  t:ok(fixtures_ok == 0 or fixtures_ok == true, "the fixtures were written")
  local url = server()
  local dir = work .. "/data"
  local out = fetch(("bapps --quiet --dir '%s' --base-url %s"):format(dir, url))
  t:ok(out:find("rc=0") and out:find("bapps: in place"), out)
  local ds = bapps.twoafc("frameinterp", {root = dir .. "/BAPPS"})
  t:eq(ds:len(), 3)
  t:near(dataset.get(ds, 2).judge, 0.5, 1e-7)
  t:eq(bapps.jnd("cnn", {root = dir .. "/BAPPS"}):len(), 2)
  t:ok(io.open(dir .. "/twoafc_val.tar.gz") == nil, "the archive is removed after extraction")
  -- a second run finds everything in place and downloads nothing
  local log_before = sh("wc -l < '" .. work .. "/server.log'")
  out = fetch(("bapps --quiet --dir '%s' --base-url %s"):format(dir, url))
  t:ok(out:find("rc=0"), out)
  t:eq(sh("wc -l < '" .. work .. "/server.log'"), log_before)
  out = fetch(("--list --dir '%s'"):format(dir))
  t:ok(out:find("bapps%s+present") and out:find("svhn%s+missing") and out:find("twoafc_val.tar.gz"), out)
end)

S:add("MRD follows the index pages (absolute and relative links); SVHN files; BSDS300 tarball", function(t)
  local url = server()
  local dir = work .. "/data2"
  local out = fetch(("mrd svhn bsd100 --quiet --dir '%s' --base-url %s"):format(dir, url))
  t:ok(out:find("rc=0"), out)
  local v = mrd.dataset("valid", {root = dir .. "/mass_roads"})
  t:eq(v:len(), 2)
  local s = dataset.get(v, 2)
  t:eq(s.name, "10001_15")
  t:shape(s.image, {3, 10, 12})
  t:eq(s.mask:min():item(), 1)
  t:eq(sets.svhn("extra", {root = dir .. "/svhn"}):len(), 3)
  t:eq(folders.bsd100({root = dir .. "/BSDS300"}):len(), 3)
end)

S:add("--help, unknown names and a missing file on the server fail clearly", function(t)
  local out = fetch("--help")
  t:ok(out:find("Usage") and out:find("%-%-base%-url") and out:find("rc=0"), out)
  out = fetch(("nosuch --dir '%s'"):format(work .. "/d3"))
  t:ok(out:find("unknown dataset 'nosuch'") and out:find("rc=1"), out)
  out = fetch(("stl10 --quiet --dir '%s' --base-url %s"):format(work .. "/d3", server()))
  t:ok(out:find("stl10_binary.tar.gz") and out:find("404") and out:find("rc=1"), out)
  out = fetch("")
  t:ok(out:find("name at least one dataset") and out:find("rc=2"), out)
end)

S.teardown = function()
  if server_pid then os.execute("kill " .. server_pid.pid .. " 2>/dev/null") end
  os.execute("rm -rf '" .. work .. "'")
end
return S

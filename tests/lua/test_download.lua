-- Downloads (lua/dpl/download.lua, weights/fetch.lua) against a local HTTP server on 127.0.0.1 serving files this
-- test makes: SHA-256 against Python's hashlib, a complete download, a download interrupted mid-way and resumed
-- with a Range request, a checksum mismatch (the partial file is removed), and fetch.lua's errors.
local download = require "dpl.download"
local test = require "dpl.test"
local S = test.suite("download")

local root = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/.."
local work = os.tmpname() .. "_dl"
local served = work .. "/served"
os.execute(("mkdir -p '%s' '%s/out'"):format(served, work))

local function sh(cmd)
  local p = io.popen(cmd)
  local out = p:read("*a")
  p:close()
  return out
end

-- a 1.5 MB file of pseudo-random bytes, and its SHA-256 from Python
local blob = served .. "/blob.bin"
sh(("/usr/bin/python3 -c \"import random; r = random.Random(7); open('%s', 'wb').write(bytes(r.getrandbits(8) for _ in range(1500000)))\""):format(blob))
local expected = sh(("/usr/bin/python3 -c \"import hashlib; print(hashlib.sha256(open('%s', 'rb').read()).hexdigest())\""):format(blob)):gsub("%s", "")

local servers = {}
local function start_server(extra)
  local portfile = work .. "/port" .. #servers
  os.execute(("/usr/bin/python3 %s/tests/ref/http_server.py '%s' '%s' --lifetime 60 %s >/dev/null 2>&1 & echo $! > '%s.pid'")
    :format(root, served, portfile, extra or "", portfile))
  for _ = 1, 100 do
    local f = io.open(portfile)
    if f then
      local port = f:read("*a")
      f:close()
      local pf = io.open(portfile .. ".pid")
      servers[#servers + 1] = pf:read("*a"):gsub("%s", "")
      pf:close()
      return "http://127.0.0.1:" .. port
    end
    os.execute("sleep 0.1")
  end
  error("the test HTTP server did not start")
end

S:add("sha256 matches Python's hashlib", function(t)
  t:eq(#expected, 64)
  t:eq(download.sha256(blob), expected)
end)

S:add("a complete download is verified and moved into place", function(t)
  local url = start_server()
  local dest = work .. "/out/full.bin"
  download.fetch(url .. "/blob.bin", dest, {sha256 = expected, quiet = true})
  t:eq(download.sha256(dest), expected)
  t:ok(download.file_size(dest .. ".part") == nil, "no .part file left")
end)

S:add("an interrupted download resumes with a Range request", function(t)
  local url = start_server("--drop-after 400000")
  local dest = work .. "/out/resumed.bin"
  local msg = t:raises(function() download.fetch(url .. "/blob.bin", dest, {sha256 = expected, quiet = true}) end,
                       "run the same command again to resume")
  local partial = download.file_size(dest .. ".part")
  t:ok(partial and partial > 0 and partial < 1500000, "a partial file is kept: " .. tostring(partial))
  t:ok(download.file_size(dest) == nil, "no complete-looking file after the failure")
  download.fetch(url .. "/blob.bin", dest, {sha256 = expected, quiet = true})
  t:eq(download.sha256(dest), expected)
  local log = sh("cat '" .. work .. "/server.log'")
  t:ok(log:find("bytes=" .. partial .. "%-"), "the second request asked for the rest: " .. log)
end)

S:add("a checksum mismatch is an error and removes the partial file", function(t)
  local url = start_server()
  local dest = work .. "/out/bad.bin"
  t:raises(function() download.fetch(url .. "/blob.bin", dest, {sha256_prefix = "00000000", quiet = true}) end,
           "does not match")
  t:ok(download.file_size(dest) == nil and download.file_size(dest .. ".part") == nil, "nothing left behind")
  t:raises(function() download.fetch(url .. "/missing.bin", dest, {quiet = true}) end, "404")
end)

S:add("weights/fetch.lua verifies the manifest's hash and reports failures", function(t)
  local url = start_server()
  -- a file with alexnet's name but other content: the SHA-256 prefix check must reject it
  os.execute(("cp '%s' '%s/alexnet-owt-7be5be79.pth'"):format(blob, served))
  local i = -1
  while arg[i - 1] do i = i - 1 end
  local dplrun = arg[i]
  local cmd = ("%s --quiet %s/weights/fetch.lua alexnet --quiet --dir '%s/w' --base-url %s 2>&1; echo rc=$?")
    :format(dplrun, root, work, url)
  local out = sh(cmd)
  t:ok(out:find("does not match the expected 7be5be79"), out)
  t:ok(out:find("rc=1"), out)
  out = sh(("%s --quiet %s/weights/fetch.lua nosuchnet --dir '%s/w' 2>&1; echo rc=$?"):format(dplrun, root, work))
  t:ok(out:find("unknown architecture 'nosuchnet'") and out:find("rc=1"), out)
  out = sh(("%s --quiet %s/weights/fetch.lua --list --dir '%s/w' 2>&1"):format(dplrun, root, work))
  t:ok(out:find("vgg16%-397923af%.pth") and out:find("missing"), out)
end)

S:add("a missing checkpoint names the fetch command", function(t)
  local store = require "dpl.weights_store"
  if download.file_size(store.dir() .. "/vgg19-dcbb9e9d.pth") then return end
  t:raises(function() store.path_for("vgg19") end, "fetch it with: dplrun weights/fetch.lua vgg19")
  t:raises(function() store.path_for("vgg99") end, "unknown architecture 'vgg99'")
end)

S.teardown = function()
  for _, pid in ipairs(servers) do os.execute("kill " .. pid .. " 2>/dev/null") end
  os.execute("rm -rf '" .. work .. "'")
end
return S

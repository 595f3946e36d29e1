-- Downloads (lua/dpl/download.lua, weights/fetch.lua, lua/dpl/weights_store.lua) against local HTTP servers on
-- 127.0.0.1 (tests/lua/http_fixture.lua) serving files this test makes: SHA-256 against Python's hashlib; the first
-- location answering 404 (or not at all) and the next one used; an interrupted download resumed with a Range request,
-- also from another location, and restarted when the server ignores Range; a wrong size or checksum refused with
-- nothing left behind; the SHA-256 recorded in SHA256SUMS and enforced later; weights/fetch.lua's refusals leaving
-- nothing --list or lossnet would take as present; a checkpoint taken from the torch hub cache without downloading;
-- a partial copy under the final name continued; --check. (The real LPIPS layers, which need the reference data, are
-- fetched and verified by test_download_lpips.lua, so that this suite passes whole without them, as on CI.)
local download = require "dpl.download"
local test = require "dpl.test"
-- default only: downloads from a local server, on the host
local S = test.suite("download", {configurations = {"default"}})

local root = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/.."
local work = os.tmpname() .. "_dl"
local fx = dofile(root .. "/tests/lua/http_fixture.lua").new(root, work)
local sh = fx.sh
local served = work .. "/served"
os.execute(("mkdir -p '%s' '%s/out'"):format(served, work))

local function py(code) return sh("/usr/bin/python3 -c \"" .. code .. "\""):gsub("%s+$", "") end
local function write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end
local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- a 1.5 MB file of pseudo-random bytes, and its SHA-256 from Python
local blob = served .. "/blob.bin"
py(("import random; r = random.Random(7); open('%s', 'wb').write(bytes(r.getrandbits(8) for _ in range(1500000)))"):format(blob))
local expected = py(("import hashlib; print(hashlib.sha256(open('%s', 'rb').read()).hexdigest())"):format(blob))
local quiet = function() end

S:add("sha256 matches Python's hashlib (file and string)", function(t)
  t:eq(#expected, 64)
  t:eq(download.sha256(blob), expected)
  t:eq(require("dpl.sys.crypto").sha256_string("abc"), py("import hashlib; print(hashlib.sha256(b'abc').hexdigest())"))
end)

S:add("a complete download is verified, moved into place and recorded in SHA256SUMS", function(t)
  local url = fx:server(served)
  local dest = work .. "/out/full.bin"
  local _, info = download.fetch(url .. "/blob.bin", dest, {sha256 = expected, bytes = 1500000, quiet = true})
  t:eq(download.sha256(dest), expected)
  t:eq(info.sha256, expected)
  t:ok(download.file_size(dest .. ".part") == nil, "no .part file left")
  t:eq(read(work .. "/out/SHA256SUMS"), expected .. "  full.bin\n")
  t:eq(download.recorded(dest), expected)
  -- the record is what `sha256sum -c` reads
  t:ok(sh(("cd '%s/out' && sha256sum -c SHA256SUMS 2>&1"):format(work)):find("full.bin: OK"), "sha256sum -c accepts it")
end)

S:add("the first location answers 404 (or nothing): the next one is used, and each failure is said", function(t)
  local url = fx:server(served, "--strict")
  local dead = fx:dead_url()
  local dest = work .. "/out/fallback.bin"
  local lines = {}
  local _, info = download.fetch({url .. "/nowhere/blob.bin", dead .. "/blob.bin", url .. "/blob.bin"}, dest,
    {sha256 = expected, quiet = true, log = function(m) lines[#lines + 1] = m end})
  t:eq(info.url, url .. "/blob.bin")
  t:eq(download.sha256(dest), expected)
  local said = table.concat(lines, "\n")
  t:ok(said:find("nowhere/blob.bin: HTTP 404; trying the next location", 1, true), said)
  t:ok(said:find(dead .. "/blob.bin: ", 1, true) and said:find("(location 3 of 3)", 1, true), said)
end)

S:add("an interrupted download resumes with a Range request, also from the next location", function(t)
  local url = fx:server(served, "--drop-after 400000")
  local dest = work .. "/out/resumed.bin"
  local msg = t:raises(function() download.fetch(url .. "/blob.bin", dest, {sha256 = expected, quiet = true, log = quiet}) end,
                       "run the same command again to resume")
  local partial = download.file_size(dest .. ".part")
  t:ok(partial and partial > 0 and partial < 1500000, "a partial file is kept: " .. tostring(partial))
  t:ok(msg:find(download.absolute(dest), 1, true) and msg:find(expected, 1, true), "names the path and the SHA-256: " .. msg)
  t:ok(download.file_size(dest) == nil, "no complete-looking file after the failure")
  -- the first location is now gone; the second continues the partial copy
  local other = fx:server(served, "--strict")
  download.fetch({other .. "/gone.bin", other .. "/blob.bin"}, dest, {sha256 = expected, quiet = true, log = quiet})
  t:eq(download.sha256(dest), expected)
  t:ok(fx:log(served):find("GET /blob.bin bytes=" .. partial .. "%-"), "the request asked for the rest: " .. fx:log(served))
end)

S:add("a server that ignores Range: the download starts again from the first byte", function(t)
  local url = fx:server(served, "--no-range")
  local dest = work .. "/out/norange.bin"
  write(dest .. ".part", ("x"):rep(1000))   -- a stale partial copy
  download.fetch(url .. "/blob.bin", dest, {sha256 = expected, quiet = true, log = quiet})
  t:eq(download.sha256(dest), expected)
end)

S:add("a wrong size or checksum is refused, deleted, and the message names the file and the expected value", function(t)
  local url = fx:server(served)
  local dest = work .. "/out/bad.bin"
  local msg = t:raises(function() download.fetch(url .. "/blob.bin", dest, {bytes = 1234567, quiet = true, log = quiet}) end,
                       "bad.bin")
  t:ok(msg:find("1,500,000 bytes, expected 1,234,567", 1, true), msg)
  t:ok(download.file_size(dest) == nil and download.file_size(dest .. ".part") == nil, "nothing left behind")
  local wrong = ("0"):rep(63) .. "1"
  msg = t:raises(function() download.fetch(url .. "/blob.bin", dest, {sha256 = wrong, quiet = true, log = quiet}) end,
                 "the SHA-256 of bad.bin is " .. expected .. ", not the expected " .. wrong)
  t:ok(download.file_size(dest) == nil and download.file_size(dest .. ".part") == nil, "nothing left behind")
  t:ok(msg:find("Put the file there by hand: " .. download.absolute(dest) .. " (SHA-256 " .. wrong, 1, true), msg)
  t:raises(function() download.fetch(url .. "/blob.bin", dest, {sha256_prefix = "00000000", quiet = true, log = quiet}) end,
           "not the expected prefix 00000000")
  t:raises(function() download.fetch(url .. "/missing/", dest, {quiet = true, log = quiet}) end, "HTTP 404")
  t:ok(download.file_size(dest .. ".part") == nil, "a 404 leaves no empty .part")
end)

S:add("the SHA-256 recorded at the first download is enforced on later downloads of the same file", function(t)
  local dir = work .. "/tofu"
  os.execute(("mkdir -p '%s/served'"):format(dir))
  write(dir .. "/served/data.bin", "first version")
  local url = fx:server(dir .. "/served")
  local dest = work .. "/out/tofu.bin"
  download.fetch(url .. "/data.bin", dest, {quiet = true})
  os.remove(dest)
  write(dir .. "/served/data.bin", "changed upstream")
  t:raises(function() download.fetch(url .. "/data.bin", dest, {quiet = true, log = quiet}) end,
           "recorded in SHA256SUMS when it was first downloaded")
  t:ok(download.file_size(dest) == nil, "the changed file is not taken")
end)

-- weights/fetch.lua on a small manifest (a checkpoint made here, named as torchvision names them: SHA-256 prefix)
local tiny = work .. "/tiny"
os.execute(("mkdir -p '%s/served/models' '%s/hub/hub/checkpoints'"):format(tiny, tiny))
local tiny_data = ("dpl-test-checkpoint "):rep(500)
write(tiny .. "/data", tiny_data)
local tiny_sha = download.sha256(tiny .. "/data")
local tiny_file = "tinynet-" .. tiny_sha:sub(1, 8) .. ".pth"
write(tiny .. "/served/models/" .. tiny_file, tiny_data)
write(tiny .. "/manifest.lua", ([[
local e = {arch = "alexnet", file = %q, top1 = 1, bytes = %d, sha256_prefix = %q, aliases = {"tinynet-oldname.pth"},
           urls = {"https://download.pytorch.org/models/%s"}}
return {order = {"alexnet"}, alexnet = e, lpips = {}}
]]):format(tiny_file, #tiny_data, tiny_sha:sub(1, 8), tiny_file))
local function weights(env, args)
  return fx:run(("DPL_WEIGHTS_MANIFEST='%s/manifest.lua' TORCH_HOME='%s/nohub' %s"):format(tiny, tiny, env or ""),
                "weights/fetch.lua", args)
end
-- what lossnet would load for alexnet: "path P" or "error MESSAGE", with the environment assignments `env`
local function run_path_for(env)
  local script = work .. "/path_for.lua"
  write(script, 'local ok, r = pcall(require("dpl.weights_store").path_for, "alexnet"); print(ok and "path " .. r or "error " .. r)')
  return sh(("%s %s --quiet '%s' 2>&1"):format(env, fx.dplrun, script))
end
local function path_for(env)
  return run_path_for(("DPL_WEIGHTS_MANIFEST='%s/manifest.lua' DPL_WEIGHTS='%s/w' TORCH_HOME='%s/nohub' %s")
    :format(tiny, tiny, tiny, env or ""))
end

S:add("weights/fetch.lua: a refused download leaves nothing that --list or lossnet takes as present", function(t)
  local url = fx:server(served)
  -- the official manifest: a file with alexnet's name but other content is refused before it is downloaded
  os.execute(("mkdir -p '%s/models' && cp '%s' '%s/models/alexnet-owt-7be5be79.pth'"):format(served, blob, served))
  local out = fx:run("TORCH_HOME=" .. work .. "/nohub", "weights/fetch.lua",
                     ("alexnet --dir '%s/w' --base-url %s"):format(work, url))
  t:ok(out:find("the server announces 1,500,000 bytes, expected 244,408,911", 1, true), out)
  t:ok(out:find("7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02", 1, true), "names the SHA-256: " .. out)
  t:ok(out:find(work .. "/w/alexnet%-owt%-7be5be79%.pth") and out:find("rc=1"), out)
  t:ok(download.file_size(work .. "/w/alexnet-owt-7be5be79.pth") == nil, "nothing under the final name")
  t:ok(download.file_size(work .. "/w/alexnet-owt-7be5be79.pth.part") == nil, "no partial copy of a wrong file")
  out = fx:run("TORCH_HOME=" .. work .. "/nohub", "weights/fetch.lua", ("--list --dir '%s/w'"):format(work))
  t:ok(out:find("alexnet%s+alexnet%-owt%-7be5be79%.pth%s+top%-1 56%.52%s+missing"), out)
  -- a 0-byte file (left by some other tool) is "empty", not present, and lossnet's error says what to do
  os.execute(("mkdir -p '%s/w' && : > '%s/w/alexnet-owt-7be5be79.pth'"):format(work, work))
  out = fx:run("TORCH_HOME=" .. work .. "/nohub", "weights/fetch.lua", ("--list --dir '%s/w'"):format(work))
  t:ok(out:find("alexnet%-owt%-7be5be79%.pth%s+top%-1 56%.52%s+empty"), out)
  out = run_path_for(("DPL_WEIGHTS='%s/w' TORCH_HOME='%s/nohub'"):format(work, work))
  t:ok(out:find("is empty (0 bytes; expected SHA-256 7be5be79", 1, true) and out:find("dplrun weights/fetch.lua alexnet", 1, true), out)
  out = fx:run("", "weights/fetch.lua", ("nosuchnet --dir '%s/w'"):format(work))
  t:ok(out:find("unknown architecture 'nosuchnet'") and out:find("rc=2"), out)
end)

S:add("data/fetch.lua and weights/fetch.lua: user errors are one line, exit status 2, before any download", function(t)
  for script, cases in pairs {
    ["data/fetch.lua"] = {
      {"nosuchset", "data/fetch.lua: unknown dataset 'nosuchset' (known: bapps"},
      {"--bogus", "data/fetch.lua: unknown option '--bogus' (see --help)"},
      {"--sources /nonexistent.lua set5", "data/fetch.lua: --sources /nonexistent.lua: cannot open"},
      {"", "data/fetch.lua: name at least one dataset"}},
    ["weights/fetch.lua"] = {
      {"alexnet nosuchnet", "weights/fetch.lua: unknown architecture 'nosuchnet' (known: alexnet"},
      {"--bogus", "weights/fetch.lua: unknown option '--bogus' (see --help)"},
      {"", "weights/fetch.lua: name at least one architecture"}},
  } do
    test.user_errors(t, function(a)
      local out = fx:run("TORCH_HOME=" .. work .. "/nohub", script, a .. (" --dir '%s/never'"):format(work))
      return tonumber(out:match("rc=(%d+)%s*$")), (out:gsub("rc=%d+%s*$", ""))
    end, cases)
  end
  t:eq(sh(("test -e '%s/never' && echo exists || echo absent"):format(work)):gsub("%s+$", ""), "absent",
    "nothing was created before the arguments were checked")
end)

S:add("weights/fetch.lua: a checkpoint in the torch hub cache is verified and used without downloading", function(t)
  write(tiny .. "/hub/hub/checkpoints/" .. tiny_file, tiny_data)
  local dead = fx:dead_url()
  local out = weights(("TORCH_HOME='%s/hub'"):format(tiny), ("alexnet --dir '%s/w' --base-url %s"):format(tiny, dead))
  t:ok(out:find("found in the torch hub cache: " .. tiny .. "/hub/hub/checkpoints/" .. tiny_file, 1, true)
       and out:find("nothing downloaded", 1, true) and out:find("rc=0"), out)
  t:ok(download.file_size(tiny .. "/w/" .. tiny_file) == nil, "not copied")
  out = path_for(("TORCH_HOME='%s/hub'"):format(tiny))
  t:ok(out:find("path " .. tiny .. "/hub/hub/checkpoints/" .. tiny_file, 1, true), out)
  out = weights(("TORCH_HOME='%s/hub'"):format(tiny), ("--list --dir '%s/w'"):format(tiny))
  t:ok(out:find("present (torch hub cache", 1, true), out)
  -- a copy there with other bytes is not trusted: dpl downloads its own
  write(tiny .. "/hub/hub/checkpoints/" .. tiny_file, ("x"):rep(#tiny_data))
  local url = fx:server(tiny .. "/served", "--strict")
  out = weights(("TORCH_HOME='%s/hub'"):format(tiny), ("alexnet --dir '%s/w' --base-url %s"):format(tiny, url))
  t:ok(out:find("is not the expected file", 1, true) and out:find("SHA-256 " .. tiny_sha .. " verified", 1, true)
       and out:find("rc=0"), out)
  t:eq(download.sha256(tiny .. "/w/" .. tiny_file), tiny_sha)
  os.remove(tiny .. "/hub/hub/checkpoints/" .. tiny_file)
  os.remove(tiny .. "/w/" .. tiny_file)
end)

S:add("a checkpoint under an older name (alias) is found in a folder; the torch hub cache only when asked", function(t)
  local store = require "dpl.weights_store"
  local e = dofile(tiny .. "/manifest.lua").alexnet
  local dir = tiny .. "/aliased"
  os.execute(("mkdir -p '%s'"):format(dir))
  t:ok(store.locate(e, dir, {hub = false}) == nil, "nothing there yet")
  write(dir .. "/tinynet-oldname.pth", tiny_data)
  local path, where = store.locate(e, dir, {hub = false})
  t:eq(path, dir .. "/tinynet-oldname.pth")
  t:eq(where, "weights folder")
  write(dir .. "/tinynet-oldname.pth", tiny_data:sub(1, 10))   -- too short: not taken
  local _, unfit = store.locate(e, dir, {hub = false})
  t:eq(unfit[1].status, "partial")
end)

S:add("weights/fetch.lua: a partial copy under the final name is continued; a failed one says where to put it", function(t)
  local url = fx:server(tiny .. "/served", "--strict")
  os.execute(("mkdir -p '%s/w'"):format(tiny))
  write(tiny .. "/w/" .. tiny_file, tiny_data:sub(1, 3000))
  local out = weights("", ("alexnet --dir '%s/w' --base-url %s"):format(tiny, url))
  t:ok(out:find("holds 3,000 bytes", 1, true) and out:find("rc=0"), out)
  t:eq(download.sha256(tiny .. "/w/" .. tiny_file), tiny_sha)
  t:ok(fx:log(tiny .. "/served"):find("GET /models/" .. tiny_file .. " bytes=3000-", 1, true), fx:log(tiny .. "/served"))
  out = path_for()
  t:ok(out:find("path " .. tiny .. "/w/" .. tiny_file, 1, true), out)
  os.remove(tiny .. "/w/" .. tiny_file)
  -- nothing anywhere: the error names the exact path, the expected SHA-256 and size; nothing is left
  out = weights("", ("alexnet --dir '%s/w' --base-url %s"):format(tiny, fx:dead_url()))
  -- (the full SHA-256: the one recorded in SHA256SUMS at the first download above)
  t:ok(out:find("Put the file there by hand: " .. tiny .. "/w/" .. tiny_file .. " (SHA-256 " .. tiny_sha .. ", "
    .. download.thousands(#tiny_data) .. " bytes)", 1, true) and out:find("rc=1"), out)
  out = weights("", ("--list --dir '%s/w'"):format(tiny))
  t:ok(out:find(tiny_file:gsub("%p", "%%%0") .. "%s+top%-1  1%.00%s+missing"), out)
  out = path_for()
  t:ok(out:find("checkpoint is missing: " .. tiny .. "/w/" .. tiny_file, 1, true), out)
end)

S:add("weights/fetch.lua --check asks every location for its headers and compares the size", function(t)
  local url = fx:server(tiny .. "/served", "--strict")
  local out = weights("", "--check --base-url " .. url)
  t:ok(out:find("ok%s+" .. url:gsub("%p", "%%%0") .. "/models/" .. tiny_file:gsub("%p", "%%%0") .. "  %(10,000 bytes%)")
       and out:find("rc=0"), out)
  write(tiny .. "/served/models/" .. tiny_file, tiny_data .. "more")
  out = weights("", "--check --base-url " .. url)
  t:ok(out:find("WRONG SIZE", 1, true) and out:find("no working location", 1, true) and out:find("rc=1"), out)
  write(tiny .. "/served/models/" .. tiny_file, tiny_data)
  out = weights("", "--check --base-url " .. fx:dead_url())
  t:ok(out:find("FAIL", 1, true) and out:find("rc=1"), out)
  -- the official manifest: every checkpoint and LPIPS file has at least one location, a size and a checksum
  local m = dofile(root .. "/weights/manifest.lua")
  t:eq(#m.order, 14)
  for _, e in ipairs(m.lpips) do m[e.name] = e; m.order[#m.order + 1] = e.name end
  for _, name in ipairs(m.order) do
    local e = m[name]
    t:ok(#e.urls >= 1 and (e.bytes or e.mib) and (e.sha256 or e.sha256_prefix), name)
    if e.sha256 and e.sha256_prefix then t:eq(e.sha256:sub(1, 8), e.sha256_prefix, name .. ": the name's prefix") end
  end
end)

S:add("a missing checkpoint names the fetch command", function(t)
  local store = require "dpl.weights_store"
  if store.locate(store.manifest().vgg19) then t:skip("vgg19 is present") end
  t:raises(function() store.path_for("vgg19") end, "fetch it with: dplrun weights/fetch.lua vgg19")
  t:raises(function() store.path_for("vgg99") end, "unknown architecture 'vgg99'")
end)

S.teardown = function()
  fx:stop()
  os.execute("rm -rf '" .. work .. "'")
end
return S

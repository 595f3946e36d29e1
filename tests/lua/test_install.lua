-- cmake --install into a temporary prefix, then the installed dplrun used from another folder, as a user would: the
-- scripts found under P/share/dpl (`P/bin/dplrun experiments/features.lua ...` from any folder), the library loaded
-- through the relative rpath, no path into the source or build tree compiled into the binary, the commit recorded
-- for provenance, and the weights folder in the XDG cache (the prefix may not be writable).
local test = require "dpl.test"
local json = require "dpl.json"
-- default only: one install is enough
local suite = test.suite("install", {configurations = {"default"}})

local dplrun, sh = test.dplrun(), test.sh
local build = dplrun:match("^(.*)/[^/]*$")
local source = DPL_SOURCE_ROOT
local tmp = test.tmpdir("install")
os.execute(("mkdir -p '%s/prefix' '%s/elsewhere' '%s/cache'"):format(tmp, tmp, tmp))
suite.teardown = function() os.execute(("rm -rf '%s'"):format(tmp)) end

local prefix = tmp .. "/prefix"
-- the environment of a user's shell: none of the test's overrides of where the library and files are
local clean = ("cd '%s/elsewhere' && env -u DPL_LUA_DIR -u DPL_WEIGHTS -u DPL_SHARED XDG_CACHE_HOME='%s/cache' " ..
  "DPL_QUIET=1 DPL_NO_VULKAN=1 '%s/bin/dplrun'"):format(tmp, tmp, prefix)

suite:add("cmake --install --prefix P: P/bin/dplrun runs the installed scripts from another folder", function(t)
  local rc, out = sh(("cmake --install '%s' --prefix '%s'"):format(build, prefix))
  if rc ~= 0 and out:find("not found", 1, true) and not out:find("Install", 1, true) then t:skip("cmake not found") end
  t:eq(rc, 0, out)
  for _, f in ipairs {"bin/dplrun", "share/dpl/lua/dpl/init.lua", "share/dpl/experiments/bapps.lua",
                      "share/dpl/examples/distance.lua", "share/dpl/weights/manifest.lua", "share/dpl/data/fetch.lua",
                      "share/dpl/COMMIT"} do
    local fh = io.open(prefix .. "/" .. f, "rb")
    t:ok(fh ~= nil, "installed: " .. f)
    if fh then fh:close() end
  end
  -- a script by its path relative to P/share/dpl, run from an unrelated folder; its output there
  rc, out = sh(clean .. " experiments/features.lua --arch alexnet --layer E,M --weights random:1 " ..
    "--input x.npy --out f.safetensors --json f.json")
  t:eq(rc, 2, "no x.npy in the folder: " .. out)
  t:ok(out:find("--input x.npy: no such file", 1, true) ~= nil, out)
  local mk = io.open(tmp .. "/mk.lua", "w")
  mk:write(("require('dpl').rand({2, 3, 32, 32}, {seed = 1}):save_npy('%s/elsewhere/x.npy')"):format(tmp))
  mk:close()
  rc, out = sh(("DPL_NO_VULKAN=1 '%s' --quiet '%s/mk.lua'"):format(dplrun, tmp))
  t:eq(rc, 0, out)
  rc, out = sh(clean .. " experiments/features.lua --arch alexnet --layer E,M --weights random:1 " ..
    "--input x.npy --out f.safetensors --json f.json")
  t:eq(rc, 0, out)
  local f = io.open(tmp .. "/elsewhere/f.json")
  t:ok(f ~= nil, "the output lands in the current folder")
  if f then
    local c = json.decode(f:read("*a"))
    f:close()
    t:ok(c.code_version:find("dpl ", 1, true) and not c.code_version:match("^%(dpl"),
      "the installed commit is in the provenance: " .. c.code_version)
  end
  -- the weights folder of an installed dpl is the XDG cache
  rc, out = sh(clean .. " weights/fetch.lua --help")
  t:ok(out:find(tmp .. "/cache/dpl/weights", 1, true) ~= nil, "weights in the XDG cache: " .. out)
  rc, out = sh(clean .. " examples/distance.lua --help")
  t:ok(rc == 0 and out:find("--all-pairs", 1, true), out)
end)

-- Debug information (DWARF) names the source files where they were compiled, as in any -g build (cmake --install
-- --strip drops it); what the binaries use at run time must not: the sections without debug information are checked.
suite:add("no path into the source or build tree is compiled into the installed files", function(t)
  local bin = io.open(prefix .. "/bin/dplrun", "rb")
  if not bin then t:skip("the install case did not run") end
  bin:close()
  local p = io.popen(("ls '%s'/lib*/libdpl.so* 2>/dev/null | head -1"):format(prefix))
  local lib = p:read("*l")
  p:close()
  t:ok(lib ~= nil, "libdpl installed")
  for _, file in ipairs {prefix .. "/bin/dplrun", lib} do
    local copy = tmp .. "/stripped"
    local rc, out = sh(("objcopy --strip-debug '%s' '%s'"):format(file, copy))
    if rc ~= 0 then t:skip("objcopy (binutils) not available: " .. out) end
    local bytes = test.read(copy)
    t:ok(not bytes:find(source .. "/", 1, true) and not bytes:find(source .. "\0", 1, true),
      file .. " holds no path of the source tree " .. source)
    t:ok(not bytes:find(build, 1, true), file .. " holds no path of the build tree " .. build)
  end
  local rc, out = sh(("readelf -d '%s/bin/dplrun' 2>/dev/null | grep -i 'runpath\\|rpath'"):format(prefix))
  t:ok(out:find("$ORIGIN", 1, true) and not out:find(build, 1, true), "the rpath is relative: " .. out)
end)

return suite

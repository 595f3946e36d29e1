-- Hostile and malformed inputs for every reader (issue 18; docs/robustness.md): the files tests/ref/make_crafted.py
-- writes - overflowing sizes, storages shared by thousands of aliases, huge PNG chunks and JPEG headers,
-- decompression bombs, lenient-parser cases, escape sequences - each read in its own process whose address space is
-- capped (ulimit -v), so a reader that reserves gigabytes, crashes or echoes control bytes fails here. Also: the
-- malformed-checkpoint loop under pcall + collectgarbage that crashed LuaJIT's GC (item 2: its allocation sinking,
-- reproduced without dpl too; dplrun turns it off), views of shared storages (item 3), and valid files too large for
-- the cap, whose out-of-memory error must name the file (item 7).
local dpl = require "dpl"
local test = require "dpl.test"
local weights = require "dpl.weights"
local S = test.suite("robustness", {configurations = {"default"}})   -- default only: host-side readers, child processes

local here = arg[0]:match("^(.*)/[^/]*$") or "."
local root = here .. "/.."
local dir = os.tmpname() .. "_crafted"
os.remove(dir:gsub("_crafted$", ""))
local made = os.execute(("/usr/bin/python3 '%s/tests/ref/make_crafted.py' '%s' --big >/dev/null 2>&1"):format(root, dir))
made = made == 0 or made == true

-- the dplrun binary running this suite: the lowest negative index of `arg`
local i = -1
while arg[i - 1] do i = i - 1 end
local dplrun = arg[i]
if dplrun:sub(1, 1) ~= "/" then dplrun = (dplrun:find("/") and os.getenv("PWD") .. "/" or "") .. dplrun end

-- A child reading one input may map at most 256 MB more than a child that reads nothing (its peak virtual size:
-- this counts reservations that are never touched, like a 2 GB chunk buffer). It runs under ulimit -v 4 GiB, so a
-- reader that asks for more fails there instead of swapping the machine; the files of item 7, valid but too large,
-- run under ulimit -v 512 MB and must fail with an out-of-memory error naming the file.
local CEILING_MB = 256
local CAP_MB, SMALL_CAP_MB = 4096, 512

local function need_fixtures(t)
  t:ok(made, "tests/ref/make_crafted.py failed: is python3 installed (.ci/install-deps.sh)?")
end

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Runs `script` (Lua source; arg[1..] = args) in a dplrun on the CPU with the address space capped; returns the exit
-- status and everything it printed (stdout and stderr).
-- Under AddressSanitizer (the sanitizer build, docs/robustness.md) the address space cannot be capped: ASan reserves
-- terabytes of shadow memory. Its allocator caps single allocations instead (cap - 128 MB, or alloc_mb), and the
-- memory figures (which its shadow and quarantine inflate) are not checked.
local ASAN = os.getenv("ASAN_OPTIONS")

local function child(script, args, env, cap_mb, alloc_mb)
  local path = os.tmpname() .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write(script)
  f:close()
  local out = os.tmpname()
  local vars = "DPL_NO_VULKAN=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 DPL_QUIET=1"
  for k, v in pairs(env or {}) do vars = vars .. " " .. k .. "=" .. sh_quote(v) end
  local limit = ("ulimit -v %d"):format((cap_mb or CAP_MB) * 1024)
  if ASAN then
    limit = "true"
    vars = vars .. " ASAN_OPTIONS=" .. sh_quote(ASAN .. (":allocator_may_return_null=1:max_allocation_size_mb=%d"):format(
      alloc_mb or cap_mb and cap_mb - 128 or CEILING_MB))
  end
  local quoted = {}
  for k, a in ipairs(args or {}) do quoted[k] = sh_quote(a) end
  local cmd = ("(%s; env %s %s %s %s) >%s 2>&1; echo $?"):format(limit, vars,
    sh_quote(dplrun), sh_quote(path), table.concat(quoted, " "), out)
  local p = io.popen(cmd)
  local rc = tonumber(p:read("*a"))
  p:close()
  local g = io.open(out)
  local text = g:read("*a")
  g:close()
  os.remove(out)
  os.remove(path)
  return rc, text
end

-- reads one file with the reader named by `kind`; prints "RESULT ok" or "RESULT error <message>", then the peak RSS
local READER = [[
local ffi = require "ffi"
local dpl = require "dpl"
local C = require("dpl.ffi").C
local kind, file = arg[1], arg[2]
local ok, err = pcall(function()
  if kind == "pth" then
    local w, names = require("dpl.weights").load(file, {device = "cpu"})
    for k, n in ipairs(names) do if k <= 4 then w[n]:sum():item() end end
  elseif kind == "npy" then dpl.load_npy(file, {device = "cpu"}):sum():item()
  elseif kind == "image" then dpl.image.load(file, {device = "cpu"}):sum():item()
  elseif kind == "svhn" or kind == "stl10" then
    local labels = io.open(file .. ".labels") and file .. ".labels" or nil
    local s = kind == "svhn" and C.dpl_svhn_open(file) or C.dpl_stl10_open(file, labels)
    if s == nil then error(ffi.string(C.dpl_last_error()), 0) end
    C.dpl_image_set_free(s)
  elseif kind ~= "none" then error("unknown reader " .. kind) end
end)
io.stdout:write(ok and "RESULT ok\n" or ("RESULT error " .. tostring(err) .. "\n"))
for l in io.lines("/proc/self/status") do
  local key, kb = l:match("^(Vm%a+):%s*(%d+)")
  if key == "VmPeak" or key == "VmHWM" then print(key .. " " .. math.floor(tonumber(kb) / 1024)) end
end
]]

local function index()
  local rows = {}
  for line in io.lines(dir .. "/index.tsv") do
    local file, reader, expect, env = line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\t]+)$")
    local vars = {}
    if env ~= "-" then for k, v in env:gmatch("([%w_]+)=([^,]*)") do vars[k] = v end end
    rows[#rows + 1] = {file = dir .. "/" .. file, name = file, reader = reader, expect = expect, env = vars}
  end
  return rows
end

S:add("every crafted input: refused with a one-line message naming the file, or loaded, within 256 MB", function(t)
  need_fixtures(t)
  local rc, out = child(READER, {"none", "-"})
  t:eq(rc, 0, out)
  local base = tonumber(out:match("VmPeak (%d+)"))
  local n = 0
  for _, row in ipairs(index()) do
    -- valid files too large for the small cap: refused with an out-of-memory error naming the file ("oom": or loaded,
    -- when the allocation that fails depends on the machine)
    local too_large = row.expect == "error:out of memory" or row.expect == "oom"
    -- (under ASan the 176 MB files of "oom" are refused at their first buffer: loading them instrumented takes long)
    rc, out = child(READER, {row.reader, row.file}, row.env, too_large and SMALL_CAP_MB or CAP_MB,
      row.expect == "oom" and 128 or nil)
    local what = row.name .. " (" .. row.reader .. ")"
    t:eq(rc, 0, what .. ": the reading process died: " .. out)
    local result = out:match("RESULT ([^\n]*)")
    t:ok(result, what .. ": no result line in: " .. out)
    local peak, rss = tonumber(out:match("VmPeak (%d+)")), tonumber(out:match("VmHWM (%d+)"))
    if not ASAN and row.expect ~= "oom" then
      t:ok(rss and rss < CEILING_MB, ("%s: peak RSS %s MB (ceiling %d MB)"):format(what, tostring(rss), CEILING_MB))
      t:ok(too_large or peak - base < CEILING_MB, ("%s: mapped %d MB more than a process that reads nothing (ceiling " ..
        "%d MB)"):format(what, peak - base, CEILING_MB))
    end
    local kind, text = row.expect:match("^(%a+):?(.*)$")
    if kind == "oom" then
      kind, text = result == "ok" and "ok" or "error", "out of memory"
    end
    if kind == "ok" or kind == "warn" then
      t:eq(result, "ok", what)
      if kind == "warn" then
        t:ok(out:find(text, 1, true) and out:find(row.file, 1, true), what .. ": no warning naming the file: " .. out)
      end
    else
      local msg = result:match("^error (.*)$")
      t:ok(msg, what .. ": expected an error with '" .. text .. "', it loaded")
      t:ok(msg:find(text, 1, true), ("%s: expected '%s' in: %s"):format(what, text, msg))
      t:ok(msg:find(row.file, 1, true), what .. ": the message does not name the file: " .. msg)
      t:ok(not msg:find("[%z\1-\31\127]"), what .. ": control bytes in the message: " .. msg)
    end
    n = n + 1
  end
  t:ok(n >= 60, "inputs checked: " .. n)
end)

S:add("item 3: 4096 aliases of one 4 MB storage load once, as views (zip and legacy)", function(t)
  need_fixtures(t)
  for _, name in ipairs {"pth_aliases.pth", "pth_aliases_legacy.pth"} do
    local before = dpl.stat("bytes", "cpu")
    local w, names = weights.load(dir .. "/" .. name, {device = "cpu"})
    t:eq(#names, 4096)
    local grew = dpl.stat("bytes", "cpu") - before
    t:ok(grew <= 5 * 2 ^ 20, ("%s: %d bytes of tensors for one 4 MB storage"):format(name, grew))
    t:ok(w.t0:same_storage(w.t4095), "aliases share their storage")
    t:eq(w.t17:size(1), 1024)
    t:eq(w.t17:narrow(1, 3, 1):narrow(2, 5, 1):item(), w.t4000:narrow(1, 3, 1):narrow(2, 5, 1):item())
  end
end)

S:add("item 3: views of one storage keep their offsets and strides (transposed, sliced)", function(t)
  need_fixtures(t)
  local w = weights.load(dir .. "/pth_views.pth", {device = "cpu"})
  local full = w.full:totable()
  -- stored values: ((i * 37) % 101 - 50) for i = 0..11, as make_crafted.py's floats()
  for r = 1, 3 do
    for c = 1, 4 do t:eq(full[r][c], ((((r - 1) * 4 + c - 1) * 37) % 101) - 50) end
  end
  t:close(w.t, w.full:t())
  t:close(w.slice, w.full:narrow(1, 2, 2):narrow(2, 2, 2))
  t:ok(w.full:same_storage(w.t) and w.full:same_storage(w.slice))
end)

-- issue 18 item 2: LuaJIT's allocation sinking rebuilds a sunk ffi.new("int64_t[?]", n) with size -1 on a side exit;
-- the FFI call that fills it then writes over the GC heap. dplrun turns sinking off (runtime/host/dplrun.c).
local LOOP = [[
local weights = require "dpl.weights"
local files = {}
for _ = 1, 60 do files[#files + 1] = arg[1] .. "/malformed.pth" end    -- the loop compiles on the error path
for _ = 1, 30 do files[#files + 1] = arg[1] .. "/no_tensors.pth" end   -- a side trace sinks the shape buffer
for _ = 1, 30 do files[#files + 1] = arg[1] .. "/tensors.pth" end      -- its side exit rebuilds it
local refused = 0
for round = 1, 3 do
  for _, f in ipairs(files) do
    local ok, err = pcall(weights.info, f)
    if not ok then refused = refused + 1; assert(tostring(err):find(f, 1, true), err) end
    collectgarbage()
  end
end
print("LOOP " .. refused)
]]

-- the same without dpl: only LuaJIT's FFI and libc
local PURE = [[
local ffi = require "ffi"
ffi.cdef "char *getenv(const char *); size_t strlen(const char *); void *memset(void *, int, size_t);"
local C = ffi.C
local function info(name)
  local f = C.getenv(name)                                  -- NULL: the "malformed file"
  if f == nil then error("no " .. name, 2) end
  local shape = ffi.new("int64_t[?]", 8)
  local out = {}
  for i = 0, tonumber(C.strlen(f)) - 1 do                   -- EMPTY: no entries, FULL: two
    if ffi.sizeof(shape) ~= 64 then print("SIZE " .. tostring(ffi.sizeof(shape))) os.exit(7) end
    C.memset(shape, 0, 64)
    out[#out + 1] = {tonumber(shape[0])}
  end
  return out
end
local names = {}
for _ = 1, 60 do names[#names + 1] = "DPL_TEST_UNSET_VARIABLE" end
for _ = 1, 30 do names[#names + 1] = "EMPTY" end
for _ = 1, 30 do names[#names + 1] = "FULL" end
for round = 1, 3 do for _, n in ipairs(names) do pcall(info, n); collectgarbage() end end
print("PURE ok")
]]

S:add("item 2: dpl.weights.info in pcall over malformed and valid checkpoints, collectgarbage between", function(t)
  need_fixtures(t)
  local rc, out = child(LOOP, {dir .. "/loop"})
  t:eq(rc, 0, "the loop crashed: " .. out)
  t:eq(out:match("LOOP (%d+)"), "180", out)
  rc, out = child(PURE, {}, {EMPTY = "", FULL = "xx"})
  t:eq(rc, 0, "LuaJIT alone: " .. out)
  t:ok(out:find("PURE ok", 1, true), out)
end)

return S

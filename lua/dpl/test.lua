-- dpl.test: a small named-test runner with assertions that print expected and actual values.
--
--   local test = require "dpl.test"
--   local S = test.suite("tensor views")
--   S:add("narrow keeps strides", function(t) t:eq(x:narrow(1, 2, 3):size(1), 3) end)
--   return S
--
-- tests/run.lua loads suites, runs them and prints one line per test and a closing count line. After every test the
-- runner collects garbage and waits for every Vulkan device the process opened (so that one test's queued work and
-- memory never land in the next one's time or failure), unless a suite sets its own after_each.
-- A suite's options: test.suite("pth", {configurations = {"default"}}) runs it only in the listed ctest
-- configurations (default, fallback, novulkan; all three when not given); tests/CMakeLists.txt reads the list from
-- the suite, and tests/run.lua skips the suite in the other configurations when run by hand. {timeout = seconds}
-- gives a suite more than ctest's 900 s (also read by tests/CMakeLists.txt).
--
-- Reference files: tests that need the reference data of ../shared (Set5, BAPPS patches, LPIPS weights, ...; the
-- folder is $DPL_SHARED, which ctest sets to <source>/../shared) declare it, and without it they are SKIPPED, never
-- passed or failed: {shared = {"data/Set5", ...}} in test.suite for a suite that needs the files throughout, or
-- test.shared(t, "data/...") inside a test (it returns the full path). tests/run.lua then exits with status 77, which
-- ctest reports as "Skipped" (SKIP_RETURN_CODE), with the missing file named on the test's "skip" line. README
-- ("Tests") lists which suites need which files.
-- Stand-in data: a suite whose assertions hold on any images (mechanics, file shapes, parity with a reference computed
-- at test time on the same files) declares {shared = {...}, standin = true}. When one of its declared files is missing,
-- the suite runs on generated stand-ins instead (tests/ref/standin_data.py: synthetic images in ../shared's layout,
-- made once per cache folder and reused), shared_dir() names their folder while the suite loads and runs, and the
-- suite prints one "using generated stand-in data" line. Files the generator does not make (weights) stay missing
-- there, so test.shared(t, ...) still skips the cases that need real files (each on its skip line, counted on a closing
-- "note" line; they do not make the suite exit 77: it ran, on stand-ins). $DPL_TEST_STANDIN=force uses the stand-ins
-- even where ../shared is complete (to check them on a machine that has it); =off never uses them.
local M = {}

local Suite = {}
Suite.__index = Suite

M.CONFIGURATIONS = {"default", "fallback", "novulkan"}

function M.suite(name, opts)
  opts = opts or {}
  for _, c in ipairs(opts.configurations or {}) do
    local known = false
    for _, k in ipairs(M.CONFIGURATIONS) do known = known or k == c end
    if not known then
      error(("test.suite %s: unknown configuration '%s' (%s)"):format(name, c, table.concat(M.CONFIGURATIONS, ", ")), 2)
    end
  end
  if opts.standin and not opts.shared then
    error(("test.suite %s: standin = true needs the shared list"):format(name), 2)
  end
  local suite = setmetatable({name = name, tests = {}, configurations = opts.configurations, timeout = opts.timeout,
                              shared = opts.shared}, Suite)
  local mode = os.getenv("DPL_TEST_STANDIN") or ""
  if opts.standin and mode ~= "off" then
    suite.real_missing = suite:first_missing(M.real_shared_dir())
    if mode == "force" then suite.real_missing = suite.real_missing or "($DPL_TEST_STANDIN=force)" end
    suite.standin = suite.real_missing ~= nil
  end
  M.active = suite   -- shared_dir() while the suite's file loads (tests/run.lua runs one suite file at a time)
  return suite
end

-- The reference data folder: $DPL_SHARED, else ../shared next to the source tree.
function M.real_shared_dir()
  local env = os.getenv("DPL_SHARED")
  if env and env ~= "" then return env end
  return (DPL_SOURCE_ROOT or ".") .. "/../shared"
end

-- The folder the running suite reads its reference files from: the real one, or the generated stand-ins of a suite that
-- accepts them and misses real files (made on the first call; M.standin_error says why when that failed).
function M.shared_dir()
  local s = M.active
  if s and s.standin then return M.standin_dir() end
  return M.real_shared_dir()
end

local function present(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

-- The generated stand-in data (tests/ref/standin_data.py): one folder per version of the generator under
-- $DPL_CACHE_DIR (ctest: <build>/test-cache) or /tmp, made on first use and then reused. Concurrency-safe without a
-- lock: each process writes a private folder and renames it into place; a process that loses the race (the folder is
-- already there) drops its copy. Making a new version removes the older versions' folders. Returns the folder (it
-- exists unless making it failed: M.standin_error).
local standin_path
function M.standin_dir()
  if standin_path then return standin_path end
  local root = (DPL_SOURCE_ROOT or ((arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or ".") .. "/.."))
  local script = root .. "/tests/ref/standin_data.py"
  local p = io.popen(("cksum < '%s' 2>/dev/null"):format(script))
  local sum = p:read("*l") or ""
  p:close()
  local version = sum:match("^(%d+)")
  local cache = os.getenv("DPL_CACHE_DIR")
  if not cache or cache == "" then cache = "/tmp/dpl-test-cache-" .. (os.getenv("USER") or "user") end
  standin_path = ("%s/standin-%s"):format(cache, version or "unknown")
  if not version then
    M.standin_error = "cannot read " .. script
  elseif not present(standin_path .. "/STANDIN.txt") then
    local rc, out = M.run_command(("mkdir -p '%s' && tmp='%s.part'$$ && { /usr/bin/python3 '%s' \"$tmp\" && " ..
      "mv -T \"$tmp\" '%s' 2>/dev/null; rm -rf \"$tmp\"; test -f '%s/STANDIN.txt'; }"):format(cache,
      standin_path, script, standin_path, standin_path))
    if rc ~= 0 then M.standin_error = ("tests/ref/standin_data.py failed: %s"):format(out:sub(-600))
    else
      -- a new generator version: the folders of the older ones go (about 7 MB each; never a .part being written)
      M.run_command(("find '%s' -mindepth 1 -maxdepth 1 -name 'standin-*' ! -name 'standin-%s' ! -name '*.part*' " ..
        "-exec rm -rf {} + 2>/dev/null"):format(cache, version))
    end
  end
  return standin_path
end

-- The first of the suite's declared reference files missing in folder `dir`, or nil.
function Suite:first_missing(dir)
  for _, rel in ipairs(self.shared or {}) do
    if not present(dir .. "/" .. rel) then return rel end
  end
  return nil
end

-- The first of the suite's declared reference files that is missing, or nil.
function Suite:missing_shared()
  return self:first_missing(M.shared_dir())
end

-- The full path of a reference file (relative to ../shared); ends the test as skipped (missing reference data) when
-- the file is not there.
function M.shared(t, rel)
  local path = M.shared_dir() .. "/" .. rel
  if not present(path) then
    if M.active and M.active.standin then   -- a case for real files only: skipped, the suite's run on stand-ins goes on
      error({msg = ("needs %s of the real reference data (this suite runs on generated stand-ins: %s is missing in %s)")
        :format(rel, M.active.real_missing, M.real_shared_dir()), skip = true, real_only = true}, 2)
    end
    error({msg = ("needs %s of the reference data, not in %s (set DPL_SHARED; README, Tests)"):format(rel,
      M.shared_dir()), skip = true, data = true}, 2)
  end
  return path
end

-- Ends a test as skipped when its suite runs on generated stand-ins: for a check that only means something on the real
-- files (a property of the published data, e.g. the shipped *_LR.png being MATLAB's imresize of *_HR.png).
function M.need_real(t, what)
  local s = M.active
  if s and s.standin then
    error({msg = ("needs the real reference data (%s); this suite runs on generated stand-ins: %s is missing in %s")
      :format(what, s.real_missing, M.real_shared_dir()), skip = true, real_only = true}, 2)
  end
end

-- Whether the suite runs in the configuration ctest gives in $DPL_TEST_CONFIG (always when it is unset).
function Suite:runs_in(config)
  config = config or os.getenv("DPL_TEST_CONFIG")
  if not config or config == "" or not self.configurations then return true end
  for _, c in ipairs(self.configurations) do if c == config then return true end end
  return false
end

-- The default after_each: garbage collected, and every Vulkan device this process opened drained.
function M.drain()
  collectgarbage()
  local T = require "dpl.tensor"
  for _, d in ipairs(T.open_devices()) do
    if require("dpl").C.dpl_device_synchronize(d) ~= 0 then require("dpl.ffi").raise(1) end
  end
end

function Suite:add(name, fn)
  self.tests[#self.tests + 1] = {name = name, fn = fn}
end

-- ---- assertions: each raises an error table {msg = ...} that the runner prints --------------------------------------
local Check = {}
Check.__index = Check

local function fail(msg, level)
  error({msg = msg}, (level or 1) + 2)
end

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

function Check:ok(cond, msg)
  if not cond then fail(msg or "expected a true value") end
end

function Check:eq(actual, expected, msg)
  if actual ~= expected then
    fail(("%sexpected %s, got %s"):format(msg and msg .. ": " or "", show(expected), show(actual)))
  end
end

function Check:near(actual, expected, tol, msg)
  tol = tol or 1e-6
  if type(actual) ~= "number" or math.abs(actual - expected) > tol * math.max(1, math.abs(expected)) or actual ~= actual then
    fail(("%sexpected %.9g (tolerance %g), got %s"):format(msg and msg .. ": " or "", expected, tol, show(actual)))
  end
end

-- shape equality: t:shape(x, {2, 3})
function Check:shape(tensor, dims, msg)
  local s = tensor:size()
  local same = #s == #dims
  for i = 1, #dims do if s[i] ~= dims[i] then same = false end end
  if not same then
    fail(("%sexpected shape %s, got %s"):format(msg and msg .. ": " or "", table.concat(dims, "x"), tostring(s)))
  end
end

-- Elementwise closeness of two tensors (any devices) or a tensor and a flat/nested table:
-- |a - b| <= atol + rtol * |b| everywhere; NaN matches NaN.
function Check:close(a, b, opts, msg)
  opts = opts or {}
  local atol, rtol = opts.atol or 1e-5, opts.rtol or 1e-5
  local function flat(x)
    if type(x) == "table" then
      local out = {}
      local function walk(v) if type(v) == "table" then for i = 1, #v do walk(v[i]) end else out[#out + 1] = v end end
      walk(x)
      return out, nil
    end
    return x:tolist(), x:size()
  end
  local fa, sa = flat(a)
  local fb, sb = flat(b)
  if sa and sb and not (sa == sb) then
    fail(("%sshape mismatch: %s vs %s"):format(msg and msg .. ": " or "", tostring(sa), tostring(sb)))
  end
  if #fa ~= #fb then fail(("%s%d values vs %d values"):format(msg and msg .. ": " or "", #fa, #fb)) end
  local worst, at = -1, nil
  for i = 1, #fa do
    local x, y = fa[i], fb[i]
    local bad
    if x ~= x or y ~= y then bad = not (x ~= x and y ~= y)
    elseif x == y then bad = false
    else bad = math.abs(x - y) > atol + rtol * math.abs(y) end
    if bad then
      local err = (x ~= x or y ~= y) and math.huge or math.abs(x - y)
      if err > worst then worst, at = err, i end
    end
  end
  if at then
    fail(("%svalues differ at flat index %d: got %.9g, expected %.9g (|diff| %.3g, atol %g, rtol %g)"):format(
      msg and msg .. ": " or "", at - 1, fa[at], fb[at], worst, atol, rtol))
  end
end

-- ends the test early; it counts as passed and the runner prints the reason (e.g. "no Vulkan device"). With
-- opts.unavailable (what the test needs cannot exist here: e.g. a SLURM cluster that cannot start without root) it
-- counts as missing reference data does: a suite with nothing failed then exits 77, which ctest reports as skipped.
function Check:skip(reason, opts)
  error({msg = reason or "skipped", skip = true, data = opts and opts.unavailable or nil}, 2)
end

-- fn must raise an error whose message contains `pattern` (plain text)
function Check:raises(fn, pattern, msg)
  local ok, err = pcall(fn)
  if ok then fail((msg and msg .. ": " or "") .. "expected an error" .. (pattern and (" mentioning '" .. pattern .. "'") or "")) end
  local text = type(err) == "table" and err.msg or tostring(err)
  if pattern and not text:find(pattern, 1, true) then
    fail(("%sexpected an error mentioning '%s', got: %s"):format(msg and msg .. ": " or "", pattern, text))
  end
  return text
end

-- ---- running ------------------------------------------------------------------------------------------------------
-- Runs the suite's tests whose names match `filter` (a Lua pattern, optional); returns passed, failed and the number
-- skipped for missing reference data. The suite's after_each function (default M.drain) runs after every test,
-- passed or not; teardown once at the end. A suite missing one of its declared reference files runs nothing.
function Suite:run(filter, out)
  out = out or io.stdout
  local passed, failed, data_skips = 0, 0, 0
  M.active = self
  if self.standin then
    local dir = M.standin_dir()
    if M.standin_error then
      local why = M.standin_error
      if self.teardown then pcall(self.teardown) end
      if why:find("No module named", 1, true) then   -- numpy or Pillow missing: nothing to run on
        out:write(("skip   %s: every test (%s of the reference data is missing and the stand-ins cannot be made: %s)\n")
          :format(self.name, self.real_missing, why))
        return 0, 0, 1
      end
      out:write(("FAIL   %s: %s\n"):format(self.name, why))
      return 0, 1, 0
    end
    out:write(("note   %s: using generated stand-in data: %s (%s is missing in %s; tests/ref/standin_data.py)\n")
      :format(self.name, dir, self.real_missing, M.real_shared_dir()))
  end
  local missing, real_only = self:missing_shared(), 0
  if missing then
    out:write(("skip   %s: every test (needs %s of the reference data, not in %s; set DPL_SHARED; README, Tests)\n")
      :format(self.name, missing, M.shared_dir()))
    if self.teardown then pcall(self.teardown) end
    return 0, 0, 1
  end
  for _, case in ipairs(self.tests) do
    if not filter or case.name:find(filter) then
      local check = setmetatable({}, Check)
      local t0 = os.clock()
      local ok, err = xpcall(function() case.fn(check) end, function(e)
        if type(e) == "table" and e.msg then return e end
        return {msg = tostring(e), trace = debug.traceback("", 2)}
      end)
      do   -- draining the Vulkan queues (M.drain, unless the suite has its own); its error fails the test too
        local ok2, e2 = pcall(self.after_each or M.drain)
        if ok and not ok2 then ok, err = false, {msg = tostring(e2)} end
      end
      local ms = (os.clock() - t0) * 1000
      if ok then
        passed = passed + 1
        out:write(("ok     %s: %s (%.0f ms)\n"):format(self.name, case.name, ms))
      elseif err.skip then
        passed = passed + 1
        if err.data then data_skips = data_skips + 1 end
        if err.real_only then real_only = real_only + 1 end
        out:write(("skip   %s: %s (%s)\n"):format(self.name, case.name, err.msg))
      else
        failed = failed + 1
        out:write(("FAIL   %s: %s\n       %s\n"):format(self.name, case.name, err.msg))
        if err.trace and os.getenv("DPL_TEST_TRACE") then out:write(err.trace, "\n") end
      end
      out:flush()
    end
  end
  if real_only > 0 then
    out:write(("note   %s: %d test(s) skipped: they need real reference files the stand-ins do not replace\n")
      :format(self.name, real_only))
  end
  if self.teardown then pcall(self.teardown) end
  return passed, failed, data_skips
end

-- ---- child processes: suites that run scripts as a user does ------------------------------------------------------
-- A new empty temporary folder (its name ends in _tag); the suite's teardown should remove it.
function M.tmpdir(tag)
  local dir = os.tmpname() .. "_" .. tag
  os.execute(("rm -f '%s'; mkdir -p '%s'"):format(dir, dir))
  return dir
end

-- User errors of a script (lua/dpl/cli.lua): for each case {arguments, text}, run(arguments) must exit with status 2
-- and print exactly one line containing text, and no stack trace.
function M.user_errors(t, run, cases)
  for _, c in ipairs(cases) do
    local rc, out = run(c[1])
    t:eq(rc, 2, c[1] .. ": " .. out)
    t:ok(out:find(c[2], 1, true) ~= nil, ("%s: expected '%s' in: %s"):format(c[1], c[2], out))
    t:ok(not out:find("traceback", 1, true), "no stack trace: " .. out)
    local lines = 0
    for _ in out:gmatch("[^\n]+") do lines = lines + 1 end
    t:eq(lines, 1, "one line: " .. out)
  end
end

-- ---- devices ------------------------------------------------------------------------------------------------------
-- The devices a suite compares: {"cpu", "vulkan"}, or {"cpu"} without a Vulkan device.
function M.devices()
  return require("dpl").vulkan_available() and {"cpu", "vulkan"} or {"cpu"}
end

-- Runs fn(t, device) on every device of M.devices(), naming the device in a failure.
function M.each_device(t, fn)
  for _, dev in ipairs(M.devices()) do
    local ok, err = pcall(fn, t, dev)
    if not ok then
      if type(err) == "table" and err.msg then err.msg = "[" .. dev .. "] " .. err.msg; error(err, 0) end
      error("[" .. dev .. "] " .. tostring(err), 0)
    end
  end
end

local function vulkan_missing()
  local dpl = require "dpl"
  if dpl.vulkan_available() then return nil end
  return require("ffi").string(dpl.C.dpl_vulkan_unavailable_reason())
end

-- Ends a test that needs Vulkan as skipped when there is no device, saying why.
function M.need_vulkan(t)
  local why = vulkan_missing()
  if why then t:skip("no Vulkan device: " .. why) end
end

-- For a test that compares Vulkan with the CPU: without a device, the CPU checks ran and the test ends as skipped.
function M.no_vulkan_note(t)
  local why = vulkan_missing()
  if why then t:skip("no Vulkan device (" .. why .. "): CPU checks only") end
end

-- ---- environment and references ----------------------------------------------------------------------------------
-- Runs fn() with the environment variable `name` set to `value` (some runtime switches, e.g. DPL_CPU_WINOGRAD, are read
-- on every call), then restores the previous value, also when fn fails.
function M.with_env(name, value, fn)
  local ffi = require "ffi"
  pcall(ffi.cdef, "int setenv(const char *name, const char *value, int overwrite);")
  pcall(ffi.cdef, "int unsetenv(const char *name);")
  pcall(ffi.cdef, "char *getenv(const char *name);")
  local old = ffi.C.getenv(name)
  old = old ~= nil and ffi.string(old) or nil
  ffi.C.setenv(name, value, 1)
  local ok, err = pcall(fn)
  if old then ffi.C.setenv(name, old, 1) else ffi.C.unsetenv(name) end
  if not ok then error(err, 0) end
end

-- References made at test time by /usr/bin/python3 tests/ref/<script> (Debian's python3-torch) in a temporary folder:
-- {have_torch, made (the script succeeded), dir, cases (its cases.lua, or {}), npy(case, name, device): the array
-- <dir>/<case.id>_<name>.npy, ref(name, device): the array <dir>/<name>.npy, need(t): ends test t as skipped without
-- torch and fails it with the end of the script's log when the script failed, remove(): delete the folder and the log
-- (for the suite's teardown)}. opts.runs: the script's argument lists after the folder, run in turn (default one run
-- with none); the output of every run goes to <dir>.log.
function M.torch_refs(script, tag, opts)
  local dpl = require "dpl"
  local root = (arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or ".") .. "/.."
  local r = {dir = os.tmpname() .. "_" .. tag, cases = {}}
  local log = r.dir .. ".log"
  local status = os.execute("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1")
  r.have_torch = status == 0 or status == true
  if r.have_torch then
    r.made = true
    for _, extra in ipairs(opts and opts.runs or {""}) do
      status = os.execute(("/usr/bin/python3 %s/tests/ref/%s %s %s >>%s 2>&1"):format(root, script, r.dir, extra, log))
      if not (status == 0 or status == true) then r.made = false; break end
    end
  end
  local chunk = loadfile(r.dir .. "/cases.lua")
  if chunk then r.cases = chunk() end
  function r.npy(c, name, device) return dpl.load_npy(r.dir .. "/" .. c.id .. "_" .. name .. ".npy", {device = device}) end
  function r.ref(name, device) return dpl.load_npy(r.dir .. "/" .. name .. ".npy", {device = device}) end
  function r.need(t)
    if not r.have_torch then t:skip("/usr/bin/python3 cannot import torch (install python3-torch)") end
    if not r.made then
      local f = io.open(log)
      local text = f and f:read("*a") or ""
      if f then f:close() end
      t:ok(false, ("tests/ref/%s failed: %s"):format(script, text:sub(-800)))
    end
  end
  function r.remove() os.execute(("rm -rf '%s' '%s'"):format(r.dir, log)) end
  return r
end

-- ---- training parity ------------------------------------------------------------------------------------------------
-- Weights after a few optimizer steps against an exact (float64) reference run: each parameter tensor of `order` must
-- lie within opts.allowed (a fraction) of the exact update, ||w - w64|| <= allowed ||w64 - w0|| (Adam's first steps
-- are nearly lr * sign(gradient), so elementwise tolerances would only restate lr); a parameter whose exact gradient is
-- zero (opts.zero_gradient(name)) moves by rounding noise alone and must stay within opts.zero_atol of the exact run.
-- opts: got(name), exact(name), exact32(name) (PyTorch's float32 run, for the message), init (name -> tensor),
-- skip(name) (names left out), label. Returns the worst fraction, PyTorch's float32 fraction there and the name.
function M.update_parity(t, order, opts)
  local function norm(x) return math.sqrt(x:square():sum():item()) end
  local worst, worst32, worst_name = 0, 0, ""
  for _, name in ipairs(order) do
    if not (opts.skip and opts.skip(name)) then
      local got, want = opts.got(name), opts.exact(name)
      if opts.zero_gradient and opts.zero_gradient(name) then
        local d = got:sub(want):abs():max():item()
        t:ok(d <= opts.zero_atol, ("%s %s: %.3g from the exact run (allowed %.3g)"):format(opts.label, name, d,
          opts.zero_atol))
      else
        local step = norm(want - opts.init[name])
        local r, r32 = norm(got - want) / step, norm(opts.exact32(name) - want) / step
        t:ok(r <= opts.allowed, ("%s %s: %.3f of the update from the exact run (allowed %.2f; PyTorch float32 %.3f)")
          :format(opts.label, name, r, opts.allowed, r32))
        if r > worst then worst, worst32, worst_name = r, r32, name end
      end
    end
  end
  return worst, worst32, worst_name
end

-- ---- finite differences -------------------------------------------------------------------------------------------
-- The central-difference gradient of the number loss(args[1], ..., args[n]) with respect to args[k] (a CPU tensor), as
-- a flat row-major list: each element of args[k] in turn is moved by +eps and -eps (a float32 copy of the tensor is
-- passed), the other arguments stay as they are.
function M.numeric_grad(loss, args, k, eps)
  local ffi, dpl = require "ffi", require "dpl"
  local n = args.n or #args
  local vals, shape = args[k]:tolist(), args[k]:size()
  local buf = ffi.new("float[?]", #vals)
  for i = 1, #vals do buf[i - 1] = vals[i] end
  local a = {}
  for j = 1, n do a[j] = args[j] end
  local function at(i, v)
    buf[i - 1] = v
    a[k] = dpl.from_pointer(buf, shape, {device = "cpu"})
    return loss(unpack(a, 1, n))
  end
  local g = {}
  for i = 1, #vals do
    local lp, lm = at(i, vals[i] + eps), at(i, vals[i] - eps)
    buf[i - 1] = vals[i]
    g[i] = (lp - lm) / (2 * eps)
  end
  return g
end

-- ---- op case tables (as ggml's test-backend-ops) ------------------------------------------------------------------
-- Adds to suite S one test per case, each running the op on the CPU and on Vulkan (when there is a device) and
-- comparing both with PyTorch in float64 (tests/ref/ops_ref.py, run once for the whole table) and Vulkan with the CPU:
-- the output and the gradient of sum(y * g) with respect to every input that takes one (g: a fixed random tensor).
-- A case:
--   {id = "add_broadcast",                          -- unique, a file-name-safe word
--    fn = function(a, b) return a + b end,           -- the dpl side
--    torch = "x0 + x1",                              -- the PyTorch side over x0, x1, ... (torch, F, math in scope)
--    inputs = {{3, 1, 5}, {4, 5}},                   -- shapes, or {shape, lo = , hi = } (uniform, default -2..2)
--    grad = true,                                     -- which inputs take a gradient: true, false or a list
--    tol = {atol = 1e-5, rtol = 1e-4},               -- vs PyTorch (default 1e-5, 1e-4)
--    vulkan_tol = {...}}                             -- Vulkan vs CPU (default: tol)
-- Without python3-torch the PyTorch comparisons are skipped and the Vulkan-vs-CPU ones still run.
function M.op_cases(S, cases, opts)
  opts = opts or {}
  local dpl, json = require "dpl", require "dpl.json"
  local dir = os.tmpname() .. "_" .. (opts.tag or "ops")
  local prepared, refs_ok, refs_note
  local seed = opts.seed or 4242
  local seen = {}
  for _, c in ipairs(cases) do
    assert(type(c.id) == "string" and c.id:match("^[%w_]+$") and not seen[c.id], "op_cases: bad or repeated id " ..
      tostring(c.id))
    seen[c.id] = true
  end

  local function grad_mask(c, n)
    local m = {}
    for k = 1, n do
      if type(c.grad) == "table" then m[k] = c.grad[k] and true or false else m[k] = c.grad ~= false end
    end
    return m
  end

  -- runs the case on a device: output and input gradients (nil where none), or nil and the error
  local function run(c, device)
    local xs = {}
    for k, x in ipairs(c._inputs) do
      xs[k] = x:to(device)
      if c._grad[k] then xs[k]:requires_grad_() end
    end
    local ok, y = pcall(c.fn, unpack(xs, 1, #xs))
    if not ok then return nil, tostring(y) end
    local grads = {}
    if c._g then
      local ok2, err = pcall(function() y:backward(c._g:to(device)) end)
      if not ok2 then return nil, "backward: " .. tostring(err) end
      for k, x in ipairs(xs) do grads[k] = c._grad[k] and x.grad or nil end
    end
    return y, grads
  end

  -- inputs, the CPU output's shape for g, cases.json, and one run of the reference script
  local function prepare()
    if prepared then return end
    prepared = true
    os.execute(("rm -rf '%s'; mkdir -p '%s'"):format(dir, dir))
    local list = {}
    for _, c in ipairs(cases) do
      c._inputs = {}
      for k, spec in ipairs(c.inputs or {}) do
        local shape = spec.shape or spec
        seed = seed + 1
        local x = dpl.uniform(spec.lo or -2, spec.hi or 2, shape, {seed = seed, device = "cpu"})
        c._inputs[k] = x
        x:save_npy(("%s/%s_x%d.npy"):format(dir, c.id, k - 1))
      end
      c._grad = grad_mask(c, #c._inputs)
      local any = false
      for k = 1, #c._inputs do any = any or c._grad[k] end
      local ok, y = pcall(function()
        return dpl.no_grad(c.fn, unpack(c._inputs, 1, #c._inputs))
      end)
      if ok and any then
        seed = seed + 1
        c._g = dpl.randn(y:size(), {seed = seed, device = "cpu"})
        c._g:save_npy(("%s/%s_g.npy"):format(dir, c.id))
      end
      list[#list + 1] = {id = c.id, torch = c.torch, inputs = #c._inputs, grad = json.array(c._grad), g = c._g ~= nil}
    end
    local f = assert(io.open(dir .. "/cases.json", "w"))
    f:write(json.encode(json.array(list)))
    f:close()
    local has = os.execute("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1")
    if not (has == 0 or has == true) then refs_note = "python3-torch is not installed"; return end
    local root = (arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or ".") .. "/.."
    local rc = os.execute(("/usr/bin/python3 %s/tests/ref/ops_ref.py '%s'"):format(root, dir))
    refs_ok = rc == 0 or rc == true
    if not refs_ok then refs_note = "tests/ref/ops_ref.py failed" end
  end

  local function reference(c, name)
    local path = ("%s/%s_%s.npy"):format(dir, c.id, name)
    local f = io.open(path, "rb")
    if not f then return nil end
    f:close()
    return dpl.load_npy(path, {device = "cpu"})
  end

  local function check(t, c, got, want, tol, what)
    if want == nil then t:ok(got == nil, what .. ": a gradient where the reference has none") return end
    t:ok(got ~= nil, what .. ": missing")
    -- a 0-d result is compared as one value (the .npy reader gives 0-d arrays one dim)
    if got:dim() == 0 then got = got:reshape(1) end
    if want:dim() == 0 then want = want:reshape(1) end
    t:close(got:cpu(), want:cpu(), tol, what)
  end

  for _, c in ipairs(cases) do
    S:add(c.id, function(t)
      prepare()
      local tol = c.tol or {atol = 1e-5, rtol = 1e-4}
      local y, grads = run(c, "cpu")
      t:ok(y ~= nil, "cpu: " .. tostring(grads))
      if refs_ok then
        local err = io.open(("%s/%s_error.txt"):format(dir, c.id))
        if err then
          local msg = err:read("*a")
          err:close()
          t:ok(false, ("PyTorch could not evaluate '%s': %s"):format(c.torch, msg))
        end
        check(t, c, y, reference(c, "y"), tol, "cpu output vs PyTorch")
        for k = 1, #c._inputs do
          if c._grad[k] then check(t, c, grads[k], reference(c, "gx" .. (k - 1)), tol, "cpu grad " .. k .. " vs PyTorch") end
        end
      end
      if dpl.vulkan_available() then
        local vy, vgrads = run(c, "vulkan")
        t:ok(vy ~= nil, "vulkan: " .. tostring(vgrads))
        local vt = c.vulkan_tol or tol
        check(t, c, vy, y, vt, "vulkan output vs cpu")
        for k = 1, #c._inputs do
          if c._grad[k] then check(t, c, vgrads[k], grads[k], vt, "vulkan grad " .. k .. " vs cpu") end
        end
      end
      if not refs_ok then t:skip("CPU" .. (dpl.vulkan_available() and " and Vulkan" or "") .. " checked; no PyTorch " ..
        "comparison: " .. tostring(refs_note)) end
    end)
  end
  local teardown = S.teardown
  S.teardown = function()
    if teardown then teardown() end
    os.execute(("rm -rf '%s'"):format(dir))
  end
end


-- ---- helpers of end-to-end suites (scripts run in a child dplrun) --------------------------------------------------
-- the whole content of a file, or nil
M.read_file = require("dpl.cli").read_file

-- runs a shell command; returns its exit status and its stdout + stderr
function M.run_command(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"rc=$?\"")
  local out = p:read("*a")
  p:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return rc, (out:gsub("rc=%d+%s*$", ""))
end

-- the absolute path of the dplrun running this suite (arg[-n] of the host)
function M.dplrun()
  local i = 0
  while arg[i - 1] do i = i - 1 end
  local exe = arg[i]
  if not exe:find("/") then exe = "./" .. exe end
  if exe:sub(1, 1) ~= "/" then exe = os.getenv("PWD") .. "/" .. exe end
  return exe
end

M.sh, M.read = M.run_command, M.read_file   -- the short names some suites use

return M

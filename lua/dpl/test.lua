-- dpl.test: a small named-test runner with assertions that print expected and actual values.
--
--   local test = require "dpl.test"
--   local S = test.suite("tensor views")
--   S:add("narrow keeps strides", function(t) t:eq(x:narrow(1, 2, 3):size(1), 3) end)
--   return S
--
-- tests/run.lua loads suites, runs them and prints one line per test and a closing count line.
local M = {}

local Suite = {}
Suite.__index = Suite

function M.suite(name)
  return setmetatable({name = name, tests = {}}, Suite)
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

-- ends the test early; it counts as passed and the runner prints the reason (e.g. "no Vulkan device")
function Check:skip(reason)
  error({msg = reason or "skipped", skip = true}, 2)
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
-- Runs the suite's tests whose names match `filter` (a Lua pattern, optional); returns passed, failed. The suite's
-- after_each function, when set, runs after every test, passed or not; teardown once at the end.
function Suite:run(filter, out)
  out = out or io.stdout
  local passed, failed = 0, 0
  for _, case in ipairs(self.tests) do
    if not filter or case.name:find(filter) then
      local check = setmetatable({}, Check)
      local t0 = os.clock()
      local ok, err = xpcall(function() case.fn(check) end, function(e)
        if type(e) == "table" and e.msg then return e end
        return {msg = tostring(e), trace = debug.traceback("", 2)}
      end)
      if self.after_each then   -- e.g. draining the Vulkan queue; its error fails the test too
        local ok2, e2 = pcall(self.after_each)
        if ok and not ok2 then ok, err = false, {msg = tostring(e2)} end
      end
      local ms = (os.clock() - t0) * 1000
      if ok then
        passed = passed + 1
        out:write(("ok     %s: %s (%.0f ms)\n"):format(self.name, case.name, ms))
      elseif err.skip then
        passed = passed + 1
        out:write(("skip   %s: %s (%s)\n"):format(self.name, case.name, err.msg))
      else
        failed = failed + 1
        out:write(("FAIL   %s: %s\n       %s\n"):format(self.name, case.name, err.msg))
        if err.trace and os.getenv("DPL_TEST_TRACE") then out:write(err.trace, "\n") end
      end
      out:flush()
    end
  end
  if self.teardown then pcall(self.teardown) end
  return passed, failed
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
-- <dir>/<case.id>_<name>.npy, remove(): delete the folder (for the suite's teardown)}.
function M.torch_refs(script, tag)
  local dpl = require "dpl"
  local root = (arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or ".") .. "/.."
  local r = {dir = os.tmpname() .. "_" .. tag, cases = {}}
  local status = os.execute("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1")
  r.have_torch = status == 0 or status == true
  if r.have_torch then
    status = os.execute(("/usr/bin/python3 %s/tests/ref/%s %s"):format(root, script, r.dir))
    r.made = status == 0 or status == true
  end
  local chunk = loadfile(r.dir .. "/cases.lua")
  if chunk then r.cases = chunk() end
  function r.npy(c, name, device) return dpl.load_npy(r.dir .. "/" .. c.id .. "_" .. name .. ".npy", {device = device}) end
  function r.remove() os.execute("rm -rf '" .. r.dir .. "'") end
  return r
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

return M

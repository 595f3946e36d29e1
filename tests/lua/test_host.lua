-- The dplrun host program: options, `arg`, error reporting and exit status, package.path from any directory.
local test = require "dpl.test"
-- default only: the host program, not the device paths
local S = test.suite("dplrun host", {configurations = {"default"}})

-- the dplrun binary running this suite: the lowest negative index of `arg`
local i = -1
while arg[i - 1] do i = i - 1 end
local dplrun = arg[i]
if not dplrun:find("/") then dplrun = "./" .. dplrun end
local abs_dplrun = dplrun:sub(1, 1) == "/" and dplrun or (os.getenv("PWD") .. "/" .. dplrun)

local function run(cmdline)
  local tmp = os.tmpname()
  local p = io.popen(cmdline .. " >" .. tmp .. " 2>&1; echo $?")
  local status = tonumber(p:read("*a"))
  p:close()
  local f = io.open(tmp)
  local out = f:read("*a")
  f:close()
  os.remove(tmp)
  return status, out
end

local function script(text)
  local path = os.tmpname() .. ".lua"
  local f = io.open(path, "w")
  f:write(text)
  f:close()
  return path
end

S:add("--version and --help", function(t)
  local rc, out = run(abs_dplrun .. " --version")
  t:eq(rc, 0)
  t:ok(out:find("dplrun %d+%.%d+"), "version line: " .. out)
  rc, out = run(abs_dplrun .. " --help")
  t:eq(rc, 0)
  t:ok(out:find("usage: dplrun"), out)
end)

S:add("--devices lists the cpu and every Vulkan device", function(t)
  local rc, out = run(abs_dplrun .. " --devices")
  t:eq(rc, 0)
  t:ok(out:find("\ncpu") or out:find("^cpu"), out)
  local dpl = require "dpl"
  if dpl.vulkan_available() then t:ok(out:find("vulkan:0: "), out) end
  rc, out = run("DPL_NO_VULKAN=1 " .. abs_dplrun .. " --devices")
  t:eq(rc, 0)
  t:ok(out:find("vulkan: unavailable"), out)
  t:ok(out:find("default: cpu"), out)
end)

S:add("arg is set as by the luajit command line", function(t)
  local path = script('print(arg[0] == ... and "nope" or "ok", #arg, arg[1], arg[2], select("#", ...))')
  local rc, out = run(abs_dplrun .. " --quiet " .. path .. " one two")
  t:eq(rc, 0)
  t:ok(out:find("ok\t2\tone\ttwo\t2"), out)
  os.remove(path)
end)

S:add("errors give a stack trace and a non-zero exit", function(t)
  local path = script('local function inner() error("boom here") end\nlocal function outer() inner() end\nouter()\n')
  local rc, out = run(abs_dplrun .. " --quiet " .. path)
  t:eq(rc, 1)
  t:ok(out:find("boom here"), out)
  t:ok(out:find("stack traceback"), out)
  t:ok(out:find("inner"), out)
  os.remove(path)
end)

S:add("a C error becomes a Lua error with the runtime's message", function(t)
  local path = script('local dpl = require "dpl"\nlocal a, b = dpl.zeros(2, 3), dpl.zeros(4, 3)\nlocal c = a + b\n')
  local rc, out = run(abs_dplrun .. " --quiet --device cpu " .. path)
  t:eq(rc, 1)
  t:ok(out:find("add: shapes %[2, 3%] and %[4, 3%] do not broadcast"), out)
  os.remove(path)
end)

S:add("runs from any working directory; unknown options and missing scripts fail cleanly", function(t)
  local path = script('local dpl = require "dpl"\nprint(dpl.device())\n')
  local rc, out = run("cd / && " .. abs_dplrun .. " --quiet --device cpu " .. path)
  t:eq(rc, 0)
  t:ok(out:find("cpu"), out)
  rc, out = run(abs_dplrun .. " --bogus x.lua")
  t:eq(rc, 2)
  t:ok(out:find("unknown option"), out)
  rc, out = run(abs_dplrun .. " /nonexistent/script.lua")
  t:eq(rc, 1)
  t:ok(out:find("cannot open"), out)
  rc, out = run(abs_dplrun .. " --device nonsense " .. path)
  t:eq(rc, 1)
  t:ok(out:find("unknown device 'nonsense'"), out)
  os.remove(path)
end)

S:add("the device banner is printed once, and --quiet suppresses it", function(t)
  local path = script('local dpl = require "dpl"\nlocal x = dpl.zeros(2) + 1\nprint(x:sum():item())\n')
  local rc, out = run("env -u DPL_QUIET " .. abs_dplrun .. " --device cpu " .. path)
  t:eq(rc, 0)
  t:ok(out:find("dpl %d+%.%d+%.%d+ | cpu:"), out)
  rc, out = run(abs_dplrun .. " --quiet --device cpu " .. path)
  t:ok(not out:find("| cpu:", 1, true), out)
  os.remove(path)
end)

S:add("OpenBLAS kernels: a generic fallback core is replaced by cpuid's choice, a user's OPENBLAS_CORETYPE is kept", function(t)
  local path = script('local ffi = require "ffi"\npcall(ffi.cdef, "char *openblas_get_corename(void);")\n' ..
                      'print("core=" .. ffi.string(ffi.C.openblas_get_corename()) .. " env=" .. ' ..
                      'tostring(os.getenv("OPENBLAS_CORETYPE")) .. " args=" .. table.concat(arg, ","))\n')
  -- a user's choice wins, even a slow one; the script's arguments survive the re-exec
  local rc, out = run("OPENBLAS_CORETYPE=Prescott " .. abs_dplrun .. " --quiet " .. path .. " a b")
  t:eq(rc, 0)
  t:ok(out:find("core=Prescott env=Prescott args=a,b", 1, true), out)
  rc, out = run("env -u OPENBLAS_CORETYPE " .. abs_dplrun .. " --quiet " .. path .. " a b")
  t:eq(rc, 0)
  t:ok(out:find("args=a,b", 1, true), out)
  -- whatever the CPU, the result is never one of the SSE-era fallbacks when the CPU has AVX2 + FMA
  local cpuinfo = io.open("/proc/cpuinfo"):read("*a")
  if cpuinfo:find(" avx2 ", 1, true) and cpuinfo:find(" fma ", 1, true) then
    local core = out:match("core=(%S+)") or ""
    t:ok(not core:lower():find("^prescott") and not core:lower():find("^core2") and not core:lower():find("^nehalem"), out)
  end
  os.remove(path)
end)

S:add("scripts get --help from argparse", function(t)
  local rc, out = run(abs_dplrun .. " --quiet examples/demo.lua --help")
  t:eq(rc, 0)
  t:ok(out:find("Usage:"), out)
end)

-- Starts `path` in the background, waits until its output holds `ready`, sends the signals (a list, 0.3 s apart) and
-- returns the exit status and the output.
local function signalled(path, ready, signals)
  local log = os.tmpname()
  local kills = {}
  for _, sig in ipairs(signals) do kills[#kills + 1] = "kill -" .. sig .. " $pid; sleep 0.3" end
  local p = io.popen(([[DPL_NO_VULKAN=1 %s --quiet %s >%s 2>&1 & pid=$!
    for i in $(seq 400); do grep -q '%s' %s && break; sleep 0.05; done
    %s; wait $pid; echo "rc=$?"]]):format(abs_dplrun, path, log, ready, log, table.concat(kills, "; ")))
  local rc = tonumber(p:read("*a"):match("rc=(%d+)"))
  p:close()
  local f = io.open(log)
  local out = f:read("*a")
  f:close()
  os.remove(log)
  return rc, out
end

S:add("SIGINT and SIGTERM: the script unwinds (even through pcall), cleanups run, exit 130 / 143", function(t)
  local path = script([[
    local signal = require "dpl.signal"
    if arg[1] then signal.resumable() end
    signal.on_interrupt(function() print("cleanup ran") end)
    local function f(x) return x + 1 end
    print("ready"); io.stdout:flush()
    local n = 0
    while true do
      local ok = pcall(function() for i = 1, 1e5 do n = f(n) end end)   -- swallows errors: interrupted again
      if not ok then n = 0 end
    end
  ]])
  local rc, out = signalled(path, "ready", {"INT"})
  t:eq(rc, 130, out)
  t:ok(out:find("cleanup ran", 1, true) and out:find("dplrun: interrupted by SIGINT\n", 1, true), out)
  rc, out = signalled(path .. " resumable", "ready", {"TERM"})
  t:eq(rc, 143, out)
  t:ok(out:find("interrupted by SIGTERM; rerun the same command to resume", 1, true), out)
  os.remove(path)
end)

S:add("a deferred signal is polled: the script saves, then stops; a second signal interrupts it anyway", function(t)
  local path = script([[
    local signal = require "dpl.signal"
    signal.resumable()
    signal.defer(true)
    print("ready " .. tostring(signal.pending())); io.stdout:flush()
    local steps = 0
    while true do
      for i = 1, 1e5 do steps = steps + 1 end
      if signal.pending() and not arg[1] then print("saved on " .. signal.pending()); signal.stop() end
    end
  ]])
  local rc, out = signalled(path, "ready", {"TERM"})
  t:eq(rc, 143, out)
  t:ok(out:find("ready nil", 1, true) and out:find("saved on SIGTERM", 1, true), out)
  t:ok(out:find("interrupted by SIGTERM; rerun the same command to resume", 1, true), out)
  -- a script that never polls: the first SIGINT is only recorded, the second interrupts
  rc, out = signalled(path .. " ignore", "ready", {"INT", "INT"})
  t:eq(rc, 130, out)
  t:ok(not out:find("saved", 1, true) and out:find("interrupted by SIGINT", 1, true), out)
  os.remove(path)
end)

return S

-- dpl.signal: how a script meets SIGINT (Ctrl-C) and SIGTERM (what SLURM sends before its time limit) under dplrun
-- (runtime/host/dplrun.c; docs/robustness.md).
--
-- By default a signal interrupts the script: an "interrupted by SIGINT" error is raised at the next Lua call and
-- raised again after any pcall that catches it, so the script unwinds; dplrun then runs the cleanups registered
-- here, prints "interrupted" and exits 130 (SIGINT) or 143 (SIGTERM). A script that resumes says so, and the message
-- tells the user to rerun it:
--
--   local signal = require "dpl.signal"
--   signal.resumable()                         -- "...; rerun the same command to resume"
--
-- A loop that must save its state first (a training loop) defers the signal and polls it between steps:
--
--   signal.defer(true)
--   for step = 1, n do
--     train_step()
--     if signal.pending() then save_checkpoint(); signal.stop() end   -- unwinds as an interruption
--   end
--   signal.defer(false)
--
-- A second signal interrupts even a deferring script (pending() then raises the interruption), a third ends the
-- process at once. LuaJIT runs no hook inside compiled code: a loop compiled whole notices an interruption when its
-- trace exits, or when it calls pending(). Outside dplrun (a plain luajit) there are no signal handlers: pending()
-- is always nil.
local ffi = require "ffi"

local M = {}

pcall(ffi.cdef, [[
int dplrun_signal_pending(void);
int dplrun_signal_count(void);
int dplrun_signal_defer(int on);
]])
local host = pcall(function() return ffi.C.dplrun_signal_pending end) and ffi.C or nil

local NAMES = {[2] = "SIGINT", [15] = "SIGTERM"}

-- "SIGINT" or "SIGTERM" once such a signal has arrived, else nil. After a second signal it raises the interruption
-- instead (the user insists: a deferring script is stopped even where LuaJIT's compiled code runs no hook).
function M.pending()
  local s = host and host.dplrun_signal_pending() or 0
  if s == 0 then return nil end
  local name = NAMES[s] or ("signal " .. s)
  if host.dplrun_signal_count() >= 2 then error("interrupted by " .. name, 2) end
  return name
end

-- on: signals only set the flag that pending() reads; false: they interrupt (a pending one at once). Returns the
-- previous setting.
function M.defer(on)
  if not host then return false end
  return host.dplrun_signal_defer(on and 1 or 0) ~= 0
end

-- Unwinds the script as an interruption (after a deferred signal was handled).
function M.stop()
  error("interrupted by " .. (M.pending() or "a signal"), 2)
end

-- What dplrun adds to its message when the script was interrupted (default: rerun to resume).
function M.resumable(hint)
  M.resume_hint = hint or "rerun the same command to resume"
end

-- Cleanups run by dplrun after an interruption, in the reverse order of registration (each in a pcall); returns a
-- function that unregisters it. The results store rolls back open transactions and releases its claims here.
local cleanups = {}
function M.on_interrupt(fn)
  cleanups[#cleanups + 1] = fn
  return function()
    for i = #cleanups, 1, -1 do if cleanups[i] == fn then table.remove(cleanups, i) end end
  end
end

function M.run_cleanups()
  for i = #cleanups, 1, -1 do
    local ok, err = pcall(cleanups[i])
    if not ok then io.stderr:write("dpl.signal: a cleanup failed: ", tostring(err), "\n") end
  end
  cleanups = {}
end

return M

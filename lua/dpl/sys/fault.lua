-- dpl.sys.fault: deterministic fault injection for the tests of interruption and resume (docs/robustness.md).
--
-- A test that must interrupt a run "after the 4th checkpoint" cannot poll for it: on a fast machine the run is over
-- before the test looks. Instead the run signals itself at a named point of its own progress:
--
--   DPL_FAULT_<SIGNAL>_AFTER_<EVENT>=N      e.g. DPL_FAULT_KILL_AFTER_CHECKPOINT=4, DPL_FAULT_INT_AFTER_RECORD=1
--
-- sends SIG<SIGNAL> (KILL, INT, TERM or STOP) to this process right after the N-th <EVENT> it reached. Events:
--   CHECKPOINT  a trainer checkpoint was written (lua/dpl/train/trainer.lua)
--   RECORD      a run was committed to the results store (lua/dpl/results.lua)
--   MLP         an MLP probe's result was written (lua/dpl/benchmarks/autoencoder.lua)
-- KILL ends the process at once, as kill -9 would (no cleanup, no flush beyond what is written); INT and TERM go
-- through dplrun's handlers exactly as a signal from outside would; STOP freezes the process there (until SIGCONT),
-- so that a test can act on a run known to be in the middle, e.g. scancel its SLURM task
-- (tests/lua/test_sweep_slurm.lua). Unset variables cost one table lookup per event.
local ffi = require "ffi"

local M = {}

local SIGNALS = {KILL = 9, INT = 2, TERM = 15, STOP = 19}

local armed = {}    -- event -> {{signal, after}, ...}
for name, number in pairs(SIGNALS) do
  for _, event in ipairs {"CHECKPOINT", "RECORD", "MLP"} do
    local n = tonumber(os.getenv(("DPL_FAULT_%s_AFTER_%s"):format(name, event)) or "")
    if n then
      armed[event] = armed[event] or {}
      table.insert(armed[event], {signal = number, after = n})
    end
  end
end
local reached = {}

-- Marks that `event` happened once more; signals this process when a variable asks for it at this count.
function M.point(event)
  local plan = armed[event]
  if not plan then return end
  reached[event] = (reached[event] or 0) + 1
  for _, p in ipairs(plan) do
    if reached[event] == p.after then
      pcall(ffi.cdef, "int kill(int pid, int sig); int getpid(void);")
      io.stdout:flush()
      io.stderr:flush()
      ffi.C.kill(ffi.C.getpid(), p.signal)
    end
  end
end

return M

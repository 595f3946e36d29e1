-- tests/lua/autoencoder_fixture.lua - the tiny SVHN (.mat) / STL-10 (binary) data root of
-- tests/ref/autoencoder_fixture.py that the autoencoder suites share (test_autoencoder_experiment.lua,
-- test_sweep_autoencoder.lua), made once per folder.
--   local fx = dofile(root .. "/tests/lua/autoencoder_fixture.lua")
--   fx.need(t, root, dir .. "/data", "96 240 60")   -- N_AE N_TRAIN N_TEST; skips the test without numpy/scipy
local test = require "dpl.test"

local M = {}
local made = {}

local have_python = (function()
  local s = os.execute("/usr/bin/python3 -c 'import numpy, scipy.io' >/dev/null 2>&1")
  return s == 0 or s == true
end)()

function M.need(t, root, data, sizes)
  if not have_python then t:skip("/usr/bin/python3 with numpy and scipy is needed to write the SVHN .mat fixture") end
  if made[data] == nil then
    local rc, out = test.run_command(("/usr/bin/python3 '%s/tests/ref/autoencoder_fixture.py' '%s' %s"):format(root,
      data, sizes))
    made[data] = rc == 0 or out
  end
  if made[data] ~= true then t:ok(false, "tests/ref/autoencoder_fixture.py failed: " .. tostring(made[data])) end
end

return M

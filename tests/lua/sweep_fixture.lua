-- tests/lua/sweep_fixture.lua - the data the sweep suites (test_sweep.lua, test_sweep_slurm.lua) share, made under a
-- folder: BAPPS/ (tests/ref/bapps_fixture.py: 4 triplets or pairs per val subset) and sr/{train,val,Set5} (4 training,
-- 1 validation and 1 test crop of 48 x 48 from Set14 and Set5: the test set is named Set5, so that the analysis reads
-- its scores as x4 PSNR/MSSIM on Set5) for BAPPS and super-resolution x4 cells.
--   local fx = dofile(root .. "/tests/lua/sweep_fixture.lua")
--   fx.need(t, root, dir)          -- makes the data once; skips the test without numpy/Pillow
local dpl = require "dpl"
local test = require "dpl.test"

local M = {}
local made = {}

function M.need(t, root, dir)
  if made[dir] == nil then
    local shared = test.shared_dir()
    local rc, log = test.run_command(("/usr/bin/python3 %s/tests/ref/bapps_fixture.py %s/BAPPS %s/data 4 4"):format(
      root, dir, shared))
    made[dir] = rc == 0 or log
    os.execute(("mkdir -p '%s/sr/train' '%s/sr/val' '%s/sr/Set5'"):format(dir, dir, dir))
    local function crop(set, i, top, left, out)
      local img = dpl.image.load(("%s/data/%s/image_SRF_4/img_%03d_SRF_4_HR.png"):format(shared, set, i), {device = "cpu"})
      dpl.image.save(img:narrow(2, top, 48):narrow(3, left, 48):contiguous(), out)
    end
    for k = 1, 4 do crop("Set14", k, 11, 21, ("%s/sr/train/c%d.png"):format(dir, k)) end
    crop("Set14", 7, 31, 11, dir .. "/sr/val/c7.png")
    crop("Set5", 1, 41, 41, dir .. "/sr/Set5/t1.png")
  end
  local why = made[dir]
  if why ~= true then
    if why:find("No module named", 1, true) then t:skip("numpy/Pillow missing: " .. why:sub(-200)) end
    t:ok(false, "tests/ref/bapps_fixture.py failed: " .. why:sub(-800))
  end
end

return M

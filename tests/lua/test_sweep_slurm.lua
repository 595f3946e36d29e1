-- experiments/sweep.lua --slurm on a real single-node SLURM cluster (Debian's munge, slurmctld and slurmd, started in
-- a private folder by tests/slurm/start.sh; the suite is skipped where that cannot start: not root, packages missing,
-- daemons refused by the container):
--  * a --quick sweep of 2 benchmarks x 2 architectures x 2 layers is submitted as one job array (2 tasks at once),
--    waited for, merged (each cell exactly once) and analysed (experiments/analysis.lua, with the strip of the
--    outputs its tasks saved: --save-examples); a second submission of the same sweep submits nothing;
--  * a training task frozen right after its first checkpoint (DPL_FAULT_STOP_AFTER_CHECKPOINT=1, so that it is known
--    to be mid-run) is killed with scancel; the sweep then shows the cell as not done, a resubmission submits only that
--    cell, which resumes from its checkpoint, and the merged store has each cell exactly once.
-- Waiting for SLURM polls its queue (squeue) with a generous bound: what is awaited is a state SLURM reaches, not a
-- moment in time.
local test = require "dpl.test"
local results = require "dpl.results"
local S = test.suite("sweep on SLURM", {configurations = {"default"},
                                shared = {"data/BAPPS/imgs", "data/Set14", "data/Set5"}})

local here = arg[0]:match("^(.*)/[^/]*$") or "."
local root = here .. "/.."
local dplrun = test.dplrun()
local sh = test.run_command
local tmp = test.tmpdir("sweep_slurm")
local cluster = tmp .. "/cluster"

local started_rc, started_log, conf
S.teardown = function()
  if started_rc then sh(("sh %s/tests/slurm/stop.sh '%s'"):format(root, cluster)) end
  os.execute(("rm -rf '%s'"):format(tmp))
end

local function need_cluster(t)
  if not started_rc then
    started_rc, started_log = sh(("sh %s/tests/slurm/start.sh '%s'"):format(root, cluster))
    conf = started_log:match("export SLURM_CONF=(%S+)")
  end
  if started_rc == 77 then t:skip((started_log:gsub("%s+$", "")), {unavailable = true}) end
  t:eq(started_rc, 0, "tests/slurm/start.sh failed: " .. started_log)
  t:ok(conf ~= nil, started_log)
end

local fixture = dofile(root .. "/tests/lua/sweep_fixture.lua")
local function need_data(t) fixture.need(t, root, tmp) end

local GRID = "--benchmarks bapps,superres4 --arch alexnet,squeezenet1_1 --layer E,L --weights random:1 --quick " ..
  "--bapps.data BAPPS --superres4.train sr/train --superres4.val sr/val --superres4.test sr/Set5 --hr-size 32 " ..
  "--batch 2 --device cpu"

local function env() return ("SLURM_CONF='%s' DPL_QUIET=1 DPL_NO_PROGRESS=1"):format(conf) end
local function sweep(a, extra_env)
  return sh(("cd '%s' && %s %s %s %s/experiments/sweep.lua %s"):format(tmp, env(), extra_env or "", dplrun, root, a))
end

-- waits until SLURM no longer lists any task of job `id` (at most `limit` seconds)
local function wait_job(t, id, limit)
  for _ = 1, (limit or 600) * 2 do
    local _, out = sh(("SLURM_CONF='%s' squeue -h -r -o '%%F %%T'"):format(conf))
    local alive = false
    for job, state in out:gmatch("(%d+) (%u+)") do
      if job == tostring(id) and state ~= "COMPLETED" and state ~= "CANCELLED" and state ~= "FAILED" then alive = true end
    end
    if not alive then return end
    sh("sleep 0.5")
  end
  t:ok(false, "job " .. id .. " is still in the queue")
end

local function job_of(out) return out:match("submitted job array (%d+)") end

local function each_cell_once(t, db_path, n, what)
  local db = results.open(db_path, {readonly = true})
  local runs = db:runs({status = "any"})
  db:close()
  local seen = {}
  for _, r in ipairs(runs) do
    local k = ("%s %s %s %s"):format(r.experiment, r.arch, r.layer, r.status)
    seen[k] = (seen[k] or 0) + 1
    t:eq(r.status, "finished", what .. ": " .. k)
    t:eq(seen[k], 1, what .. ": " .. k .. " more than once")
  end
  t:eq(#runs, n, what .. ": rows")
end

S:add("a --quick 2 x 2 x 2 sweep as one job array: waited for, merged once, analysed; resubmitting submits nothing",
  function(t)
  need_cluster(t)
  need_data(t)
  local a = GRID .. " --epochs 1 --db a/dpl.sqlite"
  local rc, out = sweep(a .. " --slurm --max-parallel 2 --time 0:30:00 --save-examples 1")
  t:eq(rc, 0, out)
  local job = job_of(out)
  t:ok(job, "no job id:\n" .. out)
  t:ok(out:find("submitted job array " .. tostring(job) .. ": 8 task(s), at most 2 at once", 1, true), out)
  wait_job(t, job)
  rc, out = sweep("--status --db a/dpl.sqlite")
  t:eq(rc, 0, out)
  t:ok(out:find("8 cells: 8 done", 1, true), out)
  rc, out = sh(("cd '%s' && %s %s %s/experiments/results.lua --merge a/sweep --db a/dpl.sqlite"):format(tmp, env(),
    dplrun, root))
  t:eq(rc, 0, out)
  t:ok(out:find("8 run(s) added, 0 already there", 1, true), out)
  each_cell_once(t, tmp .. "/a/dpl.sqlite", 8, "merged")
  rc, out = sweep(a .. " --slurm --max-parallel 2")
  t:eq(rc, 0, out)
  t:ok(out:find("nothing to submit", 1, true), out)
  t:ok(not job_of(out), "a job was submitted again:\n" .. out)
  rc, out = sh(("cd '%s' && %s %s %s/experiments/analysis.lua --db a/dpl.sqlite --out a/report"):format(tmp, env(),
    dplrun, root))
  t:eq(rc, 0, out)
  local md = test.read_file(tmp .. "/a/report/index.md")
  t:ok(md, "no report/index.md:\n" .. out)
  -- the array tasks saved their cells' outputs (--save-examples) where the analysis finds them: its strip
  t:ok(md:find("superres4: 4 of its 4 cell(s) have saved outputs", 1, true), md)
  t:ok(md:find("](figures/examples_superres4.png)", 1, true), md)
end)

S:add("a task killed with scancel mid-run: resubmitted alone, resumed from its checkpoint, each cell once", function(t)
  need_cluster(t)
  need_data(t)
  -- one training cell of 2 epochs that freezes after its first checkpoint, and one BAPPS cell
  local a = "--benchmarks bapps,superres4 --arch alexnet --layer E --weights random:1 --quick --bapps.data BAPPS " ..
    "--superres4.train sr/train --superres4.val sr/val --superres4.test sr/Set5 --hr-size 32 --batch 2 --epochs 2 " ..
    "--device cpu --db b/dpl.sqlite"
  local rc, out = sweep(a .. " --slurm", "DPL_FAULT_STOP_AFTER_CHECKPOINT=1")
  t:eq(rc, 0, out)
  local job = job_of(out)
  t:ok(job, out)
  -- the training task has written its first checkpoint (and is frozen there, or about to be): cancel the job
  local found
  for _ = 1, 1200 do
    found = io.popen(("find '%s/b/sweep/shards' -name train.ckpt 2>/dev/null"):format(tmp)):read("*l")
    if found then break end
    sh("sleep 0.5")
  end
  t:ok(found, "no checkpoint was written")
  rc, out = sh(("SLURM_CONF='%s' scancel %s"):format(conf, job))
  t:eq(rc, 0, out)
  wait_job(t, job)
  rc, out = sweep("--status --db b/dpl.sqlite")
  t:ok(out:find("superres4%s+alexnet%s+[%.F]"), "the cancelled cell is not pending or failed:\n" .. out)
  rc, out = sweep(a .. " --slurm")
  t:eq(rc, 0, out)
  local job2 = job_of(out)
  t:ok(out:find("submitted job array " .. tostring(job2) .. ": 1 task(s)", 1, true), "not only the killed cell:\n" .. out)
  wait_job(t, job2)
  local log = test.read_file(("%s/b/sweep/logs/%s_0.out"):format(tmp, job2)) or ""
  t:ok(log:find("resuming from .*train%.ckpt: epoch 2"), "the resubmitted task did not resume:\n" .. log)
  rc, out = sh(("cd '%s' && %s %s %s/experiments/sweep.lua --merge --db b/dpl.sqlite"):format(tmp, env(), dplrun, root))
  t:eq(rc, 0, out)
  each_cell_once(t, tmp .. "/b/dpl.sqlite", 2, "merged after the resubmission")
end)

return S

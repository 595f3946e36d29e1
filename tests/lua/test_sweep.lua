-- experiments/sweep.lua end to end on tiny real data: a --quick sweep of 2 benchmarks (BAPPS on the fixture of
-- tests/ref/bapps_fixture.py, super-resolution x4 on 32 x 32 crops of Set14/Set5) x 2 architectures x 2 layers with
-- random weights, in a child dplrun each time:
--  * --dry-run lists the 8 cells as pending and computes nothing; the sweep computes each cell once through the
--    benchmarks' library code (the store then has 8 finished rows, one per cell), and with --save-examples 1 saves
--    each super-resolution cell's outputs where the analysis finds them (its strip has a row per cell); a rerun
--    computes nothing (and says which done cells have no saved outputs); --status shows the grid;
--  * a cell that fails is recorded as failed and the sweep goes on; a rerun leaves it, --retry-failed redoes it;
--  * --slurm --no-submit writes the batch script; its array tasks, run here with SLURM_ARRAY_TASK_ID set as SLURM
--    would, each write their own shard (and their cell's example outputs); a task killed (kill -9, DPL_FAULT_KILL_AFTER_CHECKPOINT) after its first
--    checkpoint resumes from it when run again; the merge adds each cell once (a second merge adds nothing), refuses
--    a corrupt shard, a shard of another configuration, of another code version and of another schema version by
--    name and merges the rest;
--  * bad input (unknown benchmark/arch/layer, an option no benchmark takes, an option the benchmark name fixes,
--    --slurm without sbatch) is one line with exit status 2.
-- tests/lua/test_sweep_slurm.lua runs the same sweep through a real single-node SLURM.
local test = require "dpl.test"
local json = require "dpl.json"
local results = require "dpl.results"
local sweep = require "dpl.benchmarks.sweep"
local examples = require "dpl.benchmarks.analysis_examples"
local S = test.suite("sweep", {configurations = {"default"},
                                shared = {"data/BAPPS/imgs", "data/Set14", "data/Set5"}})

local here = arg[0]:match("^(.*)/[^/]*$") or "."
local root = here .. "/.."
local dplrun = test.dplrun()
local sh, slurp = test.run_command, test.read_file
local tmp = test.tmpdir("sweep")
S.teardown = function() os.execute(("rm -rf '%s'"):format(tmp)) end

local fixture = dofile(root .. "/tests/lua/sweep_fixture.lua")
local function need_data(t) fixture.need(t, root, tmp) end

-- the sweep of every test: 2 benchmarks x 2 architectures x 2 layers
local function grid(bapps_data, epochs)
  return ("--benchmarks bapps,superres4 --arch alexnet,squeezenet1_1 --layer E,L --weights random:1 --quick " ..
    "--bapps.data %s --superres4.train %s/sr/train --superres4.val %s/sr/val --superres4.test %s/sr/Set5 " ..
    "--hr-size 32 --batch 2 --epochs %d"):format(bapps_data or (tmp .. "/BAPPS"), tmp, tmp, tmp, epochs or 1)
end

local function run_sweep(a, env)
  return sh(("cd '%s' && %s DPL_QUIET=1 DPL_NO_PROGRESS=1 %s %s/experiments/sweep.lua %s --device cpu"):format(tmp,
    env or "", dplrun, root, a))
end

-- the rows of a store: experiment .. " " .. arch .. " " .. layer -> {finished =, failed =}
local function rows(db_path)
  local db = results.open(db_path, {readonly = true})
  local out, n = {}, 0
  for _, r in ipairs(db:runs({status = "any"})) do
    local k = ("%s %s %s"):format(r.experiment, r.arch, r.layer)
    out[k] = out[k] or {finished = 0, failed = 0}
    out[k][r.status] = out[k][r.status] + 1
    n = n + 1
  end
  db:close()
  return out, n
end

local CELLS = {}
for _, e in ipairs {"bapps", "superres"} do
  for _, a in ipairs {"alexnet", "squeezenet1_1"} do
    for _, l in ipairs {"E", "L"} do CELLS[#CELLS + 1] = ("%s %s %s"):format(e, a, l) end
  end
end

local function each_cell_once(t, db_path, what)
  local r, n = rows(db_path)
  t:eq(n, 8, what .. ": rows in the store")
  for _, k in ipairs(CELLS) do
    t:ok(r[k] and r[k].finished == 1, ("%s: %s finished %s times"):format(what, k, r[k] and r[k].finished or 0))
  end
end

S:add("library: the sweep's names, a benchmark missing from this dpl in one line, option splitting", function(t)
  t:eq(sweep.names(), "bapps, superres4, superres8, delineation, svhn, stl10 or all")
  local B, why = sweep.module({name = "nosuch", module = "nosuch_benchmark"})
  t:eq(B, nil)
  t:eq(why, "benchmark nosuch is not in this version of dpl (no lua/dpl/benchmarks/nosuch_benchmark.lua)")
  local mine, passed = sweep.split_args({"--db", "x.sqlite", "--quick", "--epochs", "3", "--bapps.limit=7",
    "--dry-run"}, {["--db"] = 1, ["--quick"] = 0, ["--dry-run"] = 0})
  t:eq(table.concat(mine, " "), "--db x.sqlite --quick --dry-run")
  t:eq(#passed, 2)
  t:eq(passed[1].name, "--epochs"); t:eq(passed[1].value, "3"); t:eq(passed[1].only, nil)
  t:eq(passed[2].name, "--limit"); t:eq(passed[2].value, "7"); t:eq(passed[2].only, "bapps")
  local script = require("dpl.benchmarks.slurm").batch_script("/s/sub.json", 8, {dir = "/s", max_parallel = "2", partition = "gpu",
    gres = "gpu:1", time = "24:00:00", extra = "--qos high --constraint=v100", cwd = "/w", dplrun = "/b/dplrun",
    script = "/w/experiments/sweep.lua"})
  for _, want in ipairs {"#SBATCH --array=0-7%2\n", "#SBATCH --partition=gpu\n", "#SBATCH --gres=gpu:1\n",
                         "#SBATCH --time=24:00:00\n", "#SBATCH --qos high\n", "#SBATCH --constraint=v100\n",
                         "#SBATCH --requeue\n", "exec '/b/dplrun' '/w/experiments/sweep.lua' --task '/s/sub.json'\n"} do
    t:ok(script:find(want, 1, true), "batch script lacks " .. want .. ":\n" .. script)
  end
end)

S:add("bad input: one line, exit 2, before any work", function(t)
  need_data(t)
  local function run(a) return run_sweep(a .. " --db " .. tmp .. "/bad/dpl.sqlite") end
  test.user_errors(t, run, {
    {"--benchmarks bapps,nosuch", "--benchmarks: unknown benchmark 'nosuch'"},
    {grid() .. " --arch alexnet,nonet", "unknown architecture 'nonet'"},
    {grid() .. " --layer E,Q", "Q"},
    {grid() .. " --no-such-option 3", "--no-such-option: neither the sweep nor a selected benchmark takes this option"},
    {grid() .. " --scale 8", "--scale is set by the benchmark name superres4"},
    {grid() .. " --json x.json", "--json is set by the sweep for every cell"},
    {"--benchmarks bapps --lpips.data x", "--lpips.data: unknown benchmark 'lpips'"},
    {grid() .. " --partition gpu", "--partition goes with --slurm"},
    {grid() .. " --slurm --max-parallel 0", "--max-parallel 0: give a positive whole number"},
    {grid() .. " --save-examples 0", "--save-examples 0: give a positive whole number"},
    {grid() .. " --examples x", "--examples goes with --save-examples N"},
    {grid() .. " --save-examples 2 --superres4.save x", "--superres4.save: --save-examples saves each cell's outputs"},
  })
  -- no sbatch: a PATH with the tools the sweep needs but not SLURM's
  local bin = tmp .. "/bin"
  os.execute(("mkdir -p '%s' && for c in ls mkdir git cat rm; do ln -sf \"$(command -v $c)\" '%s/'$c; done"):format(bin, bin))
  local rc, out = run_sweep(grid() .. " --db " .. tmp .. "/bad/dpl.sqlite --slurm", "PATH=" .. bin)
  t:eq(rc, 2, out)
  t:ok(out:find("SLURM is not installed here", 1, true), out)
  t:ok(not io.open(tmp .. "/bad/dpl.sqlite"), "a store was created before the error")
end)

S:add("--dry-run, the sweep here, a rerun that computes nothing, --status", function(t)
  need_data(t)
  local db = tmp .. "/here/dpl.sqlite"
  local rc, out = run_sweep(grid() .. " --db " .. db .. " --dry-run")
  t:eq(rc, 0, out)
  t:eq(select(2, out:gsub("\n%w+%s+%S+%s+[EL]%s+pending", "")), 8, "8 pending cells listed:\n" .. out)
  t:ok(out:find("8 cells: 0 done, 0 running, 0 queued, 0 failed, 8 pending", 1, true), out)
  rc, out = run_sweep(grid() .. " --db " .. db .. " --save-examples 1")
  t:eq(rc, 0, out)
  t:ok(out:find("8 cell(s) run here: 8 computed, 0 failed", 1, true), out)
  t:ok(out:find("ETA", 1, true), "no ETA in the progress lines:\n" .. out)
  each_cell_once(t, db, "after the sweep")
  -- --save-examples: each super-resolution cell's outputs in examples/superres/<hash16>/ beside the store
  local store = results.open(db, {readonly = true})
  local n = 0
  for _, r in ipairs(store:runs()) do
    local cell = examples.cell_dir(tmp .. "/here/examples", r.experiment, r.config_hash)
    for _, f in ipairs {"Set5/t1.png", "Set5/t1_hr.png", "Set5/t1_lr.png"} do
      t:eq(r.experiment == "superres", slurp(cell .. "/" .. f) ~= nil, ("%s %s %s: %s"):format(r.experiment, r.arch,
        r.layer, f))
    end
    n = n + 1
  end
  store:close()
  t:eq(n, 8)
  -- the checkpoints of a training cell are in its own folder beside the store
  t:ok(out:find("[8/8] superres4 squeezenet1_1 L", 1, true), out)
  rc, out = run_sweep(grid() .. " --db " .. db)
  t:eq(rc, 0, out)
  t:ok(out:find("0 cell(s) run here", 1, true), "the rerun computed cells:\n" .. out)
  each_cell_once(t, db, "after the rerun")
  rc, out = run_sweep("--status --db " .. db)   -- the cells of the last sweep from its plan, no data needed
  t:eq(rc, 0, out)
  t:ok(out:find("superres4%s+squeezenet1_1%s+D%s+D"), out)
  t:ok(out:find("8 cells: 8 done", 1, true), out)
  -- the analysis of this store draws the strip of the saved outputs: the input, the ground truth and the 4 cells
  if os.execute("command -v gnuplot >/dev/null 2>&1") ~= 0 then t:skip("gnuplot is not installed: no strip to check") end
  rc, out = sh(("cd '%s' && %s %s/experiments/analysis.lua --db here/dpl.sqlite --out here/report --benchmarks " ..
    "superres4"):format(tmp, dplrun, root))
  t:eq(rc, 0, out)
  local img = require("dpl").image.load(tmp .. "/here/report/figures/examples_superres4.png", {device = "cpu"})
  t:shape(img, {3, examples.HEAD_H + 6 * examples.TILE, examples.LABEL_W + examples.MIN_COLUMNS * examples.TILE})
  -- every row's tile holds an image (the canvas is white): most of its pixels are not white
  local W, H, d = img:size(3), img:size(2), img:contiguous():float_data()
  for i = 1, 6 do
    local coloured, n = 0, 0
    for y = examples.HEAD_H + (i - 1) * examples.TILE + 8, examples.HEAD_H + i * examples.TILE - 8, 4 do
      for x = examples.LABEL_W + 8, examples.LABEL_W + examples.TILE - 8, 4 do
        n = n + 1
        if d[y * W + x] + d[H * W + y * W + x] + d[2 * H * W + y * W + x] < 2.97 then coloured = coloured + 1 end
      end
    end
    t:ok(coloured > n / 2, ("row %d of the strip is blank (%d of %d pixels coloured)"):format(i, coloured, n))
  end
  t:ok(slurp(tmp .. "/here/report/index.md"):find("superres4: 4 of its 4 cell(s) have saved outputs", 1, true))
  -- a rerun with --save-examples into another folder: the cells are done, so it says that they have none there
  rc, out = run_sweep(grid() .. " --db " .. db .. " --save-examples 1 --examples " .. tmp .. "/here/other")
  t:eq(rc, 0, out)
  t:ok(out:find("4 cell(s) done earlier have no example outputs in " .. tmp .. "/here/other", 1, true), out)
end)

S:add("a failing cell is recorded and the sweep goes on; --retry-failed redoes it", function(t)
  need_data(t)
  -- BAPPS with one unreadable patch: every BAPPS cell fails when it reads it
  local bad = tmp .. "/BAPPS_bad"
  os.execute(("rm -rf '%s'; cp -r '%s/BAPPS' '%s'"):format(bad, tmp, bad))
  local victim = io.popen(("find '%s/2afc/val/cnn/p0' -name '*.png' | sort | head -n 1"):format(bad)):read("*l")
  t:ok(victim ~= nil, "no patch in the fixture")
  local f = io.open(victim, "wb"); f:write("not a png"); f:close()
  local db = tmp .. "/fail/dpl.sqlite"
  local a = grid(bad) .. " --db " .. db
  local rc, out = run_sweep(a)
  t:eq(rc, 1, out)
  t:ok(out:find("8 cell(s) run here: 4 computed, 4 failed", 1, true), out)
  local r = rows(db)
  for _, k in ipairs(CELLS) do
    local e = k:match("^%S+")
    t:eq(r[k] and r[k][e == "bapps" and "failed" or "finished"], 1, k)
  end
  rc, out = run_sweep(a)
  t:eq(rc, 0, out)
  t:ok(out:find("4 failed earlier: --retry-failed redoes them", 1, true), out)
  t:ok(out:find("0 cell(s) run here", 1, true), out)
  rc, out = run_sweep(a .. " --retry-failed")
  t:eq(rc, 1, out)
  t:ok(out:find("4 cell(s) run here: 0 computed, 4 failed", 1, true), out)
  r = rows(db)
  t:eq(r["bapps alexnet E"].failed, 2)
  t:eq(r["superres alexnet E"].finished, 1)
  rc, out = run_sweep("--status --db " .. db)
  t:ok(out:find("bapps%s+alexnet%s+F%s+F"), out)
end)

S:add("--slurm --no-submit: the array tasks run here as SLURM would, a killed task resumes, shards merge once", function(t)
  need_data(t)
  local db = tmp .. "/slurm/dpl.sqlite"
  local dir = tmp .. "/slurm/sweep"
  -- 2 epochs: a task killed after its first checkpoint has an epoch left to train
  local rc, out = run_sweep(grid(nil, 2) .. " --db " .. db .. " --slurm --no-submit --max-parallel 2 --time 1:00:00 " ..
    "--save-examples 1")
  t:eq(rc, 0, out)
  t:ok(out:find("8 array task(s) written to", 1, true), out)
  local script = io.popen(("ls '%s'/submissions/*.sh"):format(dir)):read("*l")
  local text = slurp(script)
  t:ok(text:find("#SBATCH --array=0-7%2", 1, true), text)
  t:ok(text:find("#SBATCH --time=1:00:00", 1, true), text)
  local sub = json.decode(slurp((script:gsub("%.sh$", ".json"))))
  t:eq(#sub.cells, 8)
  -- task 4 (superres4 alexnet E: the first training cell) is killed after its first checkpoint, then run again
  t:eq(sub.cells[5].bench .. " " .. sub.cells[5].arch .. " " .. sub.cells[5].layer, "superres4 alexnet E")
  local function task(i, env)
    return sh(("cd '%s' && SLURM_ARRAY_TASK_ID=%d DPL_QUIET=1 DPL_NO_PROGRESS=1 %s sh '%s'"):format(tmp, i, env or "",
      script))
  end
  rc, out = task(4, "DPL_FAULT_KILL_AFTER_CHECKPOINT=1")
  t:eq(rc, 137, "the task was not killed:\n" .. out)
  rc, out = run_sweep("--status --db " .. db)
  t:ok(out:find("superres4%s+alexnet%s+%.%s+%."), "the killed cell is pending:\n" .. out)
  for i = 0, 7 do
    rc, out = task(i)
    t:eq(rc, 0, ("task %d: %s"):format(i, out))
    if i == 4 then t:ok(out:find("resuming from .*: epoch 2"), "task 4 did not resume:\n" .. out) end
  end
  rc, out = run_sweep("--status --db " .. db)
  t:ok(out:find("8 cells: 8 done", 1, true), out)
  -- --save-examples: the submission names the folder (absolute) and each task saved its cell's outputs there
  t:eq(sub.examples.dir, tmp .. "/slurm/examples")
  t:eq(sub.examples.limit, 1)
  for _, c in ipairs(sub.cells) do
    t:eq(slurp(examples.cell_dir(sub.examples.dir, c.experiment, c.hash) .. "/Set5/t1_hr.png") ~= nil,
      c.bench == "superres4", c.bench .. " " .. c.arch .. " " .. c.layer)
  end
  -- merge: every cell once; again: nothing added
  rc, out = sh(("%s %s/experiments/results.lua --merge '%s' --db '%s'"):format(dplrun, root, dir, db))
  t:eq(rc, 0, out)
  t:ok(out:find("merged 8 of 8 shard(s) into " .. db .. ": 8 run(s) added, 0 already there", 1, true), out)
  each_cell_once(t, db, "after the merge")
  rc, out = sh(("%s %s/experiments/results.lua --merge '%s' --db '%s'"):format(dplrun, root, dir, db))
  t:ok(out:find("0 run(s) added, 8 already there", 1, true), out)
  each_cell_once(t, db, "after the second merge")
  -- a second --slurm submits nothing
  rc, out = run_sweep(grid(nil, 2) .. " --db " .. db .. " --slurm --no-submit")
  t:eq(rc, 0, out)
  t:ok(out:find("nothing to submit", 1, true), out)
  -- bad shards: corrupt, another configuration, another code version; each refused by name, the rest merged
  local shards_dir = dir .. "/shards"
  local f = io.open(shards_dir .. "/corrupt.sqlite", "wb"); f:write(("garbage"):rep(1000)); f:close()
  rc, out = sh(("cd '%s' && DPL_QUIET=1 DPL_NO_PROGRESS=1 %s %s/experiments/bapps.lua --arch alexnet --layer E " ..
    "--weights random:1 --data BAPPS --limit 2 --device cpu --db '%s/foreign.sqlite'"):format(tmp, dplrun, root, shards_dir))
  t:eq(rc, 0, out)
  local one = io.popen(("ls '%s'/bapps-*.sqlite | head -n 1"):format(shards_dir)):read("*l")
  os.execute(("cp '%s' '%s/oldcode.sqlite'"):format(one, shards_dir))
  local odb = results.open(shards_dir .. "/oldcode.sqlite")
  odb:query("UPDATE runs SET code_version = 'v0.0-1-gdeadbee (dpl 0.0.1)'")
  odb:close()
  os.execute(("cp '%s' '%s/oldschema.sqlite'"):format(one, shards_dir))
  odb = results.open(shards_dir .. "/oldschema.sqlite")
  odb:exec("PRAGMA user_version = 1")   -- as an older dpl's store
  odb:close()
  local fresh = tmp .. "/slurm/fresh.sqlite"
  rc, out = sh(("%s %s/experiments/results.lua --merge '%s' --db '%s'"):format(dplrun, root, dir, fresh))
  t:eq(rc, 1, out)
  t:ok(out:find("refused shard " .. shards_dir .. "/corrupt.sqlite: not a readable SQLite results store", 1, true), out)
  t:ok(out:find("refused shard " .. shards_dir .. "/foreign.sqlite: holds bapps alexnet E with a configuration no " ..
    "submission of this sweep lists", 1, true), out)
  t:ok(out:find("refused shard " .. shards_dir .. "/oldcode.sqlite: computed by another code version " ..
    "(v0.0-1-gdeadbee (dpl 0.0.1)", 1, true), out)
  t:ok(out:find("refused shard " .. shards_dir .. "/oldschema.sqlite: schema version 1, this dpl writes 3", 1, true),
    out)
  t:ok(out:find("merged 8 of 12 shard(s) into " .. fresh .. ": 8 run(s) added, 0 already there, 4 shard(s) refused",
    1, true), out)
  each_cell_once(t, fresh, "a fresh store from the shards")
  rc, out = sh(("%s %s/experiments/sweep.lua --merge --dir '%s' --db '%s' --any-code-version"):format(dplrun, root, dir,
    fresh))
  t:ok(out:find("0 run(s) added, 9 already there, 3 shard(s) refused", 1, true), out)
  each_cell_once(t, fresh, "after --any-code-version")
end)

return S

-- experiments/sweep.lua: the paper's study as one command: every (benchmark, architecture, layer) cell not yet in the
-- results store, computed here one at a time, or spread over a SLURM cluster as one job array (docs/sweep.md).
--   dplrun experiments/sweep.lua --benchmarks all --arch all --layer all                  every missing cell, here
--   dplrun experiments/sweep.lua --benchmarks superres4,bapps --quick --dry-run           the cells and what is done
--   dplrun experiments/sweep.lua --benchmarks all --slurm --partition gpu --gres gpu:1 --time 24:00:00
--   dplrun experiments/sweep.lua --status                                                 done/running/failed/pending
--   dplrun experiments/sweep.lua --merge                                                  the shards into the store
--   dplrun experiments/sweep.lua --benchmarks superres4,delineation --save-examples 4      + outputs for the analysis
-- The benchmarks' own options pass through (--weights, --device, --epochs, ...: to every selected benchmark that takes
-- them; --BENCH.option for one benchmark only, e.g. --bapps.data DIR --superres4.train DIR).
local cli = require "dpl.cli"
local results = require "dpl.results"
local sweep = require "dpl.benchmarks.sweep"
local shards = require "dpl.benchmarks.shards"
local slurm = require "dpl.benchmarks.slurm"
local json = require "dpl.json"

local NAME = "sweep.lua"
local parser = cli.parser("experiments/" .. NAME,
  "Run the study's grid of (benchmark, architecture, layer) cells: the missing ones here, one at a time, or as one " ..
  "SLURM job array.",
  "Benchmarks: " .. sweep.names() .. " (superres4/8: super-resolution x4/x8; svhn/stl10: the autoencoder benchmark " ..
  "on that dataset). Any other option goes to the benchmarks that take it (see dplrun experiments/<benchmark>.lua " ..
  "--help): --weights, --device, --epochs, ...; --BENCH.option VALUE gives it to one benchmark only (--bapps.data " ..
  "DIR, --superres4.train DIR). --quick is each benchmark's --quick (BAPPS: --limit 50). A finished cell is never " ..
  "recomputed; the sweep resumes where it stopped.")
parser:option("--benchmarks", "Comma list of benchmarks, or all (default: all).")
parser:option("--arch", "Architectures: a comma list or all (default: all).")
parser:option("--layer", "Layers: E, S, M, L, a comma list or all (default: all).")
parser:option("--db", "The main results store.", results.DEFAULT_PATH)
parser:option("--dir", "The sweep's folder: SLURM scripts, submissions, logs, shards (default: the --db folder's sweep/).")
parser:flag("--quick", "Each benchmark's short recorded configuration.")
parser:option("--save-examples", "Save the outputs of the first N test images of each cell computed (super-" ..
  "resolution, delineation) where the analysis finds them: --examples/<experiment>/<config hash>/.")
parser:option("--examples", "With --save-examples: the folder (default: examples/ beside --db; the analysis's " ..
  "--examples default too).")
parser:flag("--dry-run", "List the cells and what is done; compute nothing.")
parser:flag("--status", "A grid of done / running / queued / failed / pending cells from the store, the shards and " ..
  "SLURM (squeue/sacct when present). Without a selection: the cells of the last sweep run from --dir.")
parser:flag("--retry-failed", "Compute the failed cells again (by default a failed cell is left as failed).")
parser:flag("--merge", "Merge the shards of --dir into --db (as experiments/results.lua --merge DIR), then exit.")
parser:flag("--any-code-version", "With --merge: accept shards computed by another code version.")
parser:flag("--slurm", "Submit the missing cells as one SLURM job array (one cell per array task).")
parser:flag("--no-submit", "With --slurm: write the batch script only.")
parser:option("--partition", "SLURM partition.")
parser:option("--gres", "SLURM generic resources per task (e.g. gpu:1).")
parser:option("--time", "SLURM time limit per task (e.g. 24:00:00).")
parser:option("--cpus-per-task", "SLURM CPUs per task.")
parser:option("--mem", "SLURM memory per task (e.g. 32G).")
parser:option("--max-parallel", "At most this many array tasks at once (--array=0-N%M).")
parser:option("--account", "SLURM account.")
parser:option("--job-name", "SLURM job name.", "dpl-sweep")
parser:option("--extra", "More sbatch options, as one string (e.g. \"--qos=high --constraint=v100\").")
parser:option("--task", "(Used by the batch script) compute one array task of this submission file.")
parser:option("--task-index", "(With --task) the array index (default: $SLURM_ARRAY_TASK_ID).")

cli.main(NAME, function()
  local own = sweep.option_arity(parser)
  local mine, passed = sweep.split_args(arg, own)
  local args = cli.parse(parser, mine)
  local dir = args.dir or ((args.db:match("^(.*)/[^/]*$") or ".") .. "/sweep")

  if args.task then   -- one SLURM array task
    local index = tonumber(args.task_index or os.getenv("SLURM_ARRAY_TASK_ID") or "")
    if not index then cli.fail("--task needs $SLURM_ARRAY_TASK_ID (set by SLURM) or --task-index N") end
    os.exit(slurm.task(args.task, index) and 0 or 1)
  end

  if args.merge then
    local r = shards.merge(args.db, dir, {any_code_version = args.any_code_version})
    print(shards.describe(r, args.db))
    os.exit(#r.refused == 0 and 0 or 1)
  end

  for _, v in ipairs {"max_parallel", "cpus_per_task", "save_examples"} do
    if args[v] and not (tonumber(args[v]) and tonumber(args[v]) >= 1 and tonumber(args[v]) % 1 == 0) then
      cli.fail("--%s %s: give a positive whole number", v:gsub("_", "-"), args[v])
    end
  end
  if args.no_submit and not args.slurm then cli.fail("--no-submit goes with --slurm") end
  if args.examples and not args.save_examples then cli.fail("--examples goes with --save-examples N") end
  local examples
  if args.save_examples then
    for _, p in ipairs(passed) do
      if p.name == "--save" or p.name == "--save-limit" then
        cli.fail("%s: --save-examples saves each cell's outputs where the analysis finds them; give one of the two",
          p.given)
      end
    end
    examples = {dir = require("dpl.download").absolute(args.examples or
                  ((args.db:match("^(.*)/[^/]*$") or ".") .. "/examples")), limit = tonumber(args.save_examples)}
  end
  local slurm_opts = {"partition", "gres", "time", "cpus_per_task", "mem", "max_parallel", "account", "extra"}
  if not args.slurm then
    for _, o in ipairs(slurm_opts) do
      if args[o] then cli.fail("--%s goes with --slurm", o:gsub("_", "-")) end
    end
  end
  if args.slurm and not args.no_submit and not slurm.command_exists("sbatch") then
    cli.fail("SLURM is not installed here (no sbatch in PATH): run on the cluster's login node, without --slurm to " ..
      "compute here, or with --no-submit to write the batch script only")
  end

  -- the cells: planned from the options, or for a bare --status those of the last sweep run from this folder
  local plan
  local selection = args.benchmarks or args.arch or args.layer
  local plan_file = dir .. "/plan.json"
  if args.status and not selection and cli.exists(plan_file) then
    local ok, saved = pcall(json.decode, cli.read_file(plan_file) or "")
    if not ok or type(saved) ~= "table" or type(saved.cells) ~= "table" then
      cli.fail("%s is not a sweep plan (delete it, or give --benchmarks/--arch/--layer)", plan_file)
    end
    plan = {db = args.db, cells = saved.cells, benches = {}, missing = saved.missing or {}}
  else
    plan = sweep.plan({benchmarks = args.benchmarks, archs = args.arch, layers = args.layer, options = passed,
                       quick = args.quick, db = args.db})
  end
  for _, m in ipairs(plan.missing) do io.stderr:write(NAME, ": ", m, "\n") end
  if #plan.cells == 0 then cli.fail("no cells to run (see --benchmarks)") end
  local counts, notes = sweep.states(plan, {dir = dir})
  for _, n in ipairs(notes) do io.stderr:write(NAME, ": ", n, "\n") end

  if args.dry_run or args.status then
    print(args.status and sweep.grid(plan) or sweep.listing(plan))
    local eta = sweep.eta(plan, {retry_failed = args.retry_failed})
    print(sweep.summary(counts, #plan.cells) .. (eta ~= "" and ("; " .. eta) or ""))
    os.exit(0)
  end

  -- the plan of this run, for a later bare --status
  os.execute("mkdir -p " .. slurm.quote(dir))
  local saved = json.array({})
  for _, c in ipairs(plan.cells) do
    saved[#saved + 1] = {bench = c.bench, experiment = c.experiment, arch = c.arch, layer = c.layer, hash = c.hash}
  end
  cli.write_file(plan_file, json.encode({db = args.db, cells = saved, missing = json.array(plan.missing)},
    {indent = " "}) .. "\n", "--dir")

  if args.slurm then
    local todo = {}
    for _, c in ipairs(plan.cells) do
      if c.state == "pending" or (c.state == "failed" and args.retry_failed) then todo[#todo + 1] = c end
    end
    sweep.log("%s", sweep.summary(counts, #plan.cells))
    if #todo == 0 then
      sweep.log("nothing to submit: every cell is done, running or queued%s", counts.failed > 0 and
        (" (%d failed: --retry-failed submits them again)"):format(counts.failed) or "")
      os.exit(0)
    end
    os.execute(("mkdir -p %s %s %s"):format(slurm.quote(dir .. "/submissions"), slurm.quote(dir .. "/logs"),
      slurm.quote(dir .. "/shards")))
    local stamp = os.date("!%Y%m%d-%H%M%S") .. ("-%d"):format(results.pid())
    local sub_path = require("dpl.download").absolute(("%s/submissions/%s.json"):format(dir, stamp))
    local sub = slurm.submission(plan, todo, examples)
    local script = slurm.batch_script(sub_path, #todo, {
      dir = require("dpl.download").absolute(dir), job_name = args.job_name, partition = args.partition,
      gres = args.gres, time = args.time, cpus_per_task = args.cpus_per_task, mem = args.mem,
      max_parallel = args.max_parallel, account = args.account, extra = args.extra,
      cwd = os.getenv("PWD") or ".", dplrun = slurm.dplrun_path(),
      script = require("dpl.download").absolute(arg[0])})
    local script_path = ("%s/submissions/%s.sh"):format(dir, stamp)
    cli.write_file(script_path, script, "--dir")
    if args.no_submit then
      cli.write_file(sub_path, json.encode(sub, {indent = " "}) .. "\n", "--dir")
      sweep.log("%d array task(s) written to %s (submit with: sbatch %s)", #todo, script_path, script_path)
      os.exit(0)
    end
    -- the submission file first: the tasks read it as soon as SLURM starts them; then the job id is added to it
    cli.write_file(sub_path, json.encode(sub, {indent = " "}) .. "\n", "--dir")
    local p = io.popen("sbatch --parsable " .. slurm.quote(script_path) .. " 2>&1")
    local out = p:read("*a")
    p:close()
    local job = out:match("^%s*(%d+)")
    if not job then
      os.remove(script_path)
      os.remove(sub_path)
      cli.fail("sbatch refused the job: %s", (out:gsub("%s+$", ""):gsub("\n", " ")))
    end
    sub.job_id, sub.script = tonumber(job), script_path
    cli.write_file(sub_path, json.encode(sub, {indent = " "}) .. "\n", "--dir")
    sweep.log("submitted job array %s: %d task(s)%s; shards in %s/shards; follow it with: dplrun %s --status --db %s%s" ..
      "; then merge the shards: dplrun experiments/results.lua --merge %s --db %s", job, #todo, args.max_parallel and
      (", at most %s at once"):format(args.max_parallel) or "", dir, arg[0], args.db, args.dir and (" --dir " .. dir) or "",
      dir, args.db)
    os.exit(0)
  end

  local computed, failed, n = sweep.run_here(plan, {dir = dir, retry_failed = args.retry_failed, examples = examples})
  counts = sweep.states(plan, {dir = dir})
  sweep.log("%d cell(s) run here: %d computed, %d failed; %s", n, computed, failed, sweep.summary(counts, #plan.cells))
  os.exit(failed == 0 and 0 or 1)
end)

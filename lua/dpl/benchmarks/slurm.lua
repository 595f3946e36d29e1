-- dpl.benchmarks.slurm: a sweep (lua/dpl/benchmarks/sweep.lua) on a SLURM cluster: the batch script of one job array,
-- the submission file its tasks read, one array task, and SLURM's view of the tasks (squeue, sacct). docs/sweep.md.
--
-- A submission is DIR/submissions/<stamp>.json: the cells in array-index order (benchmark, experiment, arch, layer,
-- configuration hash), each benchmark's options as the sweep parsed them, the code version and the job id; its
-- batch script DIR/submissions/<stamp>.sh runs `dplrun experiments/sweep.lua --task <that file>` in every array task.
-- A task computes its cell into its own shard (lua/dpl/benchmarks/shards.lua), with the cell's checkpoints beside it.
local cli = require "dpl.cli"
local json = require "dpl.json"
local results = require "dpl.results"
local runner = require "dpl.benchmarks.runner"
local shards = require "dpl.benchmarks.shards"

local M = {}


local function log(fmt, ...) io.stderr:write("sweep.lua: ", fmt:format(...), "\n") end

-- the SLURM job ids of the sweep's submissions, and per job the cells by array index
function M.submissions(dir)
  local subs = {}
  for _, path in ipairs(shards.list(dir .. "/submissions", "%.json$")) do
    local text = cli.read_file(path)
    local ok, s = pcall(json.decode, text or "")
    if ok and type(s) == "table" then s.path = path; subs[#subs + 1] = s end
  end
  return subs
end

function M.command_exists(name)
  return os.execute(("command -v %s >/dev/null 2>&1"):format(name)) == 0
end

local function lines_of(cmd)
  local p = io.popen(cmd .. " 2>/dev/null")
  local out = {}
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  return out
end

-- SLURM's view of the sweep's array tasks: job id .. "_" .. index -> {state =, source = "squeue" | "sacct"}
function M.tasks(subs)
  local tasks, ids = {}, {}
  for _, s in ipairs(subs) do if s.job_id then ids[#ids + 1] = tostring(s.job_id) end end
  if #ids == 0 then return tasks, nil end
  local notes = {}
  if M.command_exists("sacct") then   -- ended tasks (with accounting; "storage is disabled" otherwise: nothing)
    for _, l in ipairs(lines_of(("sacct -n -P -X -j %s -o JobID,State"):format(table.concat(ids, ",")))) do
      local job, idx, state = l:match("^(%d+)_(%d+)|(%S+)")
      if job then tasks[job .. "_" .. idx] = {state = state, source = "sacct"} end
    end
  end
  if M.command_exists("squeue") then  -- queued and running tasks (squeue knows them best while they live)
    local known = {}
    for _, id in ipairs(ids) do known[id] = true end
    for _, l in ipairs(lines_of("squeue -h -r -o '%F|%K|%T'")) do
      local job, idx, state = l:match("^(%d+)|(%d+)|(%S+)")
      if job and known[job] then tasks[job .. "_" .. idx] = {state = state, source = "squeue"} end
    end
  else
    notes[#notes + 1] = "squeue not found: SLURM's queue not consulted"
  end
  return tasks, notes
end

-- the squeue states of a task that is not over: running or queued
M.ACTIVE = {RUNNING = "running", COMPLETING = "running", CONFIGURING = "running", PENDING = "queued",
            REQUEUED = "queued", RESIZING = "running", SUSPENDED = "queued"}

-- The absolute path of the dplrun running this script (the lowest negative index of arg).
function M.dplrun_path()
  local i = 0
  while arg and arg[i - 1] do i = i - 1 end
  local exe = arg and arg[i] or "dplrun"
  if not exe:find("/") then
    local p = io.popen("command -v '" .. exe:gsub("'", "'\\''") .. "' 2>/dev/null")
    local found = p:read("*l")
    p:close()
    return found or exe
  end
  return require("dpl.download").absolute(exe)
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
M.quote = q

-- The batch script of a submission: one array task per cell; each runs `dplrun experiments/sweep.lua --task FILE`,
-- which takes its cell from $SLURM_ARRAY_TASK_ID. opts: partition, gres, time, cpus_per_task, mem, max_parallel,
-- account, extra (more sbatch options, e.g. "--qos=high --constraint=v100"), job_name, script (sweep.lua's path),
-- dplrun, cwd.
function M.batch_script(sub_path, n, opts)
  local lines = {"#!/bin/sh",
    "# dpl sweep: one array task per cell of " .. sub_path .. " (written by experiments/sweep.lua --slurm)",
    ("#SBATCH --job-name=%s"):format(opts.job_name or "dpl-sweep"),
    ("#SBATCH --array=0-%d%s"):format(n - 1, opts.max_parallel and ("%" .. opts.max_parallel) or ""),
    ("#SBATCH --output=%s/logs/%%A_%%a.out"):format(opts.dir),
    "#SBATCH --requeue",   -- a preempted task is requeued and resumes from its checkpoint
  }
  local function add(flag, v) if v then lines[#lines + 1] = ("#SBATCH --%s=%s"):format(flag, v) end end
  add("partition", opts.partition)
  add("gres", opts.gres)
  add("time", opts.time)
  add("cpus-per-task", opts.cpus_per_task)
  add("mem", opts.mem)
  add("account", opts.account)
  if opts.extra then
    for w in opts.extra:gmatch("%S+") do
      if w:match("^%-") then lines[#lines + 1] = "#SBATCH " .. w
      else lines[#lines] = lines[#lines] .. " " .. w end   -- "--qos high": the value joins its option
    end
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "cd " .. q(opts.cwd)
  lines[#lines + 1] = ("exec %s %s --task %s"):format(q(opts.dplrun), q(opts.script), q(sub_path))
  return table.concat(lines, "\n") .. "\n"
end

-- The description of a submission: the cells (in array-index order), each benchmark's options, the code version, and
-- with examples = {dir = (absolute), limit =} the --save-examples of its cells (sweep.cell_args).
function M.submission(plan, cells, examples)
  local benches, bseen = {}, {}
  local list = json.array({})
  for _, c in ipairs(cells) do
    local b = plan.benches[c.b]
    if not bseen[c.bench] then
      bseen[c.bench] = true
      benches[c.bench] = {module = b.entry.module, experiment = b.B.name, options = json.array(b.tokens)}
    end
    list[#list + 1] = {bench = c.bench, experiment = c.experiment, arch = c.arch, layer = c.layer, hash = c.hash}
  end
  return {code_version = results.code_version(), created = results.iso_time(results.now()), db = plan.db,
          benchmarks = benches, cells = list, examples = examples}
end

-- ---- one array task --------------------------------------------------------------------------------------------------
-- Computes cell `index` (0-based, as $SLURM_ARRAY_TASK_ID) of the submission file into its shard. The cell's
-- options are parsed again by its benchmark's parser and the cell prepared by the runner; its configuration hash must
-- be the submitted one (else the code or the data changed since: resubmit). The shard belongs to this one cell, so a
-- claim left in it by an earlier task of the cell (killed by the scheduler, maybe on another node) is taken over.
-- Returns true when the cell finished.
function M.task(sub_path, index)
  local text = cli.read_file(sub_path)
  if not text then cli.fail("--task %s: no such file", sub_path) end
  local ok, sub = pcall(json.decode, text)
  if not ok or type(sub) ~= "table" or type(sub.cells) ~= "table" then
    cli.fail("--task %s: not a sweep submission file", sub_path)
  end
  local c = sub.cells[index + 1]
  if not c then cli.fail("--task %s: no cell at array index %d (%d cells)", sub_path, index, #sub.cells) end
  local sweep = require "dpl.benchmarks.sweep"   -- (it requires this module: loaded here, not at the top)
  local bench = sub.benchmarks[c.bench]
  local entry = sweep.BY_NAME[c.bench]
  local B, why = entry and sweep.module(entry)
  if not B then cli.fail("%s", why or ("unknown benchmark " .. tostring(c.bench))) end
  local dir = sub_path:match("^(.*)/submissions/[^/]+$") or "."
  local shard = shards.path(dir, c.experiment, c.hash)
  -- the cell's architecture only (its checkpoint alone is hashed), everything else as submitted
  local argv = {"--db", shard}
  local toks = bench.options
  local i = 1
  while i <= #toks do
    if toks[i] == "--arch" then argv[#argv + 1] = "--arch"; argv[#argv + 1] = c.arch or "all"; i = i + 2
    else argv[#argv + 1] = toks[i]; i = i + 1 end
  end
  local args = cli.parse(runner.parser(B), argv)
  os.execute("mkdir -p " .. q(dir .. "/shards"))
  local db = results.open(shard)
  local pok, ctx, cells = pcall(runner.prepare, B, args, db)
  if not pok then db:close(); cli.fail("%s: %s", c.bench, cli.message(ctx)) end
  local cell
  for _, x in ipairs(cells) do if x.hash == c.hash and x.layer == c.layer then cell = x end end
  if not cell then
    db:close()
    cli.fail("cell %s %s %s: its configuration is not the submitted one any more (the code, the data or the weights " ..
      "changed since the sweep was submitted): submit the sweep again", c.bench, c.arch or "-", c.layer)
  end
  for _, claim in ipairs(db:claims()) do
    log("taking over the claim of pid %d on %s (an earlier task of this cell, since %s)", claim.pid, claim.host,
      claim.started)
  end
  db:query("DELETE FROM claims")
  db:close()
  log("array task %d: %s %s %s -> %s", index, c.bench, c.arch or "-", c.layer, shard)
  cell.index, cell.total = index + 1, #sub.cells
  local _, _, nfailed = runner.run(B, sweep.cell_args(args, c, sub.examples), {ctx = ctx, cells = {cell}})
  return (nfailed or 0) == 0
end

return M

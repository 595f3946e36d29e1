-- experiments/results.lua - lists, filters and exports the runs in the results store (lua/dpl/results.lua).
--   dplrun experiments/results.lua                                  every finished run, one line each
--   dplrun experiments/results.lua --experiment bapps --table        the paper's Table V from the stored runs
--   dplrun experiments/results.lua --experiment bapps --table --config 3f2a9c1e    ... of another configuration
--   dplrun experiments/results.lua --experiment bapps --detail       per-subset scores
--   dplrun experiments/results.lua --arch alexnet --csv out.csv      CSV: architecture, layer, attributes, scores
--   dplrun experiments/results.lua --status any                      failed runs too
--   dplrun experiments/results.lua --claims                          what is being computed now, by which process
--   dplrun experiments/results.lua --merge results/sweep             a SLURM sweep's shards into the store (docs/sweep.md)
-- Only the newest run of each configuration is shown unless --all-runs is given. A table combines the runs of one
-- configuration (data, limit, distance, weights kind: lua/dpl/benchmarks/report.lua): by default the full-data runs
-- with pretrained weights; it says which above it and lists the other configurations (--config ID, --all-configs).
local cli = require "dpl.cli"
local results = require "dpl.results"
local report = require "dpl.benchmarks.report"

local parser = cli.parser("experiments/results.lua", "List, filter and export stored experiment results.")
parser:option("--db", "Results database.", results.DEFAULT_PATH)
parser:option("--experiment", "Only this experiment (e.g. bapps).")
parser:option("--arch", "Only this architecture.")
parser:option("--layer", "Only this layer (E, S, M, L).")
parser:option("--status", "finished, failed or any.", "finished"):choices({"finished", "failed", "any"})
parser:flag("--all-runs", "Every run, not only the newest of each configuration.")
parser:flag("--table", "Print the benchmark's table (Table V for bapps) of one configuration (see --config).")
parser:option("--config", "With --table: the configuration to show, by the id printed above each table (default: " ..
  "full data, pretrained weights).")
parser:flag("--all-configs", "With --table: one table per configuration.")
parser:flag("--detail", "Print per-subset scores.")
parser:option("--csv", "Write the selected runs as CSV to this file ('-' for stdout).")
parser:flag("--claims", "List the cells being computed (claimed by a process), and whether the holder is alive.")
parser:option("--merge", "Merge the SQLite shards of a sweep folder (DIR/shards/*.sqlite, written by SLURM array tasks of " ..
  "experiments/sweep.lua) into --db, in one transaction; a cell merged twice is one row; a corrupt shard, or one of " ..
  "another configuration or code version, is refused by name and the rest merged (exit 1).")
parser:flag("--any-code-version", "With --merge: accept shards computed by another code version.")
local function fail(msg)
  io.stderr:write("results.lua: ", msg, "\n")
  os.exit(2)
end
local ok_args, args = pcall(cli.parse, parser)
if not ok_args then fail(cli.message(args)) end
if (args.config or args.all_configs) and not args.table then fail("--config and --all-configs go with --table") end
if args.any_code_version and not args.merge then fail("--any-code-version goes with --merge") end
if args.merge then
  local shards = require "dpl.benchmarks.shards"
  local mok, r = pcall(shards.merge, args.db, args.merge, {any_code_version = args.any_code_version})
  if not mok then fail(cli.message(r)) end
  print(shards.describe(r, args.db))
  os.exit(#r.refused == 0 and 0 or 1)
end

-- the output file is opened before the work, so that a wrong path fails at once
local csv_file
if args.csv and args.csv ~= "-" then
  local err
  csv_file, err = io.open(args.csv, "w")
  if not csv_file then fail(("--csv %s: cannot write it (%s); give a file in an existing folder"):format(args.csv, err)) end
end
local ok, db = pcall(results.open, args.db, {readonly = true})
if not ok then fail(tostring(db)) end
local runs = db:runs({experiment = args.experiment, arch = args.arch, layer = args.layer, status = args.status,
                      latest = not args.all_runs})
local claims = args.claims and db:claims(args.experiment) or nil
db:close()

if claims then
  local rows = {}
  for _, c in ipairs(claims) do
    rows[#rows + 1] = {c.experiment, c.label or c.config_hash:sub(1, 12), c.host, c.pid, c.started,
                       ("%.0f s ago"):format(results.now() - c.heartbeat), c.alive and "alive" or "stale (taken over by the next run)"}
  end
  print(report.format_table({"experiment", "cell", "host", "pid", "since", "heartbeat", "holder"}, rows))
  io.stderr:write(("%d cells being computed in %s\n"):format(#claims, args.db))
  os.exit(0)
end

local function benchmark(exp)
  local ok, B = pcall(require, "dpl.benchmarks." .. exp)
  return ok and type(B) == "table" and B or nil
end

if args.csv then
  local B = args.experiment and benchmark(args.experiment)
  local text = report.csv(runs, {scores = B and B.scores})
  if args.csv == "-" then io.write(text)
  else
    csv_file:write(text)
    csv_file:close()
    io.stderr:write(("results.lua: %d runs -> %s\n"):format(#runs, args.csv))
  end
end

-- the runs of each experiment, and its benchmark module (lua/dpl/benchmarks/<experiment>.lua) when there is one
local experiments, by_experiment = {}, {}
for _, r in ipairs(runs) do
  if not by_experiment[r.experiment] then
    by_experiment[r.experiment] = {}
    experiments[#experiments + 1] = r.experiment
  end
  table.insert(by_experiment[r.experiment], r)
end
table.sort(experiments)
for _, exp in ipairs(experiments) do
  local B = benchmark(exp)
  if args.table then
    if B and B.table then
      print(("%s: %s"):format(exp, B.table_title or B.description))
      local ok, text = pcall(B.table, by_experiment[exp], {config = args.config, all_configs = args.all_configs})
      if not ok then fail(tostring(text)) end
      print(text)
    else
      print(("%s: no table layout for this experiment yet (use the list or --csv)"):format(exp))
    end
  end
  if args.detail and B and B.detail then print(B.detail(by_experiment[exp])) end
end
if not args.table and not args.detail and not args.csv then
  local rows = {}
  for _, r in ipairs(runs) do
    local keys = {}
    for k in pairs(r.scores) do keys[#keys + 1] = k end
    table.sort(keys)
    local shown = {}
    for _, k in ipairs(keys) do
      if k:match("mean$") or k:match("pooled$") or #keys <= 4 then shown[#shown + 1] = ("%s=%.4f"):format(k, r.scores[k]) end
    end
    local kind = report.weights_kind(r.arch, r.weights_sha256, r.weights)
    rows[#rows + 1] = {r.id, r.experiment, r.arch or "", r.layer or "", kind:gsub("^untrained", "UNTRAINED"),
                       r.status, r.started or "",
                       r.seconds and report.format_time(r.seconds) or "", r.device or "",
                       r.status == "failed" and (r.error or ""):sub(1, 60) or table.concat(shown, " ")}
  end
  print(report.format_table({"id", "experiment", "arch", "layer", "weights", "status", "started", "time", "device", "scores"}, rows))
  io.stderr:write(("%d runs in %s\n"):format(#runs, args.db))
end

-- dpl.benchmarks.sweep: the paper's study as one grid of cells, run here one cell at a time or spread over a SLURM
-- cluster as one job array (experiments/sweep.lua is the command line; docs/sweep.md the user's guide).
--
-- A cell is (benchmark, architecture, layer, configuration). The sweep's benchmarks are names over the benchmark
-- modules of the shared runner (lua/dpl/benchmarks/runner.lua): superres4 and superres8 are the super-resolution
-- benchmark with --scale 4 and 8, svhn and stl10 the autoencoder benchmark with --dataset svhn and stl10. A cell's
-- identity is the runner's configuration hash (runner.prepare): the sweep skips a cell exactly when the runner would,
-- and computes it through the benchmark's own library code (runner.run), never by shelling out to its script.
--
--   local sweep = require "dpl.benchmarks.sweep"
--   local plan = sweep.plan({benchmarks = {"bapps", "superres4"}, archs = "alexnet,vgg16", layers = "all",
--                            options = {"--bapps.data", "data/BAPPS", "--quick"}, db = "results/dpl.sqlite"})
--   local states = sweep.states(plan)               -- done / running / queued / failed / pending per cell
--   sweep.run_here(plan, {retry_failed = false})     -- every missing cell, one at a time, into plan.db
--
-- On SLURM (docs/sweep.md): dpl.benchmarks.slurm writes DIR/submissions/<stamp>.json (the cells, each benchmark's
-- options, the code version) and a batch script with one array task per missing cell; each task (slurm.task)
-- computes its cell into its own SQLite shard DIR/shards/<experiment>-<hash>.sqlite (SQLite must not have many
-- writers over a network filesystem), with its checkpoints in DIR/shards/<experiment>/<hash>/ so that a requeued or
-- resubmitted task resumes; dpl.benchmarks.shards merges the shards into the main store.
local cli = require "dpl.cli"
local results = require "dpl.results"
local runner = require "dpl.benchmarks.runner"
local report = require "dpl.benchmarks.report"
local shards = require "dpl.benchmarks.shards"
local slurm = require "dpl.benchmarks.slurm"

local M = {}


-- The sweep's benchmarks in the paper's order: the name --benchmarks takes, the benchmark module
-- (lua/dpl/benchmarks/<module>.lua), the options the name fixes, what --quick means for a benchmark without a
-- --quick of its own (BAPPS trains nothing; its quick cell scores the first 50 items of every val subset), and
-- whether its cells save example outputs with --save-examples (its --save and --save-limit; the analysis draws them).
M.BENCHMARKS = {
  {name = "bapps", module = "bapps", quick = {"--limit", "50"}},
  {name = "superres4", module = "superres", fixed = {"--scale", "4"}, examples = true},
  {name = "superres8", module = "superres", fixed = {"--scale", "8"}, examples = true},
  {name = "delineation", module = "delineation", examples = true},
  {name = "svhn", module = "autoencoder", fixed = {"--dataset", "svhn"}},
  {name = "stl10", module = "autoencoder", fixed = {"--dataset", "stl10"}},
}
local BY_NAME = {}
for _, b in ipairs(M.BENCHMARKS) do BY_NAME[b.name] = b end
M.BY_NAME = BY_NAME

-- options the sweep sets itself for every cell, so a benchmark never sees them from the user
local RESERVED = {["--arch"] = "--arch", ["--layer"] = "--layer", ["--db"] = "--db",
                  ["--json"] = "the results store (experiments/results.lua --csv)",
                  ["--force"] = "--retry-failed (a finished cell is never recomputed by a sweep)",
                  ["--help"] = "--help", ["-h"] = "--help", ["--traceback"] = "--traceback"}

-- The benchmark module of a sweep entry, or nil and the one-line reason ("benchmark delineation is not in this
-- version of dpl") when this dpl has no such module. An error inside an existing module is raised as it is.
function M.module(entry)
  local name = "dpl.benchmarks." .. entry.module
  if package.loaded[name] then return package.loaded[name] end
  if not package.searchpath(name, package.path) then
    return nil, ("benchmark %s is not in this version of dpl (no lua/dpl/benchmarks/%s.lua)"):format(entry.name,
      entry.module)
  end
  local ok, B = pcall(require, name)
  if not ok then
    return nil, ("benchmark %s cannot be loaded: %s"):format(entry.name, cli.message(B))
  end
  return B
end

-- the options of an argparse parser: name -> 0 (a flag) or 1 (takes a value). lua-argparse keeps a parser's options
-- in parser._options, each with its names in _aliases and its largest argument count in _maxargs.
function M.option_arity(parser)
  local t = {}
  for _, o in ipairs(parser._options or {}) do
    for _, a in ipairs(o._aliases or {}) do t[a] = (o._maxargs or 1) == 0 and 0 or 1 end
  end
  return t
end

-- "--x=v" -> "--x", "v"; "--x" -> "--x", nil
local function split_eq(tok)
  local name, value = tok:match("^(%-%-[^=]+)=(.*)$")
  if name then return name, value end
  return tok, nil
end

-- Splits a command line into the sweep's own tokens (the options of `own`, an arity table) and the benchmarks'
-- options: a list of {name =, value =, only = <benchmark name> for --BENCH.option}. The arity of a benchmark option is
-- taken from the parsers of the benchmarks present in this dpl (every one of them, since --benchmarks may come
-- later on the line); an option that is a flag in one and takes a value in another must be given as --BENCH.option.
function M.split_args(argv, own)
  local arity = {}          -- option -> {bench name -> 0/1}
  local parsers = {}
  for _, entry in ipairs(M.BENCHMARKS) do
    local B = M.module(entry)
    if B then
      parsers[entry.name] = M.option_arity(runner.parser(B))
      for name, n in pairs(parsers[entry.name]) do
        arity[name] = arity[name] or {}
        arity[name][entry.name] = n
      end
    end
  end
  local mine, passed = {}, {}
  local i = 1
  while i <= #argv do
    local tok = argv[i]
    local name, value = split_eq(tok)
    if own[name] then
      mine[#mine + 1] = tok
      if own[name] == 1 and not value then
        if argv[i + 1] == nil then cli.fail("%s needs a value (see --help)", name) end
        mine[#mine + 1] = argv[i + 1]
        i = i + 1
      end
    elseif name:match("^%-%-") then
      local bench, opt = name:match("^%-%-([%w_]+)%.([%w_%-]+)$")
      local n
      if bench then
        if not BY_NAME[bench] then
          cli.fail("%s: unknown benchmark '%s' (%s)", name, bench, M.names())
        end
        opt = "--" .. opt
        if not parsers[bench] then
          local _, why = M.module(BY_NAME[bench])
          cli.fail("%s: %s", name, why)
        end
        n = parsers[bench][opt]
        if not n then cli.fail("%s: %s has no option %s (see dplrun experiments/%s.lua --help)", name, bench, opt,
          BY_NAME[bench].module) end
      else
        opt = name
        local kinds = {}
        for _, k in pairs(arity[opt] or {}) do kinds[k] = true end
        if kinds[0] and kinds[1] then
          cli.fail("%s is a flag for some benchmarks and takes a value for others: give it as --BENCH.%s", opt, opt:sub(3))
        end
        n = kinds[0] and 0 or 1   -- unknown options are checked against the selected benchmarks in M.plan
      end
      if RESERVED[opt] then
        cli.fail("%s is set by the sweep for every cell (use the sweep's %s)", name, RESERVED[opt])
      end
      if n == 1 and not value then
        if argv[i + 1] == nil then cli.fail("%s needs a value", name) end
        value = argv[i + 1]
        i = i + 1
      elseif n == 0 and value then
        cli.fail("%s is a flag: it takes no value", opt)
      end
      passed[#passed + 1] = {name = opt, value = value, only = bench, given = name}
    else
      cli.fail("unexpected argument '%s' (options start with --; see --help)", tok)
    end
    i = i + 1
  end
  return mine, passed
end

function M.names()
  local n = {}
  for _, b in ipairs(M.BENCHMARKS) do n[#n + 1] = b.name end
  return table.concat(n, ", ") .. " or all"
end

-- "a,b" or "all" -> the sweep's benchmark entries, checked
function M.select(spec)
  local list = {}
  if spec == nil or spec == "all" then
    for _, b in ipairs(M.BENCHMARKS) do list[#list + 1] = b end
    return list
  end
  local seen = {}
  for w in tostring(spec):gmatch("[^,%s]+") do
    if w == "all" then return M.select("all") end
    local b = BY_NAME[w]
    if not b then cli.fail("--benchmarks: unknown benchmark '%s' (%s)", w, M.names()) end
    if not seen[w] then list[#list + 1] = b; seen[w] = true end
  end
  if #list == 0 then cli.fail("--benchmarks: empty list (%s)", M.names()) end
  return list
end

-- the command-line tokens of one benchmark's cells (without --db): the sweep's --arch/--layer, the options the
-- benchmark name fixes, --quick, and the passed options this benchmark takes
local function bench_tokens(entry, B, opts, passed)
  local known = M.option_arity(runner.parser(B))
  local toks = {"--arch", opts.archs or "all", "--layer", opts.layers or "all"}
  local fixed = {}
  for i = 1, #(entry.fixed or {}), 2 do
    fixed[entry.fixed[i]] = true
    toks[#toks + 1], toks[#toks + 2] = entry.fixed[i], entry.fixed[i + 1]
  end
  local given = {}
  for _, p in ipairs(passed) do
    if (p.only == nil or p.only == entry.name) and known[p.name] then
      if fixed[p.name] then
        cli.fail("%s is set by the benchmark name %s (the sweep's names: %s)", p.given, entry.name, M.names())
      end
      given[p.name] = true
      toks[#toks + 1] = p.name
      if p.value then toks[#toks + 1] = p.value end
    end
  end
  if opts.quick then
    if known["--quick"] then
      if not given["--quick"] then toks[#toks + 1] = "--quick" end
    elseif entry.quick and not given[entry.quick[1]] then
      for _, t in ipairs(entry.quick) do toks[#toks + 1] = t end
    end
  end
  return toks
end

-- The cells of a sweep. opts: benchmarks (a --benchmarks value), archs, layers (the runner's --arch/--layer values),
-- options (the benchmarks' options: the list split_args gives), quick, db (the main store). Every benchmark's options
-- are parsed by its own parser and its cells prepared by the runner (data opened, weights found and hashed), so a
-- missing file or a bad value is found now, before the first cell. Returns the plan: {db =, benches = {{entry =, B =,
-- args =, ctx =, tokens =}}, cells = {{bench =, experiment =, arch =, layer =, hash =, key =, runner_cell =,
-- b = <index in benches>}}, missing = {"benchmark X is not in this version of dpl", ...}}.
function M.plan(opts)
  local plan = {db = opts.db or results.DEFAULT_PATH, benches = {}, cells = {}, missing = {}}
  local passed = opts.options or {}
  local selected = M.select(opts.benchmarks)
  -- every passed option must be taken by at least one selected benchmark
  local taken = {}
  local usable = {}
  for _, entry in ipairs(selected) do
    local B, why = M.module(entry)
    if B then
      usable[#usable + 1] = {entry = entry, B = B}
      local known = M.option_arity(runner.parser(B))
      for _, p in ipairs(passed) do
        if (p.only == nil or p.only == entry.name) and known[p.name] then taken[p] = true end
      end
    else
      plan.missing[#plan.missing + 1] = why
    end
  end
  for _, p in ipairs(passed) do
    if not taken[p] then
      if p.only then cli.fail("%s: %s is not among --benchmarks", p.given, p.only) end
      cli.fail("%s: neither the sweep nor a selected benchmark takes this option (see --help, and dplrun " ..
        "experiments/<benchmark>.lua --help)", p.given)
    end
  end
  -- the store caches the weights' hashes; opened at the first hash, so that a bad option creates no store
  local db
  local lazy_db = setmetatable({}, {__index = function(_, method)
    return function(_, ...)
      db = db or results.open(plan.db)
      return db[method](db, ...)
    end
  end})
  local ok, err = pcall(function()
    for _, u in ipairs(usable) do
      local toks = bench_tokens(u.entry, u.B, opts, passed)
      local argv = {"--db", plan.db}
      for _, t in ipairs(toks) do argv[#argv + 1] = t end
      local pok, args = pcall(cli.parse, runner.parser(u.B), argv)
      if not pok then cli.fail("%s: %s", u.entry.name, cli.message(args)) end
      local rok, ctx, cells = pcall(runner.prepare, u.B, args, lazy_db)
      if not rok then cli.fail("%s: %s", u.entry.name, cli.message(ctx)) end
      local b = {entry = u.entry, B = u.B, args = args, ctx = ctx, tokens = toks}
      plan.benches[#plan.benches + 1] = b
      for _, c in ipairs(cells) do
        plan.cells[#plan.cells + 1] = {bench = u.entry.name, experiment = u.B.name, arch = c.arch, layer = c.layer,
                                       hash = c.hash, key = ("%s %s %s"):format(u.entry.name, c.arch or "-", c.layer),
                                       runner_cell = c, b = #plan.benches}
      end
    end
  end)
  if db then db:close() end
  if not ok then error(err, 0) end
  return plan
end

-- ---- the state of each cell --------------------------------------------------------------------------------------
-- What one results store (the main one or a shard) says about the cells: by experiment .. hash, the finished run
-- (id, seconds), the newest failed run (error), a live claim (host, pid).
local function store_facts(path, facts, label)
  local ok, db = pcall(results.open, path, {readonly = true})
  if not ok then return nil, cli.message(db) end
  local rok, err = pcall(function()
    for _, r in ipairs(db:query("SELECT id, experiment, config_hash, status, seconds, error, ended FROM runs ORDER BY id")) do
      local k = r.experiment .. " " .. r.config_hash
      local f = facts[k] or {}
      facts[k] = f
      if r.status == "finished" then
        if not f.finished then f.finished = {id = r.id, seconds = r.seconds, ended = r.ended, store = label} end
      else
        f.failed = {id = r.id, error = r.error, ended = r.ended, store = label}
      end
    end
    for _, c in ipairs(db:claims()) do
      if c.alive then
        local k = c.experiment .. " " .. c.config_hash
        facts[k] = facts[k] or {}
        facts[k].claim = c
      end
    end
  end)
  db:close()
  if not rok then return nil, cli.message(err) end
  return true
end

-- The state of every cell of the plan: cell.state = "done" | "running" | "queued" | "failed" | "pending", with
-- cell.run (the finished run: id, seconds, store), cell.failure (error text), cell.where (claim holder or SLURM task).
-- Reads opts.db (or plan.db), every shard under opts.dir and, when there are submissions, squeue/sacct.
-- Returns counts by state and notes (unreadable shards, ...).
function M.states(plan, opts)
  opts = opts or {}
  local facts, notes = {}, {}
  local dbpath = opts.db or plan.db
  if cli.exists(dbpath) then
    local ok, why = store_facts(dbpath, facts, "store")
    if not ok then notes[#notes + 1] = ("%s: %s"):format(dbpath, why) end
  end
  local dir = opts.dir
  if dir then
    for _, path in ipairs(shards.list(dir .. "/shards", "%.sqlite$")) do
      local ok, why = store_facts(path, facts, "shard")
      if not ok then notes[#notes + 1] = ("shard %s is unreadable: %s"):format(path, why) end
    end
  end
  -- SLURM: which array task computes which cell
  local by_task = {}
  if dir then
    local subs = slurm.submissions(dir)
    local tasks, snotes = slurm.tasks(subs)
    for _, n in ipairs(snotes or {}) do notes[#notes + 1] = n end
    for _, s in ipairs(subs) do
      for i, c in ipairs(s.cells or {}) do
        local t = s.job_id and tasks[tostring(s.job_id) .. "_" .. (i - 1)]
        if t then
          local k = c.experiment .. " " .. c.hash
          local prev = by_task[k]
          -- the newest submission's task decides (an old job's TIMEOUT does not hide a new queued one)
          if not prev or slurm.ACTIVE[t.state] or not slurm.ACTIVE[prev.state] then
            by_task[k] = {state = t.state, task = ("%s_%d"):format(s.job_id, i - 1)}
          end
        end
      end
    end
  end
  local counts = {done = 0, running = 0, queued = 0, failed = 0, pending = 0}
  for _, cell in ipairs(plan.cells) do
    local k = cell.experiment .. " " .. cell.hash
    local f = facts[k] or {}
    local t = by_task[k]
    cell.run, cell.failure, cell.where = f.finished, f.failed and f.failed.error, nil
    if f.finished then cell.state = "done"
    elseif f.claim then
      cell.state, cell.where = "running", ("pid %d on %s"):format(f.claim.pid, f.claim.host)
    elseif t and slurm.ACTIVE[t.state] then
      cell.state, cell.where = slurm.ACTIVE[t.state], "SLURM task " .. t.task
    elseif f.failed then cell.state = "failed"
    elseif t and t.state ~= "COMPLETED" then
      cell.state, cell.failure = "failed", ("SLURM task %s ended %s"):format(t.task, t.state)
    else cell.state = "pending" end
    counts[cell.state] = counts[cell.state] + 1
  end
  return counts, notes
end

-- Mean seconds of a finished cell per benchmark (from the finished cells of the plan), for the ETA.
function M.cell_seconds(plan)
  local sum, n = {}, {}
  for _, c in ipairs(plan.cells) do
    if c.run and c.run.seconds then
      sum[c.bench] = (sum[c.bench] or 0) + c.run.seconds
      n[c.bench] = (n[c.bench] or 0) + 1
    end
  end
  local mean = {}
  for b, s in pairs(sum) do mean[b] = s / n[b] end
  return mean
end

local function clock(s)
  s = math.floor(s + 0.5)
  if s >= 86400 then return ("%dd %02dh"):format(s / 86400, (s % 86400) / 3600) end
  if s >= 3600 then return ("%dh %02dm"):format(s / 3600, (s % 3600) / 60) end
  if s >= 60 then return ("%dm %02ds"):format(s / 60, s % 60) end
  return ("%ds"):format(s)
end
M.clock = clock

-- "ETA 1h 20m" for the cells still to compute (pending and, with retry, failed), from the mean time of the finished
-- cells of each benchmark; benchmarks without a finished cell are named as unknown.
function M.eta(plan, opts)
  local mean = M.cell_seconds(plan)
  local total, unknown, seen = 0, {}, {}
  for _, c in ipairs(plan.cells) do
    if c.state == "pending" or c.state == "queued" or (c.state == "failed" and opts and opts.retry_failed) then
      if mean[c.bench] then total = total + mean[c.bench]
      elseif not seen[c.bench] then seen[c.bench] = true; unknown[#unknown + 1] = c.bench end
    end
  end
  local parts = {}
  if total > 0 then parts[#parts + 1] = "ETA " .. clock(total / ((opts and opts.parallel) or 1)) end
  if #unknown > 0 then
    parts[#parts + 1] = ("no finished cell of %s yet to time"):format(table.concat(unknown, ", "))
  end
  return table.concat(parts, "; ")
end

function M.summary(counts, n)
  return ("%d cells: %d done, %d running, %d queued, %d failed, %d pending"):format(n, counts.done, counts.running,
    counts.queued, counts.failed, counts.pending)
end

-- One line per cell: benchmark, arch, layer, state and what the store says (the --dry-run listing).
function M.listing(plan)
  local rows = {}
  for _, c in ipairs(plan.cells) do
    local what = ""
    if c.state == "done" then
      what = ("run %d in the %s%s"):format(c.run.id, c.run.store, c.run.seconds and
        (", " .. clock(c.run.seconds)) or "")
    elseif c.state == "failed" then
      what = ((c.failure or ""):gsub("\n.*", "")):sub(1, 70)
    elseif c.where then what = c.where end
    rows[#rows + 1] = {c.bench, c.arch or "-", c.layer, c.state, c.hash:sub(1, 12), what}
  end
  return report.format_table({"benchmark", "arch", "layer", "state", "config", "detail"}, rows)
end

local SYMBOL = {done = "D", running = "R", queued = "Q", failed = "F", pending = "."}

-- The compact grid of --status: a row per benchmark and architecture, a column per layer, one letter per cell.
function M.grid(plan)
  local layers, lseen = {}, {}
  local rows, rindex = {}, {}
  for _, c in ipairs(plan.cells) do
    if not lseen[c.layer] then lseen[c.layer] = true; layers[#layers + 1] = c.layer end
    local rk = c.bench .. " " .. (c.arch or "-")
    if not rindex[rk] then
      rows[#rows + 1] = {bench = c.bench, arch = c.arch or "-", cells = {}}
      rindex[rk] = rows[#rows]
    end
    rindex[rk].cells[c.layer] = SYMBOL[c.state] or "?"
  end
  local header = {"benchmark", "arch"}
  for _, l in ipairs(layers) do header[#header + 1] = l end
  local out = {}
  for _, r in ipairs(rows) do
    local line = {r.bench, r.arch}
    for _, l in ipairs(layers) do line[#line + 1] = r.cells[l] or " " end
    out[#out + 1] = line
  end
  return report.format_table(header, out) ..
    "\nD done, R running, Q queued in SLURM, F failed (--retry-failed to redo), . pending"
end

-- ---- computing cells here ----------------------------------------------------------------------------------------
local function log(fmt, ...) io.stderr:write("sweep.lua: ", fmt:format(...), "\n") end
M.log = log

-- The options of one cell: the benchmark's, with a --save folder of the cell's own (SAVE/<benchmark>/<arch>_<layer>),
-- so that the saved outputs of the cells do not overwrite each other. With examples = {dir =, limit =}
-- (--save-examples) a benchmark that saves example outputs writes those of its first `limit` test images into the
-- cell's folder under dir, named by its configuration hash, where the analysis finds them
-- (dpl.benchmarks.analysis_examples). --save and --save-limit are not part of a configuration.
function M.cell_args(args, c, examples)
  local ex = examples and BY_NAME[c.bench] and BY_NAME[c.bench].examples
  if not args.save and not ex then return args end
  local a = {}
  for k, v in pairs(args) do a[k] = v end
  if ex then
    a.save = require("dpl.benchmarks.analysis_examples").cell_dir(examples.dir, c.experiment, c.hash)
    a.save_limit = examples.limit
  else
    a.save = ("%s/%s/%s_%s"):format(args.save, c.bench, c.arch or "checkpoint", c.layer)
  end
  return a
end

-- With --save-examples: the cells done earlier whose example outputs are missing (computed without
-- --save-examples: the sweep does not compute a finished cell again), as one note, or nil.
function M.missing_examples(plan, examples)
  local n = 0
  for _, c in ipairs(plan.cells) do
    if c.state == "done" and BY_NAME[c.bench] and BY_NAME[c.bench].examples and not cli.is_dir(
        require("dpl.benchmarks.analysis_examples").cell_dir(examples.dir, c.experiment, c.hash)) then
      n = n + 1
    end
  end
  if n == 0 then return nil end
  return ("%d cell(s) done earlier have no example outputs in %s (they were computed without --save-examples; " ..
    "their trained networks are in their folders beside the store: experiments/<benchmark>.lua --checkpoint FILE " ..
    "--save DIR scores one again and saves its outputs)"):format(n, examples.dir)
end

-- Computes every pending cell of the plan here, one at a time, into plan.db (failed cells too with
-- opts.retry_failed; opts.examples: see cell_args). A failed cell is recorded as failed and the sweep goes on.
-- Returns computed, failed counts.
function M.run_here(plan, opts)
  opts = opts or {}
  local counts = M.states(plan, {dir = opts.dir})
  local todo = {}
  for _, c in ipairs(plan.cells) do
    if c.state == "pending" or (c.state == "failed" and opts.retry_failed) then todo[#todo + 1] = c end
  end
  log("%s; %d to compute here%s", M.summary(counts, #plan.cells), #todo,
    counts.failed > 0 and not opts.retry_failed and (" (%d failed earlier: --retry-failed redoes them)"):format(
      counts.failed) or "")
  local missing = opts.examples and M.missing_examples(plan, opts.examples)
  if missing then log("%s", missing) end
  local computed, failed, t0 = 0, 0, require("dpl.progress").now()
  for i, c in ipairs(todo) do
    local b = plan.benches[c.b]
    local rc = c.runner_cell
    rc.index, rc.total = i, #todo
    log("[%d/%d] %s %s %s", i, #todo, c.bench, c.arch or "-", c.layer)
    local _, _, nfailed, ncomputed = runner.run(b.B, M.cell_args(b.args, c, opts.examples), {ctx = b.ctx, cells = {rc}})
    computed, failed = computed + (ncomputed or 0), failed + (nfailed or 0)
    -- progress: the cells left, timed by this sweep's own cells so far (and the store's for other benchmarks)
    M.states(plan, {dir = opts.dir})
    local left = #todo - i
    local elapsed = require("dpl.progress").now() - t0
    log("%d/%d cells of this run (%d computed, %d failed), %s elapsed%s", i, #todo, computed, failed, clock(elapsed),
      left > 0 and ("; %d left, %s"):format(left, M.eta(plan, opts)) or "")
  end
  return computed, failed, #todo
end

return M

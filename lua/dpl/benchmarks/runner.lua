-- dpl.benchmarks.runner: the shared experiment runner. A benchmark module (lua/dpl/benchmarks/<name>.lua) says what
-- is specific to it; the runner does the rest for every benchmark: the --arch / --layer lists, weights resolution
-- (every missing checkpoint reported at once, with the command that fetches it), the device, the configuration hash,
-- resume (a cell whose configuration already has a finished run in the results store is skipped), claims (a cell is
-- claimed in the store before it is computed, so several processes or SLURM shards on one store share the cells),
-- recording each cell in the store in one transaction when it is complete (a failure is recorded as failed and the
-- sweep goes on; an interruption by SIGINT/SIGTERM records nothing and releases the claim: rerun to resume), --json
-- output and the table at the end. docs/architecture.md ("How to add a benchmark") walks through an example.
--
--   -- experiments/<name>.lua
--   require("dpl.benchmarks.runner").main(require "dpl.benchmarks.<name>", arg)
--
-- The contract: a benchmark module B is a table with
--   B.name          the experiment's name in the results store ("bapps"); messages start with "<name>.lua: "
--   B.description   one line for --help
--   B.arguments(parser)            optional: adds the benchmark's own options to the argparse parser
--   B.setup(args) -> ctx           opens the data, checks the options; error("message") stops the run with the
--                                  message (no stack trace). Called after weights resolution, before the first cell.
--   B.describe(ctx) -> string      optional: what the data is, for the banner line
--   B.cells(args, archs, layers) -> list   optional: the cells to run, each {arch =, layer =} (nil or no function:
--                                  every arch with every layer of --layer). A cell with `weights = false` needs no checkpoint.
--   B.config(args, ctx, cell) -> table      what identifies a cell's result besides the runner's own keys
--                                  (experiment, arch, layer, weights_sha256): its hash decides resume
--   B.run(args, ctx, cell) -> scores, timing   computes one cell: scores is a flat table name -> number (what the
--                                  store keeps), timing a table of seconds and rates. cell holds arch, layer, weights
--                                  (a path or "random:SEED"), name_map (--name-map, for a folder of .npy weights),
--                                  device, config, hash, index, total, workdir (a folder for the cell's own files,
--                                  e.g. training checkpoints: not created here) and touch, the heartbeat of the
--                                  cell's claim: call cell.touch() now and then (every batch or step; it writes at
--                                  most once a minute), or after DPL_CLAIM_TIMEOUT_S (2 h) without one another
--                                  process judges this one dead and takes the cell over.
--   B.summary(scores, timing) -> string   optional: the one-line result printed after a cell
--   B.json(cell, scores) -> table  optional: the cell's --json entry (default {arch, layer, scores})
--   B.scores                       optional: every score name a run can have, in CSV column order (results.lua --csv
--                                  then has the same columns in every export; missing values are empty cells)
--   B.table(runs, opts) -> string  optional: printed at the end, from the stored runs of this invocation's cells, and
--                                  by results.lua --table with opts.config / opts.all_configs; report.paper_table
--                                  shows the runs of one configuration and names it (never mixes configurations)
--   B.detail(runs, args) -> string optional: printed with --detail
-- The runner's options: --arch, --layer (E/S/M/L in any case, a child index or a torchvision module name, a comma
-- list, all), --weights, --name-map, --device, --db, --json, --detail, --force, --traceback (and --help). A user error
-- (bad option, unknown arch or layer, missing weights or data, unwritable --json) is one line and exit status 2, found
-- before the first cell; each --json entry carries its configuration and provenance (weights SHA-256 or UNTRAINED
-- random:SEED, data, limit, device, dpl version and commit, date).
-- runner.run(B, args) is the same without the command line (for sweeps); it returns the runs and the failure count.
-- runner.prepare(B, args, db) gives the cells with their configuration hashes without running them (a sweep's plan).
local dpl = require "dpl"
local cli = require "dpl.cli"
local lossnet = require "dpl.models.lossnet"
local results = require "dpl.results"
local json = require "dpl.json"
local weights_store = require "dpl.weights_store"
local signal = require "dpl.signal"

local M = {}

-- an argparse converter of --NAME to a positive integer, with the option's name in the message
function M.positive(name)
  return function(v)
    local n = tonumber(v)
    if not n or n < 1 or n ~= math.floor(n) then return nil, ("--%s must be a positive integer, got %s"):format(name, v) end
    return n
  end
end

-- "a,b" -> {"a", "b"}; "all" -> all
local function list_of(s, all, what)
  if s == "all" then return all end
  local out = {}
  for w in tostring(s):gmatch("[^,%s]+") do out[#out + 1] = w end
  if #out == 0 then error("empty --" .. what, 0) end
  return out
end
M.list_of = list_of

-- The checkpoint of `arch` for --weights `w`: nil -> the torchvision file in weights/, "random:SEED" as is, a folder
-- -> its torchvision file (under its current or an older name, not a 0-byte or partial one) or ARCH.pth /
-- ARCH.safetensors, a file -> itself (one architecture only).
function M.weights_for(arch, w, n_archs, name_map)
  if w == nil then return weights_store.path_for(arch) end
  if w:match("^random:%d+$") then return w end
  if name_map then   -- a folder of per-tensor .npy files (one architecture), read through the name map
    if not cli.is_dir(w) then error(("--name-map needs --weights to be a folder of .npy files, not %s"):format(w), 0) end
    if (n_archs or 1) > 1 then error("--weights DIR with --name-map holds one architecture's .npy files: give one --arch", 0) end
    return w
  end
  if cli.is_dir(w) then
    local candidates = {w .. "/" .. arch .. ".pth", w .. "/" .. arch .. ".safetensors"}
    local ok, m = pcall(weights_store.manifest)
    if ok and m[arch] then   -- the torchvision name (or an older one: EfficientNet's were renamed), whole files only
      local found = weights_store.locate(m[arch], w, {hub = false})
      if found then return found end
      table.insert(candidates, 1, w .. "/" .. m[arch].file)
    end
    for _, p in ipairs(candidates) do if cli.exists(p) then return p end end
    error(("no %s checkpoint in %s (looked for %s)\nfetch it with: dplrun weights/fetch.lua --dir %s %s"):format(arch, w,
      table.concat(candidates, ", "), w, arch), 0)
  end
  if (n_archs or 1) > 1 then error("--weights FILE with several architectures; give a folder instead", 0) end
  if not cli.exists(w) then error("weights file not found: " .. w, 0) end
  return w
end

-- true for --weights random:SEED (untrained networks: labelled as such in every output)
function M.untrained(w) return type(w) == "string" and w:match("^random:%d+$") ~= nil end

-- the parser with the runner's options and the benchmark's
function M.parser(B)
  local parser = cli.parser("experiments/" .. B.name .. ".lua", B.description,
    "Layers: E, S, M, L (any case), a 0-based child index or a torchvision module name (features.29, layer4), a comma " ..
    "list, or all (= E,S,M,L); each layer is a separate run (its own scores), never summed.")
  parser:option("--arch", "Architecture, a comma list, or all: " .. table.concat(lossnet.ORDER, ", "), "alexnet")
  parser:option("--layer", "Extraction layer(s): see below.", "all")
  parser:option("--weights", "Checkpoint file (one architecture) or folder of checkpoints (torchvision file names or " ..
    "ARCH.pth), a folder of per-tensor .npy files (with --name-map), or random:SEED (untrained). Default: the " ..
    "torchvision file in the weights folder.")
  parser:option("--name-map", "For a --weights folder of .npy files: a built-in map (gluon_squeezenet1_1) or a file " ..
    "of 'file_stem state_dict_key' lines.")
  parser:option("--device", "cpu, vulkan or vulkan:N (default: dplrun's choice).")
  parser:option("--db", "Results database.", results.DEFAULT_PATH)
  parser:option("--json", "Also write the scores of this invocation's networks to this file.")
  parser:flag("--detail", "Print the per-subset scores too.")
  parser:flag("--force", "Recompute networks that already have a finished run.")
  if B.arguments then B.arguments(parser) end
  return parser
end

-- the cells of this invocation and their checkpoints
local function plan(B, args)
  local archs = list_of(args.arch, lossnet.ORDER, "arch")
  for _, a in ipairs(archs) do
    if not lossnet.ARCHS[a] then
      error(("unknown architecture '%s' (known: %s)"):format(a, table.concat(lossnet.ORDER, ", ")), 0)
    end
  end
  if args.weights and not args.weights:match("^random:%d+$") and not cli.exists(args.weights) then
    error(("--weights %s: no such file or folder (give a checkpoint, a folder of checkpoints, or random:SEED)"):format(
      args.weights), 0)
  end
  if args.name_map and not args.weights then error("--name-map goes with --weights DIR (a folder of .npy files)", 0) end
  local ok, layers = pcall(lossnet.parse_layers, args.layer, archs)
  if not ok then error(cli.message(layers), 0) end
  local cells = B.cells and B.cells(args, archs, layers)
  if not cells then
    cells = {}
    for _, a in ipairs(archs) do   -- each layer under its canonical name (E/S/M/L, else the module name)
      for _, l in ipairs(layers) do cells[#cells + 1] = {arch = a, layer = lossnet.layer_label(a, l)} end
    end
  end
  -- weights per architecture; every missing checkpoint at once, with the command that fetches them
  local weights, missing, seen = {}, {}, {}
  for _, c in ipairs(cells) do
    if c.arch and c.weights ~= false and not seen[c.arch] then
      seen[c.arch] = true
      local ok, p = pcall(M.weights_for, c.arch, args.weights, #archs, args.name_map)
      if ok then weights[c.arch] = p else missing[#missing + 1] = {c.arch, tostring(p)} end
    end
  end
  if #missing > 0 then
    local names, lines = {}, {}
    for _, m in ipairs(missing) do
      names[#names + 1] = m[1]
      lines[#lines + 1] = (m[2]:gsub("\n.*", ""):gsub(":? ?fetch it with: .*$", ""))
    end
    error(("missing weights for %d architecture(s) (%s): fetch them with: dplrun weights/fetch.lua %s%s"):format(#missing,
      table.concat(lines, "; "), table.concat(names, " "), args.weights and (" --dir " .. args.weights) or ""), 0)
  end
  for _, c in ipairs(cells) do
    if c.weights ~= false then c.weights, c.name_map = weights[c.arch], args.name_map end
  end
  return cells
end

-- the stored run with this id (the full row: scores, timing, config)
local function stored_run(db, B, cell, id)
  for _, r in ipairs(db:runs({experiment = B.name, arch = cell.arch, layer = cell.layer, status = "any"})) do
    if r.id == id then return r end
  end
end

local function log(B, fmt, ...) io.stderr:write(B.name, ".lua: ", fmt:format(...), "\n") end

-- The SHA-256 of a cell's weights: "random:SEED" as is; a file's (cached in the store); a folder of .npy files: the
-- SHA-256 of its sorted "name sha256" lines.
function M.weights_sha256(db, w)
  if w:match("^random:") then return w end
  if cli.is_dir(w) then return cli.weights_info(w).sha256 end
  return db:file_sha256(w)
end

-- A cell's --json provenance: its stored configuration (what its hash is made of), the configuration hash, the
-- weights file (or UNTRAINED random:SEED), and from the stored run: when it ended, the device and dpl's version and
-- commit that computed it (so a rerun that finds the run in the store writes the same JSON).
function M.provenance(cell, run)
  local c = {}
  for k, v in pairs(cell.config) do c[k] = v end
  c.config_hash = cell.hash
  c.weights_file = cell.weights and not M.untrained(cell.weights) and require("dpl.download").absolute(cell.weights) or nil
  c.untrained = M.untrained(cell.weights) or nil
  c.dpl_version = dpl.version
  c.date, c.code_version, c.device = run.ended, run.code_version, run.device
  return c
end

-- Gives each cell of B its identity: device, weights SHA-256 (cached in db), configuration (B.config and the
-- runner's keys), configuration hash (what resume and claims go by), index/total and workdir (the folder of the
-- cell's own files, beside args.db: <db folder>/<experiment>/<first 16 hex digits of the hash>).
local function identify(B, args, ctx, cells, db, device)
  local db_dir = args.db:match("^(.*)/[^/]*$") or "."
  for i, cell in ipairs(cells) do
    cell.index, cell.total, cell.device = i, #cells, device
    local w = cell.weights
    cell.weights_sha256 = w and M.weights_sha256(db, w) or nil
    local config = B.config(args, ctx, cell)
    config.experiment, config.arch, config.layer, config.weights_sha256 = B.name, cell.arch, cell.layer,
      cell.weights_sha256
    config.name_map = cell.name_map   -- nil unless given: the hashes of earlier runs stay
    cell.config, cell.hash = config, results.config_hash(config)
    cell.workdir = ("%s/%s/%s"):format(db_dir, B.name, cell.hash:sub(1, 16))
  end
end

-- The cells of args as run would compute them, without computing any: planned (--arch/--layer, weights), the
-- benchmark's context (B.setup: data opened, options checked) and each cell identified (identify above). db: an open
-- results store (the weights' hashes are cached there). Returns ctx, cells. A sweep (lua/dpl/benchmarks/sweep.lua)
-- knows its cells this way and runs them with run(B, args, {ctx = ctx, cells = {...}}).
function M.prepare(B, args, db)
  local cells = plan(B, args)
  local ctx = B.setup(args)
  identify(B, args, ctx, cells, db, cli.device(args.device))
  return ctx, cells
end

-- Runs every cell of args (a table of the runner's and the benchmark's options, as the parser gives them), or with
-- opts.cells only those cells (from prepare with the same args; opts.ctx its context).
-- Returns the list of finished runs (as stored) in cell order, the JSON entries, and the number of failed cells.
function M.run(B, args, opts)
  opts = opts or {}
  local cells, ctx, device = opts.cells, opts.ctx, nil
  if cells then
    device = cells[1] and cells[1].device or cli.device(args.device)
  else
    cells = plan(B, args)
    ctx = B.setup(args)
    device = cli.device(args.device)
  end
  log(B, "%d loss network(s) on %s%s", #cells, dpl.device_banner(), B.describe and ("; " .. B.describe(ctx)) or "")
  if M.untrained(args.weights) then
    log(B, "UNTRAINED weights (%s: seeded random initialisation, not pretrained): the scores are not the paper's",
      args.weights)
  end
  local db = results.open(args.db)
  signal.resumable()   -- Ctrl-C / SIGTERM: the store rolls back and releases its claims; "rerun ... to resume"
  local code_version = results.code_version()
  if not opts.cells then identify(B, args, ctx, cells, db, device) end
  local runs, entries, failures, skipped, elsewhere = {}, {}, 0, 0, 0
  for _, cell in ipairs(cells) do
    local label = ("[%d/%d] %s %s%s"):format(cell.index, cell.total, cell.arch or "-", tostring(cell.layer),
      M.untrained(cell.weights) and (" [UNTRAINED " .. cell.weights .. "]") or "")
    local w, config = cell.weights, cell.config
    local claim, why = db:claim(B.name, cell.hash, {label = ("%s %s"):format(cell.arch or "-", tostring(cell.layer)),
                                                    force = args.force})
    local prev = why and why.finished
    local scores
    if why and why.holder then
      local h = why.holder
      elsewhere = elsewhere + 1
      io.stderr:write(("%s: being computed by process %d on %s since %s, skipped\n"):format(label, h.pid, h.host,
        h.started))
    elseif prev then
      skipped = skipped + 1
      io.stderr:write(("%s: already in %s (run %d, %s), skipped\n"):format(label, args.db, prev.id, prev.ended or "?"))
      local r = stored_run(db, B, cell, prev.id)
      runs[#runs + 1], scores = r, r.scores
    else
      io.stderr:write(label, "\n")
      local started = results.now()
      cell.touch = function() claim:touch() end
      local ok, s, timing = pcall(B.run, args, ctx, cell)
      if not ok and signal.pending() then error(s, 0) end   -- interrupted: no failed row; the cleanup releases the claim
      local run = {experiment = B.name, arch = cell.arch, layer = cell.layer, config = config,
                   code_version = code_version, device = dpl.device_banner(), weights = w,
                   weights_sha256 = cell.weights_sha256, started = started, ended = results.now()}
      if ok then
        run.scores, run.timing = s, timing
        local id = db:record(run)
        io.stderr:write(label, ": ", B.summary and B.summary(s, timing) or ("done (%.1f s)"):format(run.ended - started),
          "\n")
        runs[#runs + 1], scores = stored_run(db, B, cell, id), s
      else
        failures = failures + 1
        run.status, run.error = "failed", tostring(s)
        db:record(run)
        io.stderr:write(("%s FAILED: %s\n"):format(label, tostring(s)))
      end
      collectgarbage()
    end
    if scores then
      local e = B.json and B.json(cell, scores) or {arch = cell.arch, layer = cell.layer, scores = scores}
      e.weights = cell.weights and require("dpl.benchmarks.report").weights_kind(cell.arch, cell.weights_sha256,
        cell.weights) or nil
      e.untrained = M.untrained(cell.weights) or nil
      e.config = M.provenance(cell, runs[#runs])
      entries[#entries + 1] = e
    end
  end
  db:close()
  return runs, entries, failures, #cells - skipped - failures - elsewhere, skipped, elsewhere
end

-- The command line: parses arg, runs, writes --json, prints the table. Exit status 2 on a user error (one line, before
-- the first cell), 1 when a cell failed (internal errors: one line, the stack trace with --traceback), else 0.
function M.main(B, arg)
  local name = B.name .. ".lua"
  local args
  cli.main(name, function()
    args = cli.parse(M.parser(B), arg)
    cli.output(args.json, "--json")
    local db_dir = args.db:match("^(.*)/[^/]*$")
    if cli.is_dir(args.db) then cli.fail("--db %s is a folder: give a database file (e.g. %s/dpl.sqlite)", args.db, args.db) end
    if db_dir and db_dir ~= "" and cli.exists(db_dir) and not cli.is_dir(db_dir) then
      cli.fail("--db %s: %s is a file, not a folder", args.db, db_dir)
    end
  end, arg)
  local runs, entries, failures, computed, skipped, elsewhere
  cli.main(name, function()
    local res = {xpcall(function() return M.run(B, args) end, cli.classify_plain)}
    if not res[1] then error(res[2], 0) end
    runs, entries, failures, computed, skipped, elsewhere = unpack(res, 2, 7)
  end, arg)
  if args.json then
    cli.main(name, function()
      cli.write_file(args.json, json.encode(#entries == 1 and entries[1] or json.array(entries), {indent = " "}) .. "\n",
        "--json")
    end, arg)
  end
  if B.table then print(B.table(runs, args)) end
  if args.detail and B.detail then print(B.detail(runs, args)) end
  log(B, "%d computed, %d from %s, %d failed%s", computed, skipped, args.db, failures, elsewhere > 0 and
    (", %d being computed by other processes (rerun to collect them)"):format(elsewhere) or "")
  os.exit(failures == 0 and 0 or 1)
end

return M

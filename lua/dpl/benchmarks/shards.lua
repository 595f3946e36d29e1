-- dpl.benchmarks.shards: the SQLite shards of a SLURM sweep and their merge into the main results store
-- (docs/sweep.md). Each array task writes the runs of its one cell into DIR/shards/<experiment>-<hash>.sqlite, an
-- ordinary dpl results store (lua/dpl/results.lua) that no other process writes: SQLite must not have many writers
-- over a network filesystem. experiments/results.lua --merge DIR (or experiments/sweep.lua --merge) brings them into
-- the main store:
--
--   local r = require("dpl.benchmarks.shards").merge("results/dpl.sqlite", "results/sweep")
--   -- r.added, r.already, r.shards, r.refused = {{path =, why =}, ...}
--
-- * atomic: every accepted shard's runs are written in ONE transaction (all or nothing);
-- * idempotent: a finished run whose experiment and configuration hash the store already has as finished is not
--   added again (a cell merged twice is one row); a failed run is added once (same cell, start and error) and not at
--   all for a cell that is finished;
-- * refusing by name, and merging the rest: a shard that is not a readable dpl results store (corrupt, truncated,
--   from a newer dpl), one holding a cell that no submission of the sweep lists (another configuration), or one
--   computed by another code version than the submission of its cell (unless opts.any_code_version).
local cli = require "dpl.cli"
local json = require "dpl.json"
local results = require "dpl.results"

local M = {}

-- The shard of a cell: DIR/shards/<experiment>-<first 16 hex digits of its configuration hash>.sqlite (the runner
-- keeps the cell's checkpoints beside it, in DIR/shards/<experiment>/<the same 16 digits>/).
function M.path(dir, experiment, hash)
  return ("%s/shards/%s-%s.sqlite"):format(dir, experiment, hash:sub(1, 16))
end

-- the files of a folder whose names match a Lua pattern, sorted (none when the folder does not exist)
function M.list(dir, pattern)
  local out = {}
  if not cli.is_dir(dir) then return out end
  local p = io.popen("ls -1A -- '" .. dir:gsub("'", "'\\''") .. "' 2>/dev/null")
  for name in p:lines() do
    if name:match(pattern) then out[#out + 1] = dir .. "/" .. name end
  end
  p:close()
  table.sort(out)
  return out
end

local RUN_COLUMNS = {"experiment", "arch", "layer", "config", "config_hash", "code_version", "device", "weights",
                     "weights_sha256", "started", "ended", "seconds", "timing", "status", "error"}

-- The runs of a shard with their scores, or nil and why it cannot be merged (read-only; never modifies the shard).
local function read_shard(path)
  local ok, db = pcall(results.open, path, {readonly = true})
  if not ok then return nil, cli.message(db) end
  local rok, runs = pcall(function()
    local check = db:query("PRAGMA quick_check")
    local verdict = check[1] and (check[1].quick_check or check[1].integrity_check)
    if verdict ~= "ok" then error("SQLite's integrity check fails: " .. tostring(verdict), 0) end
    local v = db:query("PRAGMA user_version")[1].user_version
    if v ~= results.SCHEMA_VERSION then
      error(("schema version %d, this dpl writes %d"):format(v, results.SCHEMA_VERSION), 0)
    end
    local runs = db:query("SELECT * FROM runs ORDER BY id")
    local by_id = {}
    for _, r in ipairs(runs) do r.scores = {}; by_id[r.id] = r end
    for _, s in ipairs(db:query("SELECT run_id, name, value FROM scores")) do
      if by_id[s.run_id] then table.insert(by_id[s.run_id].scores, s) end
    end
    return runs
  end)
  db:close()
  if not rok then
    local msg = cli.message(runs)
    if msg:find("not a database", 1, true) or msg:find("malformed", 1, true) then
      msg = "not a readable SQLite results store (" .. msg .. ")"
    end
    return nil, msg
  end
  return runs
end

-- the cells the submissions of a sweep folder list: experiment .. " " .. hash -> {code versions}
local function submitted_cells(dir)
  local cells, n = {}, 0
  for _, path in ipairs(M.list(dir .. "/submissions", "%.json$")) do
    local ok, sub = pcall(json.decode, cli.read_file(path) or "")
    if ok and type(sub) == "table" and type(sub.cells) == "table" then
      n = n + 1
      for _, c in ipairs(sub.cells) do
        local k = c.experiment .. " " .. c.hash
        cells[k] = cells[k] or {}
        cells[k][sub.code_version or "?"] = true
      end
    end
  end
  return n > 0 and cells or nil
end

-- Why a shard's runs do not belong to the sweep (nil when they do).
local function foreign(runs, cells, opts)
  if not cells then return nil end   -- a folder of shards without submissions: nothing to check them against
  for _, r in ipairs(runs) do
    local versions = cells[r.experiment .. " " .. r.config_hash]
    if not versions then
      return ("holds %s %s %s with a configuration no submission of this sweep lists (another configuration: merge " ..
        "it into the store it was computed for)"):format(r.experiment, r.arch or "-", r.layer or "-")
    end
    if not opts.any_code_version and not versions[r.code_version or "?"] then
      local want = {}
      for v in pairs(versions) do want[#want + 1] = v end
      table.sort(want)
      return ("computed by another code version (%s; the sweep's: %s): recompute the cell, or merge with " ..
        "--any-code-version"):format(tostring(r.code_version), table.concat(want, ", "))
    end
  end
  return nil
end

-- Merges the shards under dir/shards (or the .sqlite files directly in dir when it has no shards/ folder) into the
-- store at db_path. opts.any_code_version: accept shards of any code version. Returns {shards = n read, added =,
-- already =, refused = {{path =, why =}}}.
function M.merge(db_path, dir, opts)
  opts = opts or {}
  if not cli.is_dir(dir) then cli.fail("--merge %s: no such folder (the sweep's folder, holding shards/)", dir) end
  local folder = cli.is_dir(dir .. "/shards") and dir .. "/shards" or dir
  local paths = M.list(folder, "%.sqlite$")
  local cells = submitted_cells(dir)
  local accepted, refused = {}, {}
  for _, path in ipairs(paths) do
    local runs, why = read_shard(path)
    why = why or foreign(runs, cells, opts)
    if why then refused[#refused + 1] = {path = path, why = why}
    else accepted[#accepted + 1] = {path = path, runs = runs} end
  end
  local out = {shards = #paths, added = 0, already = 0, refused = refused, accepted = #accepted}
  if #accepted == 0 then return out end
  local db = results.open(db_path)
  local ok, err = pcall(db.transaction, db, function()
    for _, shard in ipairs(accepted) do
      for _, r in ipairs(shard.runs) do
        local present
        if r.status == "finished" then
          present = db:finished(r.experiment, r.config_hash) ~= nil
        else
          present = db:finished(r.experiment, r.config_hash) ~= nil or #db:query(
            "SELECT 1 FROM runs WHERE experiment = ? AND config_hash = ? AND status = ? AND started IS ? AND error IS ?",
            r.experiment, r.config_hash, r.status, r.started, r.error) > 0
        end
        if present then out.already = out.already + 1
        else
          local values = {}
          for i, col in ipairs(RUN_COLUMNS) do values[i] = r[col] end
          db:query(("INSERT INTO runs (%s) VALUES (%s)"):format(table.concat(RUN_COLUMNS, ", "),
            ("?, "):rep(#RUN_COLUMNS - 1) .. "?"), unpack(values, 1, #RUN_COLUMNS))
          local rid = db:query("SELECT last_insert_rowid() AS id")[1].id
          for _, s in ipairs(r.scores) do
            db:query("INSERT INTO scores (run_id, name, value) VALUES (?, ?, ?)", rid, s.name, s.value)
          end
          out.added = out.added + 1
        end
      end
    end
  end)
  db:close()
  if not ok then error(err, 0) end
  return out
end

-- The report of a merge, one line per refused shard and a summary line.
function M.describe(r, db_path)
  local lines = {}
  for _, x in ipairs(r.refused) do lines[#lines + 1] = ("refused shard %s: %s"):format(x.path, x.why) end
  lines[#lines + 1] = ("merged %d of %d shard(s) into %s: %d run(s) added, %d already there%s"):format(r.accepted,
    r.shards, db_path, r.added, r.already, #r.refused > 0 and (", %d shard(s) refused"):format(#r.refused) or "")
  return table.concat(lines, "\n")
end

return M

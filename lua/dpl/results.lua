-- dpl.results: the results store, an SQLite database (libsqlite3 through LuaJIT's FFI) that keeps one row per run of
-- an experiment on one loss network, so that long sweeps survive interruption and results can be listed and exported.
--
--   local results = require "dpl.results"
--   local db = results.open()                          -- results/dpl.sqlite under the working directory, or a path
--   local config = {experiment = "bapps", arch = "alexnet", layer = "M", ...}
--   if not db:finished("bapps", results.config_hash(config)) then
--     ... compute ...
--     db:record({experiment = "bapps", arch = "alexnet", layer = "M", config = config, device = "cpu",
--                weights = path, weights_sha256 = db:file_sha256(path), started = t0, ended = t1,
--                timing = {forward_s = 12.5}, scores = {["2afc.mean"] = 0.69, ...}})
--   end
--
-- A run is written only when it is over, with all of its scores, in ONE transaction: a process killed half-way
-- leaves nothing behind, and the next invocation (which skips runs whose configuration hash already has a finished
-- row) redoes it. The database is in WAL mode with a busy timeout, so a reader (experiments/results.lua) can look at
-- it while a sweep writes; a store in a folder the reader cannot write is opened immutable.
--
-- Processes that share a store share the work: before computing a cell, a run claims it (db:claim), which succeeds
-- unless the cell is finished or another live process holds it; record() releases the claim in the transaction that
-- writes the run. A claim of a dead process on this host, or one whose holder has not sent a heartbeat
-- (claim:touch) for DPL_CLAIM_TIMEOUT_S seconds (default 7200), is taken over. docs/robustness.md.
--
--   local claim, why = db:claim("bapps", hash, {label = "alexnet M"})
--   if claim then ... compute, calling claim:touch() now and then ...; db:record(run_with_claim) end
--   -- else why.finished (the finished run's row) or why.holder (host, pid, started of the live claim)
local ffi = require "ffi"
local json = require "dpl.json"
local sqlite = require "dpl.sys.sqlite"
local crypto = require "dpl.sys.crypto"
local fault = require "dpl.sys.fault"

-- statx has one layout on every architecture (struct stat does not): used for the mtime of weight files
pcall(ffi.cdef, [[
struct dpl_statx_ts { int64_t tv_sec; uint32_t tv_nsec; int32_t reserved; };
struct dpl_statx {
  uint32_t mask, blksize; uint64_t attributes; uint32_t nlink, uid, gid; uint16_t mode, spare0;
  uint64_t ino, size, blocks, attributes_mask;
  struct dpl_statx_ts atime, btime, ctime, mtime;
  uint32_t rdev_major, rdev_minor, dev_major, dev_minor;
  uint64_t spare2[14];
};
int statx(int dirfd, const char *path, int flags, unsigned int mask, struct dpl_statx *buf);
]])

-- processes and hosts, for claims; access() for read-only stores
pcall(ffi.cdef, [[
int getpid(void);
int gethostname(char *name, size_t len);
int kill(int pid, int sig);
int access(const char *path, int mode);
]])

local signal = require "dpl.signal"

local M = {}
M.DEFAULT_PATH = "results/dpl.sqlite"
local SCHEMA_VERSION = 3                   -- 2: the claims table; 3: BAPPS's distance renamed (migrate_v3)
M.SCHEMA_VERSION = SCHEMA_VERSION        -- what the shards of a sweep must have (lua/dpl/benchmarks/shards.lua)

local SQLITE_OK, SQLITE_ROW, SQLITE_DONE = sqlite.OK, sqlite.ROW, sqlite.DONE
local SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_NULL = sqlite.INTEGER, sqlite.FLOAT, sqlite.NULL
local OPEN_RW_CREATE = sqlite.OPEN_READWRITE + sqlite.OPEN_CREATE
local OPEN_RO = sqlite.OPEN_READONLY
local OPEN_URI = sqlite.OPEN_URI
local TRANSIENT = sqlite.TRANSIENT
local sqlite_lib = sqlite.lib

-- ---- hashing ------------------------------------------------------------------------------------------------------
local sha256_string = crypto.sha256_string
M.sha256_string = sha256_string

-- The configuration as canonical JSON (sorted keys) and its SHA-256: the identity of a run for resuming.
function M.config_json(config) return json.encode(config) end
function M.config_hash(config) return sha256_string(json.encode(config)) end

-- size and mtime ("seconds.nanoseconds", exact) of a file, or nil
function M.file_stat(path)
  local st = ffi.new("struct dpl_statx")
  if ffi.C.statx(-100, path, 0, 0x240, st) ~= 0 then return nil end   -- AT_FDCWD, STATX_SIZE | STATX_MTIME
  return tonumber(st.size), ("%d.%09d"):format(tonumber(st.mtime.tv_sec), st.mtime.tv_nsec)
end

-- "v0.3-12-gabc1234 (dpl 0.1.0)": git describe of the source tree if it is a git checkout (else the COMMIT file an
-- install writes into P/share/dpl), and the library version
function M.code_version()
  local root = DPL_SOURCE_ROOT or "."
  local git
  if not DPL_INSTALLED then
    local p = io.popen(("git -C '%s' describe --always --dirty --tags 2>/dev/null"):format(root:gsub("'", "'\\''")))
    git = p and p:read("*l") or nil
    if p then p:close() end
  end
  if not git or git == "" then
    local f = io.open(root .. "/COMMIT", "r")
    if f then git = f:read("*l"); f:close() end
  end
  local ok, dpl = pcall(require, "dpl")
  local v = ok and dpl.version or "?"
  return (git and git ~= "" and git .. " " or "") .. "(dpl " .. v .. ")"
end

-- the Unix time with sub-second precision (CLOCK_REALTIME)
require "dpl.progress"   -- declares struct dpl_timespec and clock_gettime
local ts = ffi.new("struct dpl_timespec")
function M.now()
  ffi.C.clock_gettime(0, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

-- ISO 8601 UTC time of a Unix time
function M.iso_time(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t)) end

-- ---- the database -------------------------------------------------------------------------------------------------
local DB = {}
DB.__index = DB

local SCHEMA = [[
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY,
  experiment TEXT NOT NULL,
  arch TEXT,
  layer TEXT,
  config TEXT NOT NULL,            -- canonical JSON
  config_hash TEXT NOT NULL,       -- SHA-256 of config: the identity used to resume
  code_version TEXT,
  device TEXT,
  weights TEXT,                    -- path of the weights file
  weights_sha256 TEXT,
  started TEXT,                    -- ISO 8601 UTC
  ended TEXT,
  seconds REAL,                    -- wall-clock time of the run
  timing TEXT,                     -- JSON: per-phase times, images per second, ...
  status TEXT NOT NULL CHECK (status IN ('finished', 'failed')),
  error TEXT
);
CREATE INDEX IF NOT EXISTS runs_lookup ON runs (experiment, config_hash, status);
CREATE TABLE IF NOT EXISTS scores (
  run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  name TEXT NOT NULL,              -- e.g. 2afc.traditional, 2afc.mean, jnd.pooled
  value REAL,
  PRIMARY KEY (run_id, name)
);
CREATE TABLE IF NOT EXISTS file_hashes (
  path TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  mtime TEXT NOT NULL,             -- "seconds.nanoseconds"
  sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS claims (  -- cells being computed: one row per experiment + configuration
  experiment TEXT NOT NULL,
  config_hash TEXT NOT NULL,
  label TEXT,                      -- what is computed, e.g. "alexnet M"
  host TEXT NOT NULL,
  pid INTEGER NOT NULL,
  pid_started TEXT,                -- the process's start (/proc/PID/stat), telling a reused pid apart
  started TEXT NOT NULL,           -- ISO 8601 UTC
  heartbeat REAL NOT NULL,         -- Unix time the holder last said it is alive
  PRIMARY KEY (experiment, config_hash)
);
]]

function DB:check(rc, what)
  if rc ~= SQLITE_OK and rc ~= SQLITE_ROW and rc ~= SQLITE_DONE then
    error(("results %s: %s: %s (error %d)"):format(self.path, what, ffi.string(sqlite_lib().sqlite3_errmsg(self.h)), rc), 3)
  end
  return rc
end

function DB:exec(sql)
  local err = ffi.new("char*[1]")
  local rc = sqlite_lib().sqlite3_exec(self.h, sql, nil, nil, err)
  if rc ~= SQLITE_OK then
    local msg = err[0] ~= nil and ffi.string(err[0]) or ffi.string(sqlite_lib().sqlite3_errmsg(self.h))
    if err[0] ~= nil then sqlite_lib().sqlite3_free(err[0]) end
    error(("results %s: %s (in: %s)"):format(self.path, msg, sql:sub(1, 80)), 2)
  end
end

-- Runs one statement with positional parameters (nil -> NULL); returns the rows as tables keyed by column name.
function DB:query(sql, ...)
  local S = sqlite_lib()
  local pstmt = ffi.new("sqlite3_stmt*[1]")
  self:check(S.sqlite3_prepare_v2(self.h, sql, #sql, pstmt, nil), "prepare " .. sql:sub(1, 60))
  local stmt = pstmt[0]
  local nargs, args = select("#", ...), {...}
  local ok, rows = pcall(function()
    for i = 1, nargs do
      local v = args[i]
      local rc
      if v == nil then rc = S.sqlite3_bind_null(stmt, i)
      elseif type(v) == "number" then
        if v == math.floor(v) and math.abs(v) < 2 ^ 53 then rc = S.sqlite3_bind_int64(stmt, i, v)
        else rc = S.sqlite3_bind_double(stmt, i, v) end
      else
        local s = tostring(v)
        rc = S.sqlite3_bind_text(stmt, i, s, #s, TRANSIENT)
      end
      self:check(rc, "bind")
    end
    local out = {}
    while true do
      local rc = self:check(S.sqlite3_step(stmt), "step " .. sql:sub(1, 60))
      if rc == SQLITE_DONE then break end
      local row = {}
      for c = 0, S.sqlite3_column_count(stmt) - 1 do
        local name = ffi.string(S.sqlite3_column_name(stmt, c))
        local ty = S.sqlite3_column_type(stmt, c)
        if ty == SQLITE_INTEGER then row[name] = tonumber(S.sqlite3_column_int64(stmt, c))
        elseif ty == SQLITE_FLOAT then row[name] = S.sqlite3_column_double(stmt, c)
        elseif ty ~= SQLITE_NULL then row[name] = ffi.string(S.sqlite3_column_text(stmt, c)) end
      end
      out[#out + 1] = row
    end
    return out
  end)
  S.sqlite3_finalize(stmt)
  if not ok then error(rows, 2) end
  return rows
end

-- A read-only connection to a WAL database needs its -shm file, which SQLite creates next to it: in a folder the
-- reader cannot write (a results folder shared read-only, an archive) that fails with "attempt to write a readonly
-- database". There, with no -wal file left by a writer, the file is opened immutable (a URI with immutable=1: SQLite
-- then reads it as a plain file).
local function writable(path) return ffi.C.access(path, 2) == 0 end   -- W_OK

local function uri_escape(path)
  return (path:gsub("[%%?#]", function(c) return ("%%%02X"):format(c:byte()) end))
end

local function readonly_name(path)
  local dir = path:match("^(.*)/[^/]*$") or "."
  if dir == "" then dir = "/" end
  local wal = io.open(path .. "-wal", "rb")
  if wal then wal:close() end
  if (writable(dir) and writable(path)) or wal then return path, OPEN_RO end
  return "file:" .. uri_escape(path) .. "?immutable=1", OPEN_RO + OPEN_URI
end

-- Schema 3: BAPPS's distance, recorded in every paper-distance run's configuration, carried a parenthesised note
-- naming a section of an earlier write-up ("normalized-sq-l2 (...)"); it is "normalized-sq-l2" now
-- (docs/benchmarks/bapps.md). The name is part of the configuration's hash, the identity that resumes and skips runs:
-- the configurations and their hashes (and claims under the old hashes) are rewritten, so that finished runs are not
-- computed again. The JSON text is edited in place: it is json.encode's canonical form, which the renamed
-- configuration encodes to.
local OLD_DISTANCE_PREFIX = '"distance":"normalized-sq-l2 ('
local OLD_DISTANCE = '"distance":"normalized%-sq%-l2 %([^)"]*%)"'   -- the name with any note
local NEW_DISTANCE = '"distance":"normalized-sq-l2"'
local function migrate_v3(self)
  for _, r in ipairs(self:query("SELECT id, config, config_hash FROM runs WHERE instr(config, ?) > 0",
                                OLD_DISTANCE_PREFIX)) do
    local config = r.config:gsub(OLD_DISTANCE, NEW_DISTANCE, 1)
    local hash = sha256_string(config)
    self:query("UPDATE runs SET config = ?, config_hash = ? WHERE id = ?", config, hash, r.id)
    self:query("UPDATE OR IGNORE claims SET config_hash = ? WHERE config_hash = ?", hash, r.config_hash)
  end
end

-- Opens (creating it and its folder if needed) the database. opts.readonly: open an existing file read-only.
function M.open(path, opts)
  path = path or M.DEFAULT_PATH
  opts = opts or {}
  local S = sqlite_lib()
  local name, flags = path, OPEN_RW_CREATE
  if not opts.readonly then
    local dir = path:match("^(.*)/[^/]+$")
    if dir and dir ~= "" then os.execute(("mkdir -p '%s'"):format(dir:gsub("'", "'\\''"))) end
  else
    local f = io.open(path, "rb")
    if not f then error(("results: no results database at %s (run an experiment first, or pass --db)"):format(path), 2) end
    f:close()
    name, flags = readonly_name(path)
  end
  local ph = ffi.new("sqlite3*[1]")
  local rc = S.sqlite3_open_v2(name, ph, flags, nil)
  if rc ~= SQLITE_OK then
    local msg = ph[0] ~= nil and ffi.string(S.sqlite3_errmsg(ph[0])) or ("error " .. rc)
    if ph[0] ~= nil then S.sqlite3_close_v2(ph[0]) end
    error(("results: cannot open %s: %s"):format(path, msg), 2)
  end
  local self = setmetatable({h = ffi.gc(ph[0], S.sqlite3_close_v2), path = path}, DB)
  S.sqlite3_busy_timeout(self.h, opts.busy_timeout_ms or 30000)
  if not opts.readonly then
    local ok, err = pcall(function()
      self:exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
      local v = self:query("PRAGMA user_version")[1].user_version
      if v > SCHEMA_VERSION then
        error(("results: %s has schema version %d, newer than this dpl's %d"):format(path, v, SCHEMA_VERSION), 0)
      end
      self:exec("BEGIN IMMEDIATE;" .. SCHEMA)
      if v >= 1 and v < 3 then migrate_v3(self) end
      self:exec("PRAGMA user_version = " .. SCHEMA_VERSION .. "; COMMIT;")
    end)
    if not ok then
      pcall(self.exec, self, "ROLLBACK")
      error(tostring(err):find(path, 1, true) and err or ("results: " .. path .. " is not a dpl results database: " ..
        tostring(err)), 2)
    end
    -- interrupted (SIGINT, SIGTERM under dplrun): roll back what is open, release this process's claims
    self.unregister = signal.on_interrupt(function() self:interrupted() end)
  end
  return self
end

function DB:close()
  if self.h then
    if self.unregister then self.unregister() end
    sqlite_lib().sqlite3_close_v2(ffi.gc(self.h, nil))
    self.h = nil
  end
end

-- Runs fn inside BEGIN IMMEDIATE ... COMMIT (ROLLBACK when it fails, and the error is raised again).
function DB:transaction(fn, level)
  self:exec("BEGIN IMMEDIATE")
  self.in_transaction = true
  local ok, a, b = pcall(fn)
  if not ok then
    pcall(self.exec, self, "ROLLBACK")
    self.in_transaction = false
    error(a, (level or 1) + 1)
  end
  self:exec("COMMIT")
  self.in_transaction = false
  return a, b
end

function DB:interrupted()
  if not self.h then return end
  if self.in_transaction then pcall(self.exec, self, "ROLLBACK"); self.in_transaction = false end
  pcall(self.query, self, "DELETE FROM claims WHERE host = ? AND pid = ?", M.host(), M.pid())
end

-- ---- claims -----------------------------------------------------------------------------------------------------
M.CLAIM_TIMEOUT_S = tonumber(os.getenv("DPL_CLAIM_TIMEOUT_S") or "") or 7200
M.HEARTBEAT_S = 60

local host_name
function M.host()
  if not host_name then
    local buf = ffi.new("char[256]")
    host_name = ffi.C.gethostname(buf, 255) == 0 and ffi.string(buf) or "?"
  end
  return host_name
end
function M.pid() return ffi.C.getpid() end

-- the start time of a process (field 22 of /proc/PID/stat, clock ticks since boot) and its state (field 3: "Z" for a
-- zombie, a process that has exited and waits for its parent to reap it), or nil
function M.process_started(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return nil end
  local line = f:read("*l")
  f:close()
  local rest = line and line:match("^.*%)%s+(.*)$")   -- after the command name, which may hold spaces
  if not rest then return nil end
  local fields = {}
  for x in rest:gmatch("%S+") do fields[#fields + 1] = x end
  return fields[20], fields[1]                         -- field 22 and field 3, counted from the state (field 3)
end

-- whether a claim row's holder is alive: on this host, the process with that pid and start time exists and has not
-- exited (a killed process stays a zombie until its parent reaps it); anywhere, its heartbeat is recent
local function claim_alive(row, now, timeout)
  if now - row.heartbeat > timeout then return false end
  if row.host == M.host() then
    if ffi.C.kill(row.pid, 0) ~= 0 and ffi.errno() == 3 then return false end     -- ESRCH: no such process
    local started, state = M.process_started(row.pid)
    if row.pid_started and started and started ~= row.pid_started then return false end   -- the pid was reused
    if state == "Z" or state == "X" then return false end                               -- exited, not yet reaped
  end
  return true
end

local Claim = {}
Claim.__index = Claim

-- Claims the cell (experiment, config_hash) for this process, in one transaction. Returns the claim, or nil and why:
-- {finished = row} when a finished run exists (unless opts.force), {holder = row} when another live process holds
-- it. opts.label: what is computed (shown to others); opts.timeout_s: heartbeat age after which a claim is stale.
function DB:claim(experiment, config_hash, opts)
  opts = opts or {}
  local now, me, pid = M.now(), M.host(), M.pid()
  local timeout = opts.timeout_s or M.CLAIM_TIMEOUT_S
  local started = M.process_started(pid)
  return self:transaction(function()
    if not opts.force then
      local done = self:finished(experiment, config_hash)
      if done then return nil, {finished = done} end
    end
    local row = self:query("SELECT * FROM claims WHERE experiment = ? AND config_hash = ?", experiment, config_hash)[1]
    local mine = row and row.host == me and row.pid == pid
    if row and not mine and claim_alive(row, now, timeout) then return nil, {holder = row} end
    self:query([[INSERT OR REPLACE INTO claims (experiment, config_hash, label, host, pid, pid_started, started, heartbeat)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)]], experiment, config_hash, opts.label, me, pid, started, M.iso_time(now), now)
    return setmetatable({db = self, experiment = experiment, config_hash = config_hash, host = me, pid = pid,
                         beat = now, taken_over = row and not mine and row or nil}, Claim)
  end, 2)
end

-- Refreshes the heartbeat (at most once a minute unless forced). False when the claim is no longer ours (another
-- process took it over, judging this one dead).
function Claim:touch(force)
  local now = M.now()
  if not force and now - self.beat < M.HEARTBEAT_S then return true end
  self.beat = now
  self.db:query("UPDATE claims SET heartbeat = ? WHERE experiment = ? AND config_hash = ? AND host = ? AND pid = ?",
    now, self.experiment, self.config_hash, self.host, self.pid)
  return #self.db:query("SELECT 1 FROM claims WHERE experiment = ? AND config_hash = ? AND host = ? AND pid = ?",
    self.experiment, self.config_hash, self.host, self.pid) > 0
end

function Claim:release()
  self.db:query("DELETE FROM claims WHERE experiment = ? AND config_hash = ? AND host = ? AND pid = ?",
    self.experiment, self.config_hash, self.host, self.pid)
end

-- The claims held now (live or stale), oldest first; each row has alive = true/false.
function DB:claims(experiment)
  local rows = experiment and self:query("SELECT * FROM claims WHERE experiment = ? ORDER BY started", experiment)
    or self:query("SELECT * FROM claims ORDER BY started")
  local now = M.now()
  for _, r in ipairs(rows) do r.alive = claim_alive(r, now, M.CLAIM_TIMEOUT_S) end
  return rows
end

-- The finished run with this configuration hash, or nil.
function DB:finished(experiment, config_hash)
  return self:query("SELECT * FROM runs WHERE experiment = ? AND config_hash = ? AND status = 'finished' " ..
    "ORDER BY id DESC LIMIT 1", experiment, config_hash)[1]
end

-- SHA-256 of a file, cached in the database by path, size and mtime (hashing a 500 MB checkpoint takes seconds).
function DB:file_sha256(path)
  local size, mtime = M.file_stat(path)
  if not size then error("results: cannot stat " .. tostring(path), 2) end
  local row = self:query("SELECT sha256 FROM file_hashes WHERE path = ? AND size = ? AND mtime = ?", path, size, mtime)[1]
  if row then return row.sha256, true end
  local digest = crypto.sha256_file(path)
  self:query("INSERT OR REPLACE INTO file_hashes (path, size, mtime, sha256) VALUES (?, ?, ?, ?)", path, size,
    mtime, digest)
  return digest, false
end

-- Writes a run and all of its scores in one transaction, which also releases this process's claim on the cell.
-- run: experiment, arch, layer, config (table), device, weights, weights_sha256, started, ended (Unix times), timing
-- (table), status ("finished" by default, or "failed" with error), scores (name -> number). Returns the row id.
function DB:record(run)
  if type(run.experiment) ~= "string" then error("results.record: run.experiment must be a string", 2) end
  if type(run.config) ~= "table" then error("results.record: run.config must be a table", 2) end
  local status = run.status or "finished"
  local scores = run.scores or {}
  for name, v in pairs(scores) do
    if type(v) ~= "number" then
      error(("results.record: score %s is %s, not a number"):format(tostring(name), tostring(v)), 2)
    end
  end
  local config_json = json.encode(run.config)
  local rid = self:transaction(function()
    self:query([[INSERT INTO runs (experiment, arch, layer, config, config_hash, code_version, device, weights,
      weights_sha256, started, ended, seconds, timing, status, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)]],
      run.experiment, run.arch, run.layer, config_json, sha256_string(config_json), run.code_version or M.code_version(),
      run.device, run.weights, run.weights_sha256, run.started and M.iso_time(run.started),
      run.ended and M.iso_time(run.ended), (run.started and run.ended) and (run.ended - run.started) or nil,
      run.timing and json.encode(run.timing) or nil, status, run.error)
    local rid = tonumber(sqlite_lib().sqlite3_last_insert_rowid(self.h))
    local names = {}
    for name in pairs(scores) do names[#names + 1] = name end
    table.sort(names)
    for _, name in ipairs(names) do
      local v = scores[name]
      self:query("INSERT INTO scores (run_id, name, value) VALUES (?, ?, ?)", rid, name, v == v and v or nil)
    end
    -- the cell is done (or failed): this process's claim on it goes in the same transaction
    self:query("DELETE FROM claims WHERE experiment = ? AND config_hash = ? AND host = ? AND pid = ?", run.experiment,
      sha256_string(config_json), M.host(), M.pid())
    return rid
  end, 2)
  fault.point("RECORD")       -- tests interrupt a sweep right after its N-th committed run (dpl.sys.fault)
  return rid
end

-- Runs with their scores (run.scores: name -> value), oldest first. filter: experiment, arch, layer, status
-- (default "finished"; "any" for all), latest (only the newest run per experiment + config hash).
function DB:runs(filter)
  filter = filter or {}
  local where, args = {}, {}
  for _, k in ipairs {"experiment", "arch", "layer"} do
    if filter[k] then where[#where + 1] = k .. " = ?"; args[#args + 1] = filter[k] end
  end
  local status = filter.status or "finished"
  if status ~= "any" then where[#where + 1] = "status = ?"; args[#args + 1] = status end
  if filter.latest then
    where[#where + 1] = "id = (SELECT MAX(id) FROM runs r2 WHERE r2.experiment = runs.experiment AND " ..
      "r2.config_hash = runs.config_hash AND r2.status = runs.status)"
  end
  local sql = "SELECT * FROM runs" .. (#where > 0 and " WHERE " .. table.concat(where, " AND ") or "") .. " ORDER BY id"
  local rows = self:query(sql, unpack(args))
  local by_id = {}
  for _, r in ipairs(rows) do r.scores = {}; by_id[r.id] = r end
  if #rows > 0 then
    for _, s in ipairs(self:query("SELECT run_id, name, value FROM scores")) do
      local r = by_id[s.run_id]
      if r then r.scores[s.name] = s.value end
    end
  end
  return rows
end

M.DB = DB
return M

-- The results store (lua/dpl/results.lua), its reports (lua/dpl/benchmarks/report.lua, bapps.lua), experiments/results.lua and dpl.json.
--  * A run and all of its scores are written in one transaction: a failure half-way (simulated inside record, or a
--    lock held by another connection) leaves no row. Resume looks runs up by experiment + config hash; the hash does
--    not depend on key order. Weight-file hashes are cached by path, size and mtime and recomputed when the file
--    changes. WAL mode, schema version, clear errors for a missing or foreign file.
--  * Claims (issue 18 item 12): a cell claimed by a live process is refused to others; claims of dead local
--    processes, reused pids and silent hosts are taken over; record releases the claim; two processes working
--    through the same cells share them, each computed once. A SIGINT/SIGTERM during a transaction rolls it back and
--    releases the process's claims, exit 130/143 (item 13). A store in a folder the reader cannot write is read
--    (item 14).
--  * The kill test lives in tests/lua/test_bapps.lua (it needs the experiment).
local dpl = require "dpl"
local test = require "dpl.test"
local results = require "dpl.results"
local report = require "dpl.benchmarks.report"
local bapps = require "dpl.benchmarks.bapps"
local json = require "dpl.json"
local suite = test.suite("results", {configurations = {"default"}})   -- default only: the SQLite store

local here = arg[0]:match("^(.*)/[^/]*$") or "."
local root = here .. "/.."
local tmp = os.tmpname() .. "_results"
os.execute(("rm -f '%s'; mkdir -p '%s'"):format(tmp, tmp))
suite.teardown = function() os.execute(("rm -rf '%s'"):format(tmp)) end
-- the dplrun binary running this suite: the lowest negative index of `arg` (as tests/lua/test_host.lua)
local i_exe = 0
while arg[i_exe - 1] do i_exe = i_exe - 1 end
local dplrun = arg[i_exe]
if not dplrun:find("/") then dplrun = "./" .. dplrun end
if dplrun:sub(1, 1) ~= "/" then dplrun = os.getenv("PWD") .. "/" .. dplrun end
local n_db = 0
local function fresh() n_db = n_db + 1; return ("%s/db%d/r.sqlite"):format(tmp, n_db) end

local slurp = test.read

local function bapps_run(arch, layer, m, extra)
  local scores = {["2afc.mean"] = m, ["2afc.traditional"] = m + 0.01, ["2afc.cnn"] = m - 0.01, ["jnd.pooled"] = m - 0.1,
                  ["jnd.cnn"] = m - 0.05, ["jnd.traditional"] = m - 0.15}
  local r = {experiment = "bapps", arch = arch, layer = layer, config = {experiment = "bapps", arch = arch, layer = layer},
             device = "cpu", started = 1000, ended = 1012.5, scores = scores, timing = {images_per_s = 321.5}}
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

suite:add("json: canonical encoding, round trip, errors", function(t)
  t:eq(json.encode({b = 1, a = {2, 3}, c = "x\"y\n"}), '{"a":[2,3],"b":1,"c":"x\\"y\\n"}')
  t:eq(json.encode({}), "{}")
  t:eq(json.encode(json.array()), "[]")
  t:eq(json.encode(0.1), "0.1")
  t:eq(json.encode(1 / 3), "0.3333333333333333")
  local v = json.decode('{"a": [1, 2.5e-3, true, null, "\\u00e9"], "b": {"c": -7}}')
  t:eq(v.a[2], 2.5e-3)
  t:eq(v.a[3], true)
  t:eq(v.a[5], "\195\169")
  t:eq(v.b.c, -7)
  t:eq(json.decode(json.encode({x = 1 / 3})).x, 1 / 3, "doubles round-trip")
  t:raises(function() json.encode({x = 0 / 0}) end, "value.x is nan")
  t:raises(function() json.decode('{"a": }') end, "unexpected character")
  t:raises(function() json.decode('[1, 2] x') end, "trailing characters")
end)

suite:add("config hash: stable, independent of key order, sensitive to values", function(t)
  local a = results.config_hash({arch = "alexnet", layer = "M", data = {subsets = {"cnn"}}})
  local b = results.config_hash({data = {subsets = {"cnn"}}, layer = "M", arch = "alexnet"})
  t:eq(a, b)
  t:eq(#a, 64)
  t:ok(a ~= results.config_hash({arch = "alexnet", layer = "L", data = {subsets = {"cnn"}}}), "layer changes the hash")
  t:eq(results.sha256_string("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "SHA-256 of abc")
end)

suite:add("open: creates the folder and schema, WAL mode, reopen, clear errors", function(t)
  local path = fresh()
  local db = results.open(path)
  t:eq(db:query("PRAGMA journal_mode")[1].journal_mode, "wal")
  t:eq(db:query("PRAGMA user_version")[1].user_version, 3)
  db:record(bapps_run("alexnet", "M", 0.7))
  db:close()
  local again = results.open(path)
  t:eq(#again:runs(), 1, "runs survive reopening")
  again:close()
  local ro = results.open(path, {readonly = true})
  t:eq(#ro:runs(), 1, "read-only")
  ro:close()
  t:raises(function() results.open(tmp .. "/none/x.sqlite", {readonly = true}) end, "no results database at")
  local junk = tmp .. "/junk.sqlite"
  local f = io.open(junk, "wb"); f:write(("not a database "):rep(100)); f:close()
  t:raises(function() results.open(junk) end, junk)
end)

suite:add("record: scores round trip, finished lookup by config hash, failed runs, filters", function(t)
  local db = results.open(fresh())
  local run = bapps_run("alexnet", "M", 0.69)
  local id = db:record(run)
  local hash = results.config_hash(run.config)
  local row = db:finished("bapps", hash)
  t:ok(row ~= nil and row.id == id, "finished run found by its config hash")
  t:eq(row.config_hash, hash)
  t:eq(row.seconds, 12.5)
  t:eq(row.started, "1970-01-01T00:16:40Z")
  t:eq(json.decode(row.timing).images_per_s, 321.5)
  t:ok(row.code_version:find("dpl " .. dpl.version, 1, true) ~= nil, "code version names the dpl version")
  t:eq(db:finished("bapps", results.config_hash({other = true})), nil)
  t:eq(db:finished("other", hash), nil, "the experiment is part of the key")
  db:record(bapps_run("alexnet", "L", 0, {status = "failed", error = "boom", scores = {}}))
  local fin = db:runs({experiment = "bapps"})
  t:eq(#fin, 1, "failed runs are not listed as finished")
  for k, v in pairs(run.scores) do t:eq(fin[1].scores[k], v, "score " .. k) end
  t:eq(#db:runs({status = "any"}), 2)
  t:eq(db:runs({status = "failed"})[1].error, "boom")
  t:eq(db:finished("bapps", results.config_hash(bapps_run("alexnet", "L", 0).config)), nil, "a failed run is redone")
  db:record(bapps_run("alexnet", "M", 0.70))
  t:eq(#db:runs({arch = "alexnet", layer = "M"}), 2)
  local latest = db:runs({arch = "alexnet", layer = "M", latest = true})
  t:eq(#latest, 1)
  t:eq(latest[1].scores["2afc.mean"], 0.70, "latest run of a configuration")
  t:raises(function() db:record({experiment = "bapps", config = {}, scores = {x = "high"}}) end, "score x")
  db:close()
end)

suite:add("a version-1 store gains the claims table when opened", function(t)
  local path = fresh()
  local db = results.open(path)
  db:record(bapps_run("alexnet", "M", 0.7))
  db:exec("DROP TABLE claims; PRAGMA user_version = 1;")
  db:close()
  db = results.open(path)
  t:eq(db:query("PRAGMA user_version")[1].user_version, 3)
  t:eq(#db:claims(), 0)
  t:eq(#db:runs(), 1, "the runs are kept")
  db:close()
end)

suite:add("a version-2 store: BAPPS's old distance name is renamed and its runs keep resuming (schema 3)", function(t)
  local path = fresh()
  local db = results.open(path)
  local new_config = {experiment = "bapps", arch = "alexnet", layer = "M", distance = "normalized-sq-l2", limit = 2,
                      data = {dir = "/data/BAPPS", counts = {["2afc/cnn"] = 4}}}
  local old_config = {}
  for k, v in pairs(new_config) do old_config[k] = v end
  -- the name stores before schema 3 recorded: the distance with a parenthesised note (docs/benchmarks/bapps.md)
  old_config.distance = "normalized-sq-l2 (an earlier note)"
  local lpips_config = {experiment = "bapps", arch = "alexnet", layer = "lpips", distance = "lpips-v0.1"}
  db:record({experiment = "bapps", arch = "alexnet", layer = "M", config = old_config, scores = {["2afc.mean"] = 0.7}})
  db:record({experiment = "bapps", arch = "alexnet", layer = "lpips", config = lpips_config, scores = {["2afc.mean"] = 0.6}})
  db:exec(("INSERT INTO claims VALUES ('bapps', '%s', 'alexnet M', 'h', 1, NULL, 'x', 0)"):format(
    results.config_hash(old_config)))
  db:exec("PRAGMA user_version = 2;")
  db:close()
  db = results.open(path)
  t:eq(db:query("PRAGMA user_version")[1].user_version, 3)
  local prev = db:finished("bapps", results.config_hash(new_config))
  t:ok(prev ~= nil, "the renamed configuration's finished run is found by its new hash")
  t:eq(db:finished("bapps", results.config_hash(old_config)), nil, "nothing is left under the old hash")
  t:eq(db:finished("bapps", results.config_hash(lpips_config)) ~= nil, true, "other configurations are untouched")
  local runs = db:runs({layer = "M"})
  t:eq(#runs, 1)
  t:eq(runs[1].config, require("dpl.json").encode(new_config), "the configuration text is the canonical encoding")
  t:eq(runs[1].scores["2afc.mean"], 0.7, "scores are kept")
  t:eq(db:query("SELECT config_hash FROM claims")[1].config_hash, results.config_hash(new_config), "claims follow")
  db:close()
end)

-- a pid that no process has (a shell that has exited)
local function dead_pid()
  local p = io.popen("sh -c 'echo $$'")
  local pid = tonumber(p:read("*l"))
  p:close()
  return pid
end

suite:add("claims: refused while held by a live process, taken over from dead, reused or silent holders", function(t)
  local db = results.open(fresh())
  local hash = results.config_hash({cell = 1})
  local c = db:claim("bapps", hash, {label = "alexnet M"})
  t:ok(c, "a free cell is claimed")
  local rows = db:claims("bapps")
  t:eq(#rows, 1)
  t:eq(rows[1].label, "alexnet M")
  t:eq(rows[1].pid, results.pid())
  t:eq(rows[1].host, results.host())
  t:ok(rows[1].alive)
  t:ok(db:claim("bapps", hash), "claiming again from the same process is fine")
  local function hold(host, pid, started, heartbeat)
    db:query("UPDATE claims SET host = ?, pid = ?, pid_started = ?, heartbeat = ? WHERE config_hash = ?", host, pid,
      started, heartbeat, hash)
  end
  -- a live process on this host (pid 1, with its real start time): refused
  hold(results.host(), 1, results.process_started(1), results.now())
  local none, why = db:claim("bapps", hash)
  t:eq(none, nil, "held by a live process")
  t:eq(why.holder.pid, 1)
  -- the same pid but another start time: the pid was reused, the holder is gone
  hold(results.host(), 1, "12345", results.now())
  t:ok(db:claim("bapps", hash), "a reused pid's claim is taken over")
  -- a dead process on this host
  hold(results.host(), dead_pid(), nil, results.now())
  local c2 = db:claim("bapps", hash)
  t:ok(c2 and c2.taken_over, "a dead process's claim is taken over")
  -- a process killed but not yet reaped (a zombie: what kill -9 leaves until the parent waits; a popen child stays
  -- one until the pipe is closed)
  local p = io.popen("echo $$")                 -- the shell popen starts, a child of this process
  local zombie = tonumber(p:read("*l"))
  local state
  for _ = 1, 200 do
    state = select(2, results.process_started(zombie))
    if state == "Z" then break end
    os.execute("sleep 0.01")
  end
  t:eq(state, "Z", "the popen child is a zombie until the pipe is closed")
  hold(results.host(), zombie, results.process_started(zombie), results.now())
  local c3 = db:claim("bapps", hash)
  t:ok(c3 and c3.taken_over, "an exited, unreaped process's claim is taken over")
  p:close()
  -- another host: live while its heartbeat is recent, stale after the timeout
  hold("elsewhere", 4242, nil, results.now() - 60)
  t:eq(db:claim("bapps", hash), nil, "another host with a recent heartbeat")
  t:eq(db:claim("bapps", hash, {timeout_s = 30}) ~= nil, true, "a silent host's claim is taken over")
  -- heartbeat, then losing the claim to another process
  local mine = db:claim("bapps", hash)
  t:ok(mine:touch(true), "touch keeps it")
  hold("elsewhere", 4242, nil, results.now())
  t:eq(mine:touch(true), false, "touch tells when the claim was taken over")
  db:close()
end)

suite:add("experiments/results.lua --claims lists the cells being computed and their holders", function(t)
  local path = fresh()
  local db = results.open(path)
  t:ok(db:claim("bapps", results.config_hash({cell = 2}), {label = "vgg16 L"}))
  db:query("INSERT INTO claims (experiment, config_hash, label, host, pid, started, heartbeat) VALUES " ..
    "('bapps', 'x', 'alexnet E', 'elsewhere', 7, '2024-01-01T00:00:00Z', 0)")
  db:close()
  local p = io.popen(("DPL_QUIET=1 %s %s/experiments/results.lua --db '%s' --claims 2>&1"):format(dplrun, root, path))
  local out = p:read("*a")
  p:close()
  t:ok(out:find("vgg16 L", 1, true) and out:find(results.host(), 1, true) and out:find("alive", 1, true), out)
  t:ok(out:find("alexnet E", 1, true) and out:find("stale", 1, true), out)
  t:ok(out:find("2 cells being computed", 1, true), out)
end)

suite:add("claims: record releases the claim; a finished cell is not claimed again", function(t)
  local db = results.open(fresh())
  local run = bapps_run("alexnet", "M", 0.69)
  local hash = results.config_hash(run.config)
  t:ok(db:claim("bapps", hash))
  db:record(run)
  t:eq(#db:claims(), 0, "released with the run")
  local none, why = db:claim("bapps", hash)
  t:eq(none, nil)
  t:eq(why.finished.config_hash, hash)
  t:ok(db:claim("bapps", hash, {force = true}), "force: claimed although finished")
  db:record(bapps_run("alexnet", "M", 0, {status = "failed", error = "boom", scores = {}}))
  t:eq(#db:claims(), 0, "a failed run releases it too")
  db:close()
end)

-- Runs a Lua script in a child dplrun; returns its pid (the child runs in the background, output to `log`).
local function spawn(script_text, args, log)
  local path = os.tmpname() .. ".lua"
  local f = io.open(path, "w"); f:write(script_text); f:close()
  local p = io.popen(("DPL_QUIET=1 DPL_NO_VULKAN=1 %s %s %s >%s 2>&1 & echo $!"):format(dplrun, path,
    table.concat(args or {}, " "), log))
  local pid = tonumber(p:read("*l"))
  p:close()
  return pid
end

local function wait_exit(pid, seconds)
  for _ = 1, seconds * 20 do
    if os.execute("kill -0 " .. pid .. " 2>/dev/null") ~= 0 and os.execute("kill -0 " .. pid .. " 2>/dev/null") ~= true then
      return true
    end
    os.execute("sleep 0.05")
  end
  return false
end

local WORKER = [[
local results = require "dpl.results"
local db = results.open(arg[1])
local computed = 0
for i = 1, 8 do
  local config = {experiment = "bapps", arch = "net" .. i, layer = "M"}
  local claim = db:claim("bapps", results.config_hash(config), {label = config.arch})
  if claim then
    os.execute("sleep 0.15")                           -- the computation
    db:record({experiment = "bapps", arch = config.arch, layer = "M", config = config, scores = {x = i}})
    computed = computed + 1
  end
end
print("computed " .. computed)
]]

suite:add("claims: two processes on one store compute each of 8 cells once", function(t)
  local path = fresh()
  results.open(path):close()
  local a = spawn(WORKER, {path}, tmp .. "/worker_a.log")
  local b = spawn(WORKER, {path}, tmp .. "/worker_b.log")
  t:ok(wait_exit(a, 60) and wait_exit(b, 60), "the workers finished")
  local na = tonumber((slurp(tmp .. "/worker_a.log") or ""):match("computed (%d+)"))
  local nb = tonumber((slurp(tmp .. "/worker_b.log") or ""):match("computed (%d+)"))
  t:ok(na and nb, "worker output: " .. tostring(slurp(tmp .. "/worker_a.log")) .. tostring(slurp(tmp .. "/worker_b.log")))
  t:eq(na + nb, 8, "each cell computed once")
  t:ok(na > 0 and nb > 0, ("both worked (%d and %d)"):format(na, nb))
  local db = results.open(path, {readonly = true})
  t:eq(#db:runs({status = "any"}), 8, "8 rows for 8 cells")
  t:eq(#db:claims(), 0, "no claim left")
  db:close()
end)

suite:add("SIGINT / SIGTERM in a transaction: rolled back, claims released, exit 130 / 143", function(t)
  local child = os.tmpname() .. ".lua"
  local f = io.open(child, "w")
  f:write([[
    local results = require "dpl.results"
    require("dpl.signal").resumable()
    local db = results.open(arg[1])
    assert(db:claim("bapps", "cell-1", {label = "held"}))
    db:transaction(function()
      db:query("INSERT INTO runs (experiment, config, config_hash, status) VALUES ('bapps', '{}', 'h', 'finished')")
      io.stdout:write("in transaction\n"); io.stdout:flush()
      while true do db:query("SELECT 1") end
    end)
  ]])
  f:close()
  for _, sig in ipairs {{"INT", 130}, {"TERM", 143}} do
    local path = fresh()
    results.open(path):close()
    local log = tmp .. "/sig_" .. sig[1] .. ".log"
    -- start the child, wait until it is inside its transaction, signal it, report its exit status
    local p = io.popen(([[DPL_QUIET=1 DPL_NO_VULKAN=1 %s %s '%s' >%s 2>&1 & pid=$!
      for i in $(seq 200); do grep -q 'in transaction' %s && break; sleep 0.05; done
      kill -%s $pid; wait $pid; echo "rc=$?"]]):format(dplrun, child, path, log, log, sig[1]))
    local status = p:read("*a")
    p:close()
    local out = slurp(log)
    t:ok(out:find("in transaction", 1, true), "the child reached its transaction: " .. out)
    t:eq(tonumber(status:match("rc=(%d+)")), sig[2], "exit status")
    t:ok(out:find("interrupted by SIG" .. sig[1] .. "; rerun the same command to resume", 1, true), out)
    local db = results.open(path, {readonly = true})
    t:eq(#db:runs({status = "any"}), 0, "the open transaction was rolled back")
    t:eq(#db:claims(), 0, "the claim was released")
    db:close()
  end
end)

suite:add("a WAL store in a folder the reader cannot write is read (immutable)", function(t)
  local dir = tmp .. "/readonly"
  local path = dir .. "/r.sqlite"
  local db = results.open(path)
  db:record(bapps_run("alexnet", "M", 0.7))
  db:close()
  -- as root, permissions do not stop writes: read as the user nobody instead
  local as_reader = ""
  local p = io.popen("id -u")
  local root_user = p:read("*l") == "0"
  p:close()
  if root_user then
    os.execute(("chmod 755 '%s' '%s'; chmod 644 '%s'"):format(tmp, dir, path))   -- tmp is in /tmp, which anyone can cross
    as_reader = "setpriv --reuid=65534 --regid=65534 --clear-groups "
    -- the checkout itself may be where nobody cannot go (e.g. a clone in a mktemp -d folder, mode 700): then this
    -- user cannot run dplrun at all, which says nothing about the store
    local probe = io.popen(("%s%s --help >/dev/null 2>&1 && test -r '%s/experiments/results.lua' && echo yes"):format(
      as_reader, dplrun, root))
    local reachable = probe:read("*l") == "yes"
    probe:close()
    if not reachable then
      t:skip("the user nobody cannot run " .. dplrun .. " (its folder is private); the check needs a second user")
    end
  else
    os.execute(("chmod 555 '%s'"):format(dir))
  end
  local q = io.popen(("DPL_QUIET=1 DPL_NO_VULKAN=1 %s%s %s/experiments/results.lua --db '%s' 2>&1; echo rc=$?"):format(
    as_reader, dplrun, root, path))
  local out = q:read("*a")
  q:close()
  os.execute(("chmod 755 '%s'"):format(dir))
  t:ok(out:find("rc=0", 1, true), out)
  t:ok(out:find("alexnet", 1, true), out)
end)

suite:add("record is one transaction: a failure half-way or a held lock leaves nothing", function(t)
  local path = fresh()
  local db = results.open(path)
  -- fail on the third statement of the transaction (run row and first score written, second score fails)
  local real, calls = db.query, 0
  db.query = function(self, sql, ...)
    calls = calls + 1
    if calls == 3 then error("simulated crash after a partial write") end
    return real(self, sql, ...)
  end
  t:raises(function() db:record(bapps_run("vgg16", "E", 0.6)) end, "simulated crash")
  db.query = nil
  t:eq(db:query("SELECT COUNT(*) AS n FROM runs")[1].n, 0, "no run row")
  t:eq(db:query("SELECT COUNT(*) AS n FROM scores")[1].n, 0, "no score rows")
  -- another connection holds the write lock: record waits for the busy timeout, then fails without a trace
  db:close()
  db = results.open(path, {busy_timeout_ms = 50})
  local other = results.open(path, {busy_timeout_ms = 50})
  other:exec("BEGIN IMMEDIATE")
  t:raises(function() db:record(bapps_run("vgg16", "E", 0.6)) end, "locked")
  other:exec("ROLLBACK")
  t:eq(#db:runs({status = "any"}), 0)
  db:record(bapps_run("vgg16", "E", 0.6))
  t:eq(#db:runs(), 1, "recording works once the lock is gone")
  -- a reader sees only complete runs while a writer is inside a transaction (WAL)
  other:exec("BEGIN IMMEDIATE")
  other:query("INSERT INTO runs (experiment, config, config_hash, status) VALUES ('bapps', '{}', 'x', 'finished')")
  t:eq(#db:runs(), 1, "uncommitted rows are invisible")
  other:exec("ROLLBACK")
  other:close()
  db:close()
end)

suite:add("file_sha256: cached by path, size and mtime; recomputed when the file changes", function(t)
  local db = results.open(fresh())
  local file = tmp .. "/weights.bin"
  local f = io.open(file, "wb"); f:write("abc"); f:close()
  local h, cached = db:file_sha256(file)
  t:eq(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
  t:eq(cached, false)
  h, cached = db:file_sha256(file)
  t:eq(cached, true, "second call from the cache")
  os.execute("sleep 0.01")
  f = io.open(file, "wb"); f:write("abcd"); f:close()
  h, cached = db:file_sha256(file)
  t:eq(cached, false, "size/mtime changed")
  t:eq(h, "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589")
  t:raises(function() db:file_sha256(tmp .. "/missing.bin") end, "cannot stat")
  db:close()
end)

suite:add("report: Table V layout, detail, CSV and the --json shape", function(t)
  local db = results.open(fresh())
  for i, l in ipairs {"E", "S", "M", "L"} do db:record(bapps_run("alexnet", l, 0.6 + i / 100)) end
  db:record(bapps_run("vgg11", "M", 0.659))
  local runs = db:runs({experiment = "bapps", latest = true})
  local tab = bapps.table(runs)
  local lines = {}
  for line in tab:gmatch("[^\n]+") do lines[#lines + 1] = line end
  t:ok(lines[1]:match("^configuration %x+: full data; weights none %(5 runs%)$"), "configuration: " .. lines[1])
  -- the training benchmarks' presets are named as such, never "full data" (regression: a --quick table said so)
  t:ok(report.describe_config({preset = "quick", epochs = 2}):find("^QUICK configuration %(%-%-quick: not the " ..
    "paper's protocol%); weights none; epochs 2$") ~= nil, report.describe_config({preset = "quick", epochs = 2}))
  t:ok(report.describe_config({preset = "custom"}):find("^CUSTOM configuration") ~= nil, "custom preset")
  t:ok(report.describe_config({preset = "paper"}):find("^full data; weights none$") ~= nil, "paper preset")
  table.remove(lines, 1)
  t:ok(lines[1]:find("2AFC E", 1, true) and lines[1]:find("JND E", 1, true), "header: " .. lines[1])
  t:eq(lines[3], "VGG Networks", "families in the paper's order")
  t:ok(lines[4]:match("^VGG%-11%s+%-%s+%-%s+0%.659%s+%-"), "VGG-11 row: " .. lines[4])
  t:eq(lines[5], "Uncategorized Networks")
  t:ok(lines[6]:match("^AlexNet%s+0%.610%s+0%.620%s+0%.630%s+0%.640%s+0%.510"), "AlexNet row: " .. lines[6])
  t:ok(bapps.detail(runs):find("2afc traditional", 1, true), "detail header")
  db:record(bapps_run("squeezenet1_1", "lpips", 0.7))
  local with_lpips = bapps.table(db:runs({experiment = "bapps", latest = true}))
  t:ok(with_lpips:find("\nSqueezeNet%s+0%.700%s+0%.600\n?$") ~= nil, "LPIPS runs in their own table: " .. with_lpips)
  t:ok(not with_lpips:find("SqueezeNet%s+%-"), "no LPIPS row in Table V")
  local csv = report.csv(runs)
  local header = csv:match("^[^\n]+")
  t:ok(header:find("^architecture,arch,family,layer,layer_index,imagenet_top1,2afc.cnn,2afc.mean,") ~= nil, header)
  t:ok(csv:find("\nAlexNet,alexnet,AlexNet,E,1,56.52,0.6,0.61,", 1, true) ~= nil, "AlexNet E line")
  local e = bapps.json({arch = "alexnet", layer = "M"}, runs[3].scores)
  t:eq(json.encode(e), '{"2afc":{"cnn":0.62,"mean":0.63,"traditional":0.64},"arch":"alexnet",' ..
    '"jnd":{"cnn":0.58,"pooled":0.53,"traditional":0.48},"layer":"M"}')
  db:close()
end)

-- a BAPPS run as the runner records it: the data identity, limit and weights in the configuration
local ALEX_SHA = "7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02"   -- torchvision's alexnet file
local function stored_run(arch, layer, m, o)
  o = o or {}
  local counts = o.counts or {["2afc/cnn"] = 4720, ["2afc/traditional"] = 4720, ["jnd/cnn"] = 3000}
  local w = o.weights_sha256 or ALEX_SHA
  local r = bapps_run(arch, layer, m, {weights_sha256 = w, weights = o.weights or "/w/alexnet-owt-7be5be79.pth"})
  r.config = {experiment = "bapps", arch = arch, layer = layer, weights_sha256 = w, limit = o.limit,
              distance = layer == "lpips" and "lpips-v0.1" or "normalized-sq-l2",
              data = {dir = "/data/BAPPS", counts = counts}}
  if o.drop_score then r.scores[o.drop_score] = nil end
  return r
end

-- Regression (issue 11): the table showed the newest run per arch/layer whatever its configuration, so a quick
-- `--limit 2 --weights random:1` run replaced the full run in Table V.
suite:add("tables combine runs of one configuration: a newer limited untrained run does not replace a full one",
  function(t)
  local path = fresh()
  local db = results.open(path)
  for i, l in ipairs {"E", "S", "M", "L"} do db:record(stored_run("alexnet", l, 0.6 + i / 100)) end
  db:record(stored_run("alexnet", "lpips", 0.7))
  -- newer: 2 items per subset, untrained weights
  for _, l in ipairs {"M", "L"} do
    db:record(stored_run("alexnet", l, 0.5, {limit = 2, weights_sha256 = "random:1", weights = "random:1",
      counts = {["2afc/cnn"] = 2, ["2afc/traditional"] = 2, ["jnd/cnn"] = 2}}))
  end
  local runs = db:runs({experiment = "bapps", latest = true})
  db:close()
  local tab = bapps.table(runs)
  t:ok(tab:find("AlexNet%s+0%.610%s+0%.620%s+0%.630%s+0%.640") ~= nil, "the full runs' row: " .. tab)
  t:ok(not tab:find("0.500", 1, true), "no limited run in the table: " .. tab)
  local first = tab:match("^[^\n]+")
  t:ok(first:find("full data", 1, true) and first:find("weights torchvision", 1, true) and
       first:find("/data/BAPPS (3 subsets, 12440 items)", 1, true), "the table says its configuration: " .. first)
  t:ok(tab:find("LPIPS v0.1", 1, true) and tab:find("AlexNet%s+0%.700"), "LPIPS table of the same data: " .. tab)
  t:ok(tab:find("not in this table", 1, true) and tab:find("UNTRAINED weights (random:1)", 1, true) and
       tab:find("LIMITED to 2 per subset", 1, true), "the other configuration is named: " .. tab)
  -- choosing the other configuration by its id: the untrained runs, labelled
  local groups = report.config_groups(runs)
  local other
  for _, g in ipairs(groups) do if g.config.limit then other = g end end
  t:ok(other ~= nil, "a group for the limited runs")
  local tab2 = bapps.table(runs, {config = other.id})
  t:ok(tab2:find("AlexNet%s+%-%s+%-%s+0%.500%s+0%.500") ~= nil and tab2:find("UNTRAINED", 1, true), tab2)
  t:raises(function() bapps.table(runs, {config = "ffffffff"}) end, "no such configuration")
  -- the command line: default table, --config, --all-configs; the list marks untrained runs
  local function cli(a)
    local p = io.popen(("DPL_QUIET=1 %s %s/experiments/results.lua --db '%s' %s 2>&1; echo rc=$?"):format(dplrun,
      root, path, a))
    local out = p:read("*a")
    p:close()
    return out
  end
  local out = cli("--experiment bapps --table")
  t:ok(out:find("AlexNet%s+0%.610%s+0%.620%s+0%.630%s+0%.640") and not out:find("0.500", 1, true), out)
  out = cli("--experiment bapps --table --config " .. other.id)
  t:ok(out:find("AlexNet%s+%-%s+%-%s+0%.500%s+0%.500") and out:find("UNTRAINED", 1, true), out)
  out = cli("--experiment bapps --table --all-configs")
  t:ok(out:find("0.640", 1, true) and out:find("0.500", 1, true), out)
  out = cli("--experiment bapps --table --config 0000")
  t:ok(out:find("no such configuration", 1, true) and out:find("rc=2", 1, true) and not out:find("traceback"), out)
  out = cli("--experiment bapps")
  t:ok(out:find("UNTRAINED random:1", 1, true) and out:find("torchvision", 1, true), out)
end)

-- Regression (issue 11): a missing score shifted every later CSV cell, so Python's csv module found weights_sha256
-- under another header.
suite:add("CSV: missing scores are empty cells, every row has the header's columns (read back by Python's csv)",
  function(t)
  local path = fresh()
  local db = results.open(path)
  db:record(stored_run("alexnet", "M", 0.6))
  db:record(stored_run("alexnet", "L", 0.6, {drop_score = "2afc.cnn"}))          -- a --subsets traditional run
  db:record(stored_run("alexnet", "E", 0.6, {weights_sha256 = "random:3", weights = "random:3"}))
  local runs = db:runs({experiment = "bapps"})
  db:close()
  local file = tmp .. "/missing.csv"
  local f = io.open(file, "w"); f:write(report.csv(runs, {scores = bapps.scores})); f:close()
  local py = [[
import csv, json, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
header = rows[0]
assert all(len(r) == len(header) for r in rows), [len(r) for r in rows]
d = list(csv.DictReader(open(sys.argv[1], newline="")))
print(json.dumps({"header": header, "rows": d}))
]]
  local p = io.popen(("/usr/bin/python3 -c '%s' '%s' 2>&1"):format(py, file))
  local out = p:read("*a")
  p:close()
  local ok, v = pcall(json.decode, out)
  t:ok(ok, "python read the CSV: " .. out)
  if not ok then return end
  local by_layer = {}
  for _, r in ipairs(v.rows) do by_layer[r.layer] = r end
  t:eq(by_layer.L["2afc.cnn"], "", "a missing score is an empty cell")
  t:eq(by_layer.L["2afc.traditional"], "0.61")
  t:eq(by_layer.L["jnd.pooled"], "0.5")
  t:eq(by_layer.L.weights_sha256, ALEX_SHA, "weights_sha256 under its own header")
  t:eq(by_layer.L.weights, "torchvision")
  t:eq(by_layer.M["2afc.cnn"], "0.59")
  t:eq(by_layer.E.weights, "untrained random:3", "untrained runs are labelled")
  t:eq(by_layer.E["2afc.frameinterp"], "", "a subset no run has: empty")
  t:eq(by_layer.M.experiment, "bapps")
  local want = {"2afc.traditional", "2afc.cnn", "2afc.mean", "jnd.pooled", "weights", "weights_sha256", "config_hash"}
  for _, h in ipairs(want) do
    local found = false
    for _, x in ipairs(v.header) do found = found or x == h end
    t:ok(found, "column " .. h)
  end
  t:ok(#v.header >= #bapps.scores + 14, "every BAPPS score has its column, present or not")
end)

suite:add("experiments/results.lua: list, filter, CSV, table; missing database", function(t)
  local path = fresh()
  local db = results.open(path)
  for i, l in ipairs {"E", "S", "M", "L"} do db:record(bapps_run("squeezenet1_1", l, 0.6 + i / 100)) end
  db:record(bapps_run("alexnet", "E", 0.5))
  db:close()
  local function run(a)
    local p = io.popen(("DPL_QUIET=1 %s %s/experiments/results.lua --db '%s' %s 2>&1"):format(dplrun, root, path, a))
    local out = p:read("*a")
    local ok = p:close()
    return out, ok
  end
  local out = run("")
  t:ok(out:find("squeezenet1_1", 1, true) and out:find("2afc.mean=0.6100", 1, true), out)
  t:ok(out:find("5 runs in", 1, true) ~= nil, out)
  out = run("--arch alexnet")
  t:ok(out:find("1 runs in", 1, true) ~= nil, out)
  out = run("--experiment bapps --table")
  t:ok(out:find("SqueezeNet%s+0%.610%s+0%.620%s+0%.630%s+0%.640") ~= nil, out)
  local csv = tmp .. "/out.csv"
  out = run("--layer M --csv " .. csv)
  local text = slurp(csv) or ""
  local n = 0
  for _ in text:gmatch("\n") do n = n + 1 end
  t:eq(n, 2, "header and one M line: " .. text)
  t:ok(text:find("SqueezeNet,squeezenet1_1,SqueezeNet,M,7,58.18,", 1, true) ~= nil, text)
  out = run("--help")
  t:ok(out:find("--csv", 1, true) ~= nil, "help")
  local p = io.popen(("DPL_QUIET=1 %s %s/experiments/results.lua --db %s/nothing.sqlite 2>&1; echo rc=$?"):format(
    dplrun, root, tmp))
  out = p:read("*a")
  p:close()
  t:ok(out:find("no results database at", 1, true) and not out:find("rc=0", 1, true), out)
end)

return suite

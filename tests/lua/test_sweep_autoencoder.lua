-- The autoencoder benchmark's sweep cells (svhn, stl10) through experiments/sweep.lua, on the tiny data root of
-- tests/ref/autoencoder_fixture.py (the real SVHN .mat and STL-10 binary formats), a random-weight AlexNet and the
-- smallest training (1 autoencoder epoch, the linear MLP for 2 epochs), in a child dplrun each time:
--  * --dry-run lists the 4 cells (svhn and stl10 x layers E, S) as pending; the sweep computes each once: the store
--    has one finished autoencoder row per cell with the dataset in its configuration and the score the analysis reads
--    (test.accuracy, docs/analysis.md), and the analysis finds them as svhn/stl10 accuracy;
--  * a second run computes nothing and leaves the store as it was; --status shows the 4 cells done;
--  * --dataset is fixed by the names svhn and stl10 (one line, exit 2).
local test = require "dpl.test"
local results = require "dpl.results"
local analysis = require "dpl.benchmarks.analysis"
local S = test.suite("sweep autoencoder", {configurations = {"default"}})   -- runs dplrun --device cpu

local here = arg[0]:match("^(.*)/[^/]*$") or "."
local root = here .. "/.."
local dplrun = test.dplrun()
local tmp = test.tmpdir("sweep_ae")
S.teardown = function() os.execute(("rm -rf '%s'"):format(tmp)) end

local fixture = dofile(root .. "/tests/lua/autoencoder_fixture.lua")
local function need_data(t) fixture.need(t, root, tmp .. "/data", "64 60 30") end

local DB = tmp .. "/r/dpl.sqlite"
local GRID = ("--benchmarks svhn,stl10 --arch alexnet --layer E,S --weights random:1 --quick --data '%s/data' " ..
  "--ae-epochs 1 --mlp-epochs 2 --mlps linear --batch 32 --db '%s'"):format(tmp, DB)

local function sweep(a)
  return test.run_command(("cd '%s' && DPL_NO_PROGRESS=1 '%s' --quiet '%s/experiments/sweep.lua' %s --device cpu")
    :format(tmp, dplrun, root, a))
end

-- the store's rows: every run (any status) as {experiment, dataset, arch, layer, status, accuracy, id}
local function rows()
  local db = results.open(DB, {readonly = true})
  local out = {}
  for _, r in ipairs(db:runs({status = "any"})) do
    out[#out + 1] = {experiment = r.experiment, dataset = r.config and require("dpl.json").decode(r.config).dataset,
                     arch = r.arch, layer = r.layer, status = r.status, accuracy = r.scores["test.accuracy"], id = r.id}
  end
  db:close()
  return out
end

local first
S:add("svhn and stl10 cells: dry run, each cell computed once with test.accuracy, the analysis reads them", function(t)
  need_data(t)
  local rc, out = sweep(GRID .. " --dry-run")
  t:eq(rc, 0, out)
  for _, b in ipairs {"svhn", "stl10"} do
    for _, l in ipairs {"E", "S"} do
      t:ok(out:find(("\n%s%%s+alexnet%%s+%s%%s+pending"):format(b, l)), ("%s %s not pending:\n%s"):format(b, l, out))
    end
  end
  t:ok(out:find("4 cells: 0 done, 0 running, 0 queued, 0 failed, 4 pending", 1, true), out)
  t:eq(io.open(DB), nil, "--dry-run created the store")
  rc, out = sweep(GRID)
  t:eq(rc, 0, out)
  t:ok(out:find("4 cell(s) run here: 4 computed, 0 failed", 1, true), out)
  first = rows()
  t:eq(#first, 4, "rows in the store")
  local seen = {}
  for _, r in ipairs(first) do
    t:eq(r.experiment, "autoencoder")
    t:eq(r.status, "finished")
    t:eq(r.arch, "alexnet")
    t:ok(type(r.accuracy) == "number" and r.accuracy >= 0 and r.accuracy <= 1,
      "test.accuracy is not a fraction: " .. tostring(r.accuracy))
    local k = r.dataset .. " " .. r.layer
    t:ok(not seen[k], "two rows of " .. k)
    seen[k] = true
  end
  for _, k in ipairs {"svhn E", "svhn S", "stl10 E", "stl10 S"} do t:ok(seen[k], "no row of " .. k) end
  -- the analysis's catalog reads these rows (docs/analysis.md: dataset in the configuration, test.accuracy)
  local data = analysis.load(DB, {benchmarks = analysis.benchmarks("svhn,stl10")})
  t:eq(data.cells, 4)
  for _, r in ipairs(first) do
    t:eq(data.values[r.dataset .. "/accuracy"].alexnet[r.layer], r.accuracy, r.dataset .. " " .. r.layer)
  end
end)

S:add("a second run computes nothing; --status; --dataset is the benchmark name's", function(t)
  need_data(t)
  t:ok(first ~= nil, "needs the first test's sweep")
  local rc, out = sweep(GRID)
  t:eq(rc, 0, out)
  t:ok(out:find("0 cell(s) run here: 0 computed, 0 failed; 4 cells: 4 done", 1, true), out)
  local again = rows()
  t:eq(#again, #first, "rows after the second run")
  for i, r in ipairs(again) do
    t:eq(r.id, first[i].id)
    t:eq(r.accuracy, first[i].accuracy)
  end
  rc, out = sweep("--status --db '" .. DB .. "'")
  t:eq(rc, 0, out)
  t:ok(out:find("svhn%s+alexnet%s+D%s+D"), out)
  t:ok(out:find("stl10%s+alexnet%s+D%s+D"), out)
  test.user_errors(t, sweep, {
    {GRID .. " --dataset stl10", "--dataset is set by the benchmark name svhn"},
  })
end)

return S

-- dpl.benchmarks.analysis: the paper's analysis (its Tables III-XI, correlations with the loss networks' attributes,
-- Figs. 2-5 style plots) from the results store, and the comparison with the published numbers. The command line is
-- experiments/analysis.lua; docs/analysis.md describes every output, the row shape each benchmark records, and the
-- choices (ties, missing cells).
--
--   local analysis = require "dpl.benchmarks.analysis"
--   local data = analysis.load("results/dpl.sqlite")                 -- or analysis.collect(runs)
--   local rk = analysis.ranking(data)                                  -- Table III
--   local best = analysis.best_layers(data)                            -- Table IV
--   local corr = analysis.correlations(data, attrs)                    -- attrs: analysis.attributes(archs)
--   local cmp = analysis.compare(data)                                  -- --compare-paper
--
-- data.values[score id][arch][layer] = number: the newest finished run of each (benchmark, arch, layer) that matches
-- the benchmark's experiment and configuration, its score read by name. A score id is "<benchmark>/<score>".
local json = require "dpl.json"
local results = require "dpl.results"
local lossnet = require "dpl.models.lossnet"
local report = require "dpl.benchmarks.report"
local paper = require "dpl.benchmarks.paper_tables"
local stats = require "dpl.benchmarks.stats"

local M = {}
M.LAYERS = lossnet.LAYER_NAMES
M.ARCHS = lossnet.ORDER

-- Benchmark 2 at one scale: PSNR and MSSIM (the reference's mean SSIM, dpl's "ssim") on each test set
local function superres(scale)
  local scores = {}
  for _, m in ipairs {{"psnr", "PSNR", 1}, {"ssim", "MSSIM", 3}} do
    for _, set in ipairs {"Set5", "Set14", "BSD100"} do
      scores[#scores + 1] = {id = m[1] .. "." .. set, key = ("test.%s.%s"):format(set, m[1]),
                             label = ("x%d %s %s"):format(scale, m[2], set), digits = m[3]}
    end
  end
  return {id = "superres" .. scale, number = 2, title = ("super-resolution x%d"):format(scale), experiment = "superres",
          config = {scale = scale}, scores = scores, main = "psnr.Set5"}
end

-- The paper's benchmarks: the experiment name and configuration fields a run must have, and the stored score
-- names read for each of the paper's scores (docs/analysis.md, "What the store must hold"). number: the paper's
-- benchmark (Table III averages over the scores of a number); main: the score that orders its loss networks where
-- one score must (the example strips: dpl.benchmarks.analysis_examples). Every score is better when higher.
M.BENCHMARKS = {
  {id = "bapps", number = 1, title = "BAPPS (perceptual similarity)", experiment = "bapps", main = "2afc",
   scores = {{id = "2afc", key = "2afc.mean", label = "2AFC", digits = 3},
             {id = "jnd", key = "jnd.pooled", label = "JND", digits = 3}}},
  superres(4),
  superres(8),
  -- eval = "fixed": the test split, last iteration (the faithful mode's accumulated numbers exceed 1; delineation.md)
  {id = "delineation", number = 3, title = "road delineation (MRD)", experiment = "delineation", config = {eval = "fixed"},
   main = "quality",
   scores = {{id = "correctness", key = "test.correctness", label = "MRD correctness", digits = 3},
             {id = "completeness", key = "test.completeness", label = "MRD completeness", digits = 3},
             {id = "quality", key = "test.quality", label = "MRD quality", digits = 3}}},
  {id = "svhn", number = 4, title = "autoencoder, SVHN", experiment = "autoencoder", config = {dataset = "svhn"},
   main = "accuracy",
   scores = {{id = "accuracy", key = "test.accuracy", label = "SVHN accuracy", digits = 3}}},
  {id = "stl10", number = 4, title = "autoencoder, STL-10", experiment = "autoencoder", config = {dataset = "stl10"},
   main = "accuracy",
   scores = {{id = "accuracy", key = "test.accuracy", label = "STL-10 accuracy", digits = 3}}},
}

-- score id -> {id, key, label, digits, benchmark = the benchmark entry}; benchmark id -> entry; all score ids in order
local SCORES, BY_ID, SCORE_ORDER = {}, {}, {}
for _, b in ipairs(M.BENCHMARKS) do
  BY_ID[b.id] = b
  for _, s in ipairs(b.scores) do
    local full = b.id .. "/" .. s.id
    SCORES[full] = {id = full, key = s.key, label = s.label, digits = s.digits, benchmark = b}
    SCORE_ORDER[#SCORE_ORDER + 1] = full
  end
end
M.SCORE_ORDER = SCORE_ORDER

function M.score(id) return SCORES[id] end
function M.benchmark(id) return BY_ID[id] end

-- "bapps,superres4" / "all" -> list of benchmark entries; an unknown name is an error naming the known ones
function M.benchmarks(list)
  if list == nil or list == "all" then return M.BENCHMARKS end
  local out = {}
  for name in tostring(list):gmatch("[^,%s]+") do
    if not BY_ID[name] then
      local known = {}
      for _, b in ipairs(M.BENCHMARKS) do known[#known + 1] = b.id end
      error(("unknown benchmark '%s' (known: %s, all)"):format(name, table.concat(known, ", ")), 0)
    end
    out[#out + 1] = BY_ID[name]
  end
  if #out == 0 then error("empty --benchmarks", 0) end
  return out
end

-- ---- reading the store ----------------------------------------------------------------------------------------------
local function matches(b, run, config, where)
  if run.experiment ~= b.experiment then return false end
  for k, v in pairs(b.config or {}) do
    if config[k] ~= v then return false end
  end
  for k, v in pairs(where or {}) do   -- a run whose configuration lacks the field is kept (other benchmarks)
    if config[k] ~= nil and tostring(config[k]) ~= v then return false end
  end
  return true
end

local LAYER_OK = {E = true, S = true, M = true, L = true}

-- The values of the given benchmarks (default all) from a list of stored runs (dpl.results DB:runs, oldest first).
-- opts.where: {config field = string} that runs whose configuration has the field must match (e.g. {preset =
-- "paper"}; runs without the field are kept). Returns
-- {values = {[score id] = {[arch] = {[layer] = v}}}, run_ids = {[score id] = {[arch] = {[layer] = run id}}},
--  hashes = {[benchmark id] = {[arch] = {[layer] = configuration hash of that run}}},
--  benchmarks = the entries, superseded = older runs of a cell not used, cells = cells read}.
function M.collect(runs, opts)
  opts = opts or {}
  local benches = opts.benchmarks or M.BENCHMARKS
  local data = {values = {}, run_ids = {}, hashes = {}, benchmarks = benches, superseded = 0, cells = 0}
  local seen = {}
  for _, b in ipairs(benches) do
    data.hashes[b.id] = {}
    for _, s in ipairs(b.scores) do
      data.values[b.id .. "/" .. s.id], data.run_ids[b.id .. "/" .. s.id] = {}, {}
    end
  end
  for _, r in ipairs(runs) do
    if r.arch and LAYER_OK[r.layer] and (r.status == nil or r.status == "finished") then
      local config = r.config
      if type(config) == "string" then
        local ok, c = pcall(json.decode, config)
        config = ok and type(c) == "table" and c or {}
      end
      for _, b in ipairs(benches) do
        if matches(b, r, config or {}, opts.where) then
          local cell = b.id .. "|" .. r.arch .. "|" .. r.layer
          if seen[cell] then data.superseded = data.superseded + 1 else data.cells = data.cells + 1 end
          seen[cell] = true
          local h = data.hashes[b.id]
          h[r.arch] = h[r.arch] or {}
          h[r.arch][r.layer] = r.config_hash
          for _, s in ipairs(b.scores) do
            local id = b.id .. "/" .. s.id
            local v = r.scores and r.scores[s.key]
            local per = data.values[id]
            per[r.arch] = per[r.arch] or {}
            data.run_ids[id][r.arch] = data.run_ids[id][r.arch] or {}
            per[r.arch][r.layer] = (type(v) == "number" and v == v) and v or nil   -- the newest run decides
            data.run_ids[id][r.arch][r.layer] = r.id
          end
        end
      end
    end
  end
  return data
end

-- Reads a results store (read-only). Errors are one line naming the file.
function M.load(path, opts)
  local f = io.open(path, "rb")
  if not f then error(("no results store at %s (run a benchmark first, or pass --db FILE)"):format(path), 0) end
  f:close()
  local ok, db = pcall(results.open, path, {readonly = true})
  if not ok then error(tostring(db):gsub("\n.*", ""), 0) end
  local ok2, runs = pcall(db.runs, db, {status = "finished"})
  db:close()
  if not ok2 then   -- SQLite's own words ("file is not a database (error 26)") without the Lua position and query
    local msg = tostring(runs):gsub("\n.*", "")
    msg = msg:match("^.*:%s*([^:]-%(error %d+%))$") or msg
    error(("%s is not a readable dpl results store (%s)"):format(path, msg), 0)
  end
  return M.collect(runs, opts)
end

-- the score ids that have at least one value
function M.present_scores(data)
  local out = {}
  for _, id in ipairs(SCORE_ORDER) do
    local per = data.values[id]
    if per then
      local any = false
      for _, layers in pairs(per) do if next(layers) then any = true end end
      if any then out[#out + 1] = id end
    end
  end
  return out
end

-- ---- Tables III and IV ----------------------------------------------------------------------------------------------
-- The best layer of each architecture for a score: {[arch] = {layer =, value =}} over the layers present.
-- Exact ties go to the earlier layer (E before S before M before L).
function M.best(values)
  local out = {}
  for arch, layers in pairs(values or {}) do
    for _, l in ipairs(M.LAYERS) do
      local v = layers[l]
      if v and (not out[arch] or v > out[arch].value) then out[arch] = {layer = l, value = v} end
    end
  end
  return out
end

-- Table III. For every score with values: the architectures ranked 1 (best) .. n by their best layer's value
-- (exact ties share the mean of their ranks, as scipy's rankdata "average"); per benchmark number the mean rank over
-- its scores the architecture has; overall the mean over the benchmark numbers it has (each weighted equally).
-- Returns {scores = ids, rank = {[id] = {[arch] = r}}, n = {[id] = count}, numbers = {1, 2, ...},
-- by_number = {[number] = {[arch] = mean}}, overall = {[arch] = mean}, order = archs by overall}.
function M.ranking(data)
  local out = {scores = {}, rank = {}, n = {}, numbers = {}, by_number = {}, overall = {}}
  local sums = {}
  for _, id in ipairs(M.present_scores(data)) do
    local best = M.best(data.values[id])
    local archs, vals = {}, {}
    for _, a in ipairs(M.ARCHS) do
      if best[a] then archs[#archs + 1] = a; vals[#vals + 1] = best[a].value end
    end
    local r = stats.ranks(vals, {descending = true})
    out.scores[#out.scores + 1] = id
    out.rank[id], out.n[id] = {}, #archs
    local num = SCORES[id].benchmark.number
    sums[num] = sums[num] or {}
    for i, a in ipairs(archs) do
      out.rank[id][a] = r[i]
      sums[num][a] = sums[num][a] or {}
      table.insert(sums[num][a], r[i])
    end
  end
  for num in pairs(sums) do out.numbers[#out.numbers + 1] = num end
  table.sort(out.numbers)
  local per_arch = {}
  for _, num in ipairs(out.numbers) do
    out.by_number[num] = {}
    for a, list in pairs(sums[num]) do
      out.by_number[num][a] = stats.mean(list)
      per_arch[a] = per_arch[a] or {}
      table.insert(per_arch[a], out.by_number[num][a])
    end
  end
  out.order = {}
  for _, a in ipairs(M.ARCHS) do
    if per_arch[a] then out.overall[a] = stats.mean(per_arch[a]); out.order[#out.order + 1] = a end
  end
  table.sort(out.order, function(a, b)
    if out.overall[a] ~= out.overall[b] then return out.overall[a] < out.overall[b] end
    return a < b
  end)
  return out
end

-- Table IV: {scores = ids, best = {[id] = {[arch] = {layer, value}}}, top = {[id] = {[arch] = true}}: the
-- architectures with the best value (several when tied)}
function M.best_layers(data)
  local out = {scores = M.present_scores(data), best = {}, top = {}}
  for _, id in ipairs(out.scores) do
    local best = M.best(data.values[id])
    out.best[id] = best
    local top
    for _, a in ipairs(M.ARCHS) do
      if best[a] and (not top or best[a].value > top) then top = best[a].value end
    end
    out.top[id] = {}
    for a, b in pairs(best) do if b.value == top then out.top[id][a] = true end end
  end
  return out
end

-- The paper's own published values (dpl.benchmarks.paper_tables) as analysis data, to analyse the paper's numbers
-- the same way (experiments/analysis.lua --from-paper) and to check the analysis against the paper's Tables III-IV.
function M.paper_data(benchmarks)
  local data = {values = {}, run_ids = {}, benchmarks = benchmarks or M.BENCHMARKS, superseded = 0, cells = 0}
  local wanted = {}
  for _, b in ipairs(data.benchmarks) do
    for _, s in ipairs(b.scores) do
      wanted[b.id .. "/" .. s.id] = true
      data.values[b.id .. "/" .. s.id] = {}
    end
  end
  local seen = {}
  for _, v in ipairs(paper.values()) do
    if wanted[v.score] then
      local per = data.values[v.score]
      per[v.arch] = per[v.arch] or {}
      per[v.arch][v.layer] = v.value / v.unit
      local cell = v.score:match("^[^/]+") .. "|" .. v.arch .. "|" .. v.layer
      if not seen[cell] then seen[cell] = true; data.cells = data.cells + 1 end
    end
  end
  return data
end

-- ---- attributes and correlations ------------------------------------------------------------------------------------
-- The attributes correlated with each score (docs/analysis.md): per architecture (ImageNet top-1 and the whole
-- model's size) and per loss network (the network truncated at the layer).
M.ATTRIBUTES = {
  {name = "imagenet_top1", label = "ImageNet top-1 (%)", of = "arch", field = "top1"},
  {name = "params_total", label = "parameters (whole model)", of = "arch", field = "params"},
  {name = "depth_total", label = "depth (whole model)", of = "arch", field = "depth"},
  {name = "mflops_total", label = "MFLOPs at 224 (whole model)", of = "arch", field = "mflops"},
  {name = "params_layer", label = "parameters up to the layer", of = "layer", field = "params"},
  {name = "depth_layer", label = "depth up to the layer", of = "layer", field = "depth"},
  {name = "mflops_layer", label = "MFLOPs up to the layer at 224", of = "layer", field = "mflops"},
  {name = "channels", label = "channels at the layer", of = "layer", field = "channels"},
  {name = "features", label = "features (C x H x W) at the layer", of = "layer", field = "features"},
  {name = "skip", label = "skip connections (0/1)", of = "layer", field = "skip"},
  {name = "branch", label = "branching (0/1)", of = "layer", field = "branch"},
  {name = "conv1x1", label = "1x1 convolutions (0/1)", of = "layer", field = "conv1x1"},
  {name = "batchnorm", label = "batch norm (0/1)", of = "layer", field = "batchnorm"},
}

-- The attributes of architectures as plain numbers (JSON-able): {[arch] = {top1, params, depth, mflops,
-- layers = {[E..L] = {params, depth, mflops, channels, features, skip, branch, conv1x1, batchnorm}}}}, computed by
-- dpl.models.attributes at size x size (224 as the paper's Table I). Slow (builds and runs every model on the CPU).
function M.attributes(archs, size, progress)
  local attributes = require "dpl.models.attributes"
  local out = {}
  for i, arch in ipairs(archs) do
    if progress then progress(i, #archs, arch) end
    local a = attributes.compute(arch, {size = size or 224})
    local e = {top1 = a.accuracy, params = a.params, depth = a.depth, mflops = a.mflops, layers = {}}
    for _, l in ipairs(M.LAYERS) do
      local r = a.layers[l]
      e.layers[l] = {params = r.params, depth = r.depth, mflops = r.mflops, channels = r.channels, features = r.features,
                     skip = r.flags.skip and 1 or 0, branch = r.flags.branch and 1 or 0,
                     conv1x1 = r.flags.conv1x1 and 1 or 0, batchnorm = r.flags.batchnorm and 1 or 0}
    end
    out[arch] = e
  end
  return out
end

local function attribute_value(attrs, attr, arch, layer)
  local a = attrs[arch]
  if not a then return nil end
  if attr.of == "arch" then return tonumber(a[attr.field]) end
  local l = a.layers and a.layers[layer]
  return l and tonumber(l[attr.field])
end

M.GROUPS = {"E", "S", "M", "L", "best", "all"}

-- Pearson and Spearman correlations (with two-sided p-values) of every score present with every attribute, over the
-- architectures at one layer (E, S, M, L), at each architecture's best layer ("best"), and over every loss network
-- ("all"). Returns a list of {score, group, attribute, n, pearson, pearson_p, spearman, spearman_p} (NaN where
-- fewer than 3 networks or a constant attribute).
function M.correlations(data, attrs)
  local out = {}
  for _, id in ipairs(M.present_scores(data)) do
    local values = data.values[id]
    local best = M.best(values)
    for _, group in ipairs(M.GROUPS) do
      local points = {}   -- {arch, layer, value}
      for _, a in ipairs(M.ARCHS) do
        if group == "best" then
          if best[a] then points[#points + 1] = {a, best[a].layer, best[a].value} end
        else
          for _, l in ipairs(M.LAYERS) do
            if (group == "all" or group == l) and values[a] and values[a][l] then
              points[#points + 1] = {a, l, values[a][l]}
            end
          end
        end
      end
      for _, attr in ipairs(M.ATTRIBUTES) do
        local x, y = {}, {}
        for _, p in ipairs(points) do
          local v = attribute_value(attrs, attr, p[1], p[2])
          if v then x[#x + 1] = v; y[#y + 1] = p[3] end
        end
        local r, rp = stats.pearson(x, y)
        local rho, sp = stats.spearman(x, y)
        out[#out + 1] = {score = id, group = group, attribute = attr.name, n = #x, pearson = r, pearson_p = rp,
                         spearman = rho, spearman_p = sp}
      end
    end
  end
  return out
end

-- ---- the comparison with the paper --------------------------------------------------------------------------------
-- Every cell present in both: {table, score, arch, layer, ours, paper, diff = ours - paper} (ours in the paper's
-- unit, e.g. percent for Table X), and per benchmark: cells, mean and largest absolute difference, and the Spearman
-- correlation (with p) of the architectures' mean rank over the benchmark's scores, ours against the paper's, both
-- ranked over the same cells (the architectures and layers we have).
function M.compare(data)
  local cells, by_bench = {}, {}
  for _, b in ipairs(data.benchmarks) do
    for _, s in ipairs(b.scores) do
      local id = b.id .. "/" .. s.id
      local ours_vals, paper_vals = {}, {}
      for _, a in ipairs(M.ARCHS) do
        for _, l in ipairs(M.LAYERS) do
          local ours = data.values[id] and data.values[id][a] and data.values[id][a][l]
          local pv, entry = paper.value(id, a, l)
          if ours and pv then
            local o = ours * entry.unit
            cells[#cells + 1] = {table = entry.table, benchmark = b.id, score = id, arch = a, layer = l, ours = o,
                                 paper = pv, diff = o - pv, digits = entry.digits}
            ours_vals[a] = ours_vals[a] or {}
            paper_vals[a] = paper_vals[a] or {}
            ours_vals[a][l], paper_vals[a][l] = o, pv
          end
        end
      end
      by_bench[b.id] = by_bench[b.id] or {scores = {}}
      table.insert(by_bench[b.id].scores, {id = id, ours = ours_vals, paper = paper_vals})
    end
  end
  local summary = {}
  for _, b in ipairs(data.benchmarks) do
    local e = by_bench[b.id]
    local n, sum, worst = 0, 0, 0
    for _, c in ipairs(cells) do
      if c.benchmark == b.id then n, sum, worst = n + 1, sum + math.abs(c.diff), math.max(worst, math.abs(c.diff)) end
    end
    -- mean rank of each architecture over the benchmark's scores, ours and the paper's
    local rank_sum = {ours = {}, paper = {}}
    local count = {}
    for _, sc in ipairs(e.scores) do
      for _, side in ipairs {"ours", "paper"} do
        local best = M.best(sc[side])
        local archs, vals = {}, {}
        for _, a in ipairs(M.ARCHS) do if best[a] then archs[#archs + 1] = a; vals[#vals + 1] = best[a].value end end
        local r = stats.ranks(vals, {descending = true})
        for i, a in ipairs(archs) do
          rank_sum[side][a] = (rank_sum[side][a] or 0) + r[i]
          if side == "ours" then count[a] = (count[a] or 0) + 1 end
        end
      end
    end
    local x, y, archs = {}, {}, {}
    for _, a in ipairs(M.ARCHS) do
      if count[a] then
        archs[#archs + 1] = a
        x[#x + 1], y[#y + 1] = rank_sum.ours[a] / count[a], rank_sum.paper[a] / count[a]
      end
    end
    local rho, p = stats.spearman(x, y)
    local ids, unavailable = {}, nil
    for _, t in ipairs(paper.tables_of(b.id)) do ids[#ids + 1] = t.id; unavailable = unavailable or t.unavailable end
    summary[#summary + 1] = {benchmark = b.id, tables = table.concat(ids, ", "), cells = n,
                             mad = n > 0 and sum / n or 0 / 0, max_abs = n > 0 and worst or 0 / 0, archs = #archs,
                             spearman = rho, spearman_p = p, unavailable = unavailable}
  end
  return {cells = cells, summary = summary}
end

return M

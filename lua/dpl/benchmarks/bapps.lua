-- dpl.benchmarks.bapps: Benchmark 1, deep perceptual similarity on BAPPS (docs/benchmarks/bapps.md), as a benchmark
-- module of the shared runner (lua/dpl/benchmarks/runner.lua; experiments/bapps.lua runs it). For each loss network:
-- the paper's distance on ImageNet-normalised 64 x 64 patches (dpl.perceptual), the 2AFC score per val subset and
-- their unweighted mean, the JND mAP per subset and pooled over the subsets present; or LPIPS v0.1 (--lpips).
--
-- The data side is also usable alone: which BAPPS val subsets a folder holds, batches of preprocessed patches through
-- the dataset iterator (dpl.data.bapps, dpl.data.dataset), and the scores (dpl.metrics.bapps).
--
--   local bapps = require "dpl.benchmarks.bapps"
--   local data = bapps.open("data/BAPPS", {subsets = {"cnn"}, limit = 100})
--   for _, s in ipairs(data.subsets_2afc) do
--     local d0, d1, judge = data:distances("2afc", s, 64, function(batch) ... return {d0_list, d1_list} end)
--     print(s, bapps.score_2afc(d0, d1, judge))
--   end
local dpl = require "dpl"
local dataset = require "dpl.data.dataset"
local data_bapps = require "dpl.data.bapps"
local files = require "dpl.data.files"
local json = require "dpl.json"
local metrics = require "dpl.metrics.bapps"
local perceptual = require "dpl.perceptual"
local progress = require "dpl.progress"
local report = require "dpl.benchmarks.report"
local runner = require "dpl.benchmarks.runner"

local M = {name = "bapps",
           description = "Benchmark 1: 2AFC and JND scores of deep perceptual similarity on BAPPS for any of the 56 " ..
                         "loss networks.",
           table_title = "BAPPS: 2AFC score (mean of the subsets) and JND mAP (pooled), as the paper's Table V"}

M.SUBSETS_2AFC = data_bapps.TWOAFC_SUBSETS
M.SUBSETS_JND = data_bapps.JND_SUBSETS
M.SIZE = 64
M.score_2afc = metrics.score_2afc
M.jnd_map = metrics.jnd_map
M.jnd_map_pooled = metrics.jnd_map_pooled

function M.default_dir() return files.data_root() .. "/BAPPS" end

-- The reference preprocessing up to ToTensor (docs/benchmarks/bapps.md): PIL Resize((64, 64)) (bilinear, on the 8-bit image; BAPPS patches are already 64 x 64, so
-- it is skipped for them). The ImageNet or LPIPS normalisation is done by dpl.perceptual on the device.
local function resize64(sample)
  for _, k in ipairs {"ref", "p0", "p1"} do
    local x = sample[k]
    if x and (x:size(2) ~= M.SIZE or x:size(3) ~= M.SIZE) then
      sample[k] = require("dpl.data.transforms").resize(x, {M.SIZE, M.SIZE}, {interpolation = "bilinear"})
    end
  end
  return sample
end

-- a view of a dataset with only its first n samples
local function first(ds, n)
  if not n or ds:len() <= n then return ds end
  return setmetatable({len = function() return n end}, {__index = ds})
end

local Data = {}
Data.__index = Data

-- The val subsets present under dir (2afc/val/<s> or REF's val/<s>, and jnd/val/<s>). opts.subsets: names to keep
-- (2AFC and JND alike); opts.limit: at most this many items per subset. Errors name what is missing and the command
-- that fetches BAPPS.
function M.open(dir, opts)
  opts = opts or {}
  if not files.is_dir(dir) then files.missing("BAPPS", "bapps", "the BAPPS folder (2afc/val, jnd/val)", dir, 2) end
  local keep
  if opts.subsets then
    keep = {}
    local known = {}
    for _, s in ipairs(M.SUBSETS_2AFC) do known[s] = true end
    for _, s in ipairs(opts.subsets) do
      if not known[s] then error(("unknown BAPPS subset '%s' (%s)"):format(s, table.concat(M.SUBSETS_2AFC, ", ")), 2) end
      keep[s] = true
    end
  end
  local self = setmetatable({dir = dir, sets = {["2afc"] = {}, jnd = {}}, subsets_2afc = {}, subsets_jnd = {}}, Data)
  for _, s in ipairs(M.SUBSETS_2AFC) do
    if (not keep or keep[s]) and (files.is_dir(dir .. "/2afc/val/" .. s) or files.is_dir(dir .. "/val/" .. s)) then
      self.sets["2afc"][s] = first(data_bapps.twoafc(s, {root = dir, transform = resize64}), opts.limit)
      self.subsets_2afc[#self.subsets_2afc + 1] = s
    end
  end
  for _, s in ipairs(M.SUBSETS_JND) do
    if (not keep or keep[s]) and files.is_dir(dir .. "/jnd/val/" .. s) then
      self.sets.jnd[s] = first(data_bapps.jnd(s, {root = dir, transform = resize64}), opts.limit)
      self.subsets_jnd[#self.subsets_jnd + 1] = s
    end
  end
  if #self.subsets_2afc + #self.subsets_jnd == 0 then
    files.missing("BAPPS", "bapps", "a val subset" .. (keep and " among those selected" or "") ..
      " (2afc/val/<subset> or jnd/val/<subset>)", dir, 2)
  end
  return self
end

function Data:count(kind, subset) return self.sets[kind][subset]:len() end

-- patches read per loss network (3 per triplet, 2 per pair)
function Data:image_count()
  local n = 0
  for _, s in ipairs(self.subsets_2afc) do n = n + 3 * self:count("2afc", s) end
  for _, s in ipairs(self.subsets_jnd) do n = n + 2 * self:count("jnd", s) end
  return n
end

function Data:describe()
  local parts = {}
  for _, s in ipairs(self.subsets_2afc) do parts[#parts + 1] = ("2afc/%s %d"):format(s, self:count("2afc", s)) end
  for _, s in ipairs(self.subsets_jnd) do parts[#parts + 1] = ("jnd/%s %d"):format(s, self:count("jnd", s)) end
  return table.concat(parts, ", ")
end

-- what identifies the data in a run's configuration: the absolute folder and the items per subset
function Data:identity()
  local dir = self.dir
  if dir:sub(1, 1) ~= "/" then dir = (os.getenv("PWD") or ".") .. "/" .. dir end
  local counts = {}
  for _, s in ipairs(self.subsets_2afc) do counts["2afc/" .. s] = self:count("2afc", s) end
  for _, s in ipairs(self.subsets_jnd) do counts["jnd/" .. s] = self:count("jnd", s) end
  return {dir = dir, counts = counts}
end

-- Runs fn over a subset in batches of `batch` items (decoded on the loader's threads while fn works on the previous
-- batch). fn receives the list of N x 3 x 64 x 64 tensors on `device` (ref, p0, p1 for 2AFC; p0, p1 for JND) and
-- returns a list of distance lists (d0 and d1, or d). Returns d0, d1, judge (2AFC) or d, same (JND) as Lua lists.
function Data:distances(kind, subset, batch, fn, device)
  local ds = self.sets[kind][subset]
  if not ds then error(("BAPPS: no %s subset %s in %s"):format(kind, subset, self.dir), 2) end
  local images = kind == "2afc" and {"ref", "p0", "p1"} or {"p0", "p1"}
  local label = kind == "2afc" and "judge" or "same"
  local outs, labels = {}, {}
  for b in dataset.batches(ds, {batch_size = batch, device = device}) do
    local tensors = {}
    for k, name in ipairs(images) do tensors[k] = b[name] end
    for k, list in ipairs(fn(tensors)) do
      outs[k] = outs[k] or {}
      for _, v in ipairs(list) do outs[k][#outs[k] + 1] = v end
    end
    -- the labels are float32 fractions (0.2 = 1 of 5 raters): read as the decimals they stand for, so the scores carry
    -- no float32 rounding noise (0.9, not 0.8999999985098839)
    for _, v in ipairs(b[label]:tolist()) do labels[#labels + 1] = json.float32(v) end
  end
  if kind == "2afc" then return outs[1], outs[2], labels end
  return outs[1], labels
end

-- ---- the benchmark (the runner's contract, lua/dpl/benchmarks/runner.lua) --------------------------------------------
local LPIPS_OF = {alexnet = "alex", vgg16 = "vgg", squeezenet1_1 = "squeeze"}

function M.arguments(parser)
  parser:option("--data", "BAPPS folder (holding 2afc/val/<subset> and jnd/val/<subset>).", M.default_dir())
  parser:flag("--lpips", "LPIPS v0.1 instead of the paper's distance (arch alexnet, vgg16 or squeezenet1_1; its " ..
    "own layers, [-1,1] scaling and learned linear weights).")
  local function positive(opt)
    return function(v)
      local n = tonumber(v)
      if not n or n < 1 or n ~= math.floor(n) then return nil, ("%s %s: must be a positive integer"):format(opt, v) end
      return n
    end
  end
  parser:option("--batch", "Triplets per batch, or auto: the largest batch up to 256 (the reference code's) whose "
    .. "features fit in --memory, measured per network on a probe batch (the batch does not change the scores).",
    "auto"):convert(function(v)
      if v == "auto" then return v end
      return positive("--batch")(v)
    end)
  parser:option("--memory", "With --batch auto: MB that one batch's images and features may take on the device.",
    "2048"):convert(positive("--memory"))
  parser:option("--subsets", "Only these subsets (comma list of names; 2AFC and JND alike).")
  parser:option("--limit", "At most this many triplets/pairs per subset (quick looks; recorded in the config).")
    :convert(positive("--limit"))
end

-- with --lpips: one LPIPS cell per architecture (layer "lpips")
function M.cells(args, archs, layers)
  if not args.lpips then return nil end
  if args.layer ~= "all" then error("--layer has no effect with --lpips (LPIPS uses its own layers): drop it", 0) end
  local cells = {}
  for _, a in ipairs(archs) do
    if not LPIPS_OF[a] then error(("--lpips needs alexnet, vgg16 or squeezenet1_1, not %s"):format(a), 0) end
    cells[#cells + 1] = {arch = a, layer = "lpips"}
  end
  return cells
end

function M.setup(args)
  if args.batch ~= "auto" and (not args.batch or args.batch < 1) then error("--batch must be a positive number", 0) end
  local ok, data = pcall(M.open, args.data, {subsets = args.subsets and runner.list_of(args.subsets, nil, "subsets"),
                                            limit = args.limit})
  if not ok then
    error(("--data %s: %s"):format(args.data, (require("dpl.cli").message(data):gsub("\n", " "))), 0)
  end
  return data
end

function M.describe(data) return ("data %s (%s)"):format(data.dir, data:describe()) end

-- The distance is described in docs/benchmarks/bapps.md; its name is part of the configuration's hash (stores written
-- under its older name are migrated when opened: lua/dpl/results.lua, schema 3).
function M.config(args, data, cell)
  local lpips = cell.layer == "lpips"
  return {distance = lpips and "lpips-v0.1" or "normalized-sq-l2",
          preprocessing = lpips and "[-1,1] + LPIPS scaling" or "resize 64 bilinear, imagenet mean/std",
          data = data:identity(), limit = args.limit,
          lpips_lin_sha256 = lpips and require("dpl.sys.crypto").sha256_file(
            perceptual.lpips_weights_path(LPIPS_OF[cell.arch])) or nil}
end

-- The batch (triplets) for `metric` under a memory budget: the bytes that the features of a probe of 4 triplets (12
-- random 64 x 64 images) take at their peak on the device, scaled: the largest multiple of 8 up to 256 (the reference
-- code's batch) that fits budget_mb, at least 1. EfficientNet-B7 at L takes ~45 MB per triplet, AlexNet at E ~1 MB.
function M.auto_batch(metric, device, budget_mb)
  local probe = 4
  collectgarbage(); collectgarbage()
  dpl.synchronize(device)
  local base = dpl.stat("bytes", device)
  dpl.reset_peak(device)
  local x = dpl.rand({3 * probe, 3, 64, 64}, {device = device})
  local f = dpl.no_grad(metric.features, metric, x)
  dpl.synchronize(device)
  local per = math.max(dpl.stat("peak_bytes", device) - base, 1) / probe
  x, f = nil, nil
  collectgarbage(); collectgarbage()
  local b = math.floor(budget_mb * 2 ^ 20 / per)
  if b >= 256 then return 256, per end
  if b >= 8 then return b - b % 8, per end
  return math.max(b, 1), per
end

-- One loss network over every subset present: scores "2afc.<subset>", "2afc.mean", "jnd.<subset>", "jnd.pooled".
function M.run(args, data, cell)
  local clock0 = progress.now()
  local metric = perceptual.new(cell.layer == "lpips"
    and {lpips = LPIPS_OF[cell.arch], weights = cell.weights, name_map = cell.name_map, device = cell.device}
    or {arch = cell.arch, layer = cell.layer, weights = cell.weights, name_map = cell.name_map, device = cell.device})
  local t_build = progress.now() - clock0
  local batch = args.batch
  if batch == "auto" then batch = M.auto_batch(metric, cell.device, args.memory) end
  local bar = progress.new({total = data:image_count(), label = ("%s %s"):format(cell.arch, cell.layer), unit = "img"})
  local scores, t_net = {}, 0
  local function distances(kind, subset)
    return data:distances(kind, subset, batch, function(batch)
      -- batch: list of N x 3 x 64 x 64 tensors (ref, p0, p1 for 2AFC; p0, p1 for JND), already preprocessed
      local t0 = progress.now()
      local n = batch[1]:size(1)
      local f = dpl.no_grad(metric.features, metric, dpl.cat(batch, 1))
      local parts = {}
      for k = 1, #batch do
        parts[k] = {}
        for l, t in ipairs(f) do parts[k][l] = t:narrow(1, (k - 1) * n + 1, n) end
      end
      local d = {}
      for k = 2, #batch do
        d[#d + 1] = dpl.no_grad(metric.feature_distance, metric, parts[1], parts[k]):tolist()
      end
      t_net = t_net + progress.now() - t0
      bar:update(n * #batch)
      cell.touch()                   -- the claim's heartbeat: other processes leave this network to us
      return d
    end, cell.device)
  end
  local t_data0 = progress.now()
  for _, subset in ipairs(data.subsets_2afc) do
    local d0, d1, judge = distances("2afc", subset)
    scores["2afc." .. subset] = M.score_2afc(d0, d1, judge)
  end
  local parts = {}
  for _, subset in ipairs(data.subsets_jnd) do
    local d, same = distances("jnd", subset)
    scores["jnd." .. subset] = M.jnd_map(d, same)
    parts[#parts + 1] = {d, same}
  end
  local t_load = progress.now() - t_data0 - t_net
  if #data.subsets_2afc > 0 then   -- REF's "avg": the unweighted mean of the subsets present
    local sum = 0
    for _, subset in ipairs(data.subsets_2afc) do sum = sum + scores["2afc." .. subset] end
    scores["2afc.mean"] = sum / #data.subsets_2afc
  end
  if #parts > 0 then scores["jnd.pooled"] = M.jnd_map_pooled(parts) end   -- REF's one mAP over cnn + traditional
  bar:finish()
  local elapsed = progress.now() - clock0 - t_build
  return scores, {build_s = t_build, network_s = t_net, data_s = t_load, total_s = progress.now() - clock0,
                  images = data:image_count(), images_per_s = data:image_count() / math.max(elapsed, 1e-9),
                  batch = batch}
end

function M.summary(scores, timing)
  return ("2AFC %.4f  JND %s  (%.1f s, %.0f img/s)"):format(scores["2afc.mean"] or 0 / 0,
    scores["jnd.pooled"] and ("%.4f"):format(scores["jnd.pooled"]) or "-", timing.total_s, timing.images_per_s)
end

-- The --json entry of a BAPPS run: {"arch", "layer", "2afc": {subset..., "mean"}, "jnd": {subset..., "pooled"}}
function M.json(cell, scores)
  local e = {arch = cell.arch, layer = cell.layer, ["2afc"] = {}, jnd = {}}
  for name, v in pairs(scores) do
    local kind, key = name:match("^(%w+)%.(.+)$")
    if kind == "2afc" or kind == "jnd" then e[kind][key] = v end
  end
  return e
end

-- Every score a BAPPS run can have, in the order of the CSV columns (report.csv: the same columns in every export).
M.scores = {}
for _, s in ipairs(M.SUBSETS_2AFC) do M.scores[#M.scores + 1] = "2afc." .. s end
M.scores[#M.scores + 1] = "2afc.mean"
for _, s in ipairs(M.SUBSETS_JND) do M.scores[#M.scores + 1] = "jnd." .. s end
M.scores[#M.scores + 1] = "jnd.pooled"

-- what distinguishes the LPIPS runs' configuration from the paper distance's (the rest, data and limit and weights
-- kind, is shared: the LPIPS table goes with the Table V of the same data)
local DISTANCE_KEYS = {distance = true, preprocessing = true, lpips_lin_sha256 = true}

-- Table V: 2AFC (mean over subsets) and JND (pooled mAP) at E, S, M, L per architecture, of ONE configuration (the
-- full-data, pretrained runs by default; opts.config = id, opts.all_configs: see report.paper_table); LPIPS runs
-- (layer "lpips") of the same data in a small table after it. opts.digits (default 3).
function M.table(runs, opts)
  opts = opts or {}
  local paper, lpips_runs = {}, {}
  for _, r in ipairs(runs) do
    if r.layer == "lpips" then lpips_runs[#lpips_runs + 1] = r else paper[#paper + 1] = r end
  end
  local parts = {}
  local text, nrows, shown = report.paper_table(paper, {{key = "2afc.mean", label = "2AFC"},
    {key = "jnd.pooled", label = "JND"}}, {digits = opts.digits, config = opts.config, all_configs = opts.all_configs})
  if nrows > 0 or #lpips_runs == 0 then parts[#parts + 1] = text end
  if #lpips_runs > 0 then
    local groups = report.config_groups(lpips_runs, {lpips_lin_sha256 = true})
    local chosen
    if opts.all_configs or #shown == 0 then
      local ok, c = pcall(report.choose_groups, groups, opts)
      chosen = ok and c or {}
    else   -- the LPIPS runs of the data, limit and weights kind of the Table V shown
      chosen = {}
      for _, s in ipairs(shown) do
        local _, data_key = report.table_config(s.runs[1], DISTANCE_KEYS)
        for _, g in ipairs(groups) do
          if select(2, report.table_config(g.runs[1], DISTANCE_KEYS)) == data_key then chosen[#chosen + 1] = g end
        end
      end
    end
    for _, g in ipairs(chosen) do
      local newest = {}
      for _, r in ipairs(g.runs) do newest[r.arch] = r end
      local rows = {}
      for _, arch in ipairs(require("dpl.models.lossnet").ORDER) do
        local r = newest[arch]
        if r then
          rows[#rows + 1] = {report.DISPLAY[r.arch] or r.arch, report.fmt(r.scores["2afc.mean"], opts.digits),
                             report.fmt(r.scores["jnd.pooled"], opts.digits)}
        end
      end
      parts[#parts + 1] = report.config_line(g) .. "\n" .. report.format_table({"LPIPS v0.1", "2AFC", "JND"}, rows)
    end
    if nrows == 0 then
      local note = report.others_note(groups, chosen)
      if note then parts[#parts + 1] = note end
    end
  end
  return table.concat(parts, "\n\n")
end

-- Per-subset detail: one row per loss network, every 2AFC subset and the mean, every JND subset and the pooled mAP.
function M.detail(runs, opts)
  opts = opts or {}
  local header = {"network"}
  for _, s in ipairs(M.SUBSETS_2AFC) do header[#header + 1] = "2afc " .. s end
  header[#header + 1] = "2afc mean"
  for _, s in ipairs(M.SUBSETS_JND) do header[#header + 1] = "jnd " .. s end
  header[#header + 1] = "jnd pooled"
  header[#header + 1] = "time"
  local rows = {}
  for _, r in ipairs(runs) do
    local cells = {(report.DISPLAY[r.arch] or r.arch or "?") .. " " .. (r.layer or "")}
    for _, s in ipairs(M.SUBSETS_2AFC) do cells[#cells + 1] = report.fmt(r.scores["2afc." .. s], opts.digits) end
    cells[#cells + 1] = report.fmt(r.scores["2afc.mean"], opts.digits)
    for _, s in ipairs(M.SUBSETS_JND) do cells[#cells + 1] = report.fmt(r.scores["jnd." .. s], opts.digits) end
    cells[#cells + 1] = report.fmt(r.scores["jnd.pooled"], opts.digits)
    cells[#cells + 1] = r.seconds and report.format_time(r.seconds) or "-"
    rows[#rows + 1] = cells
  end
  return report.format_table(header, rows)
end

return M

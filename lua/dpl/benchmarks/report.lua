-- dpl.benchmarks.report: tables and CSV from results-store runs (lua/dpl/results.lua) laid out as in the paper, for
-- every benchmark (each benchmark module says which scores its table shows).
--
--   local report = require "dpl.benchmarks.report"
--   print(report.paper_table(runs, {{key = "2afc.mean", label = "2AFC"}, {key = "jnd.pooled", label = "JND"}}))
--   io.open("runs.csv", "w"):write(report.csv(runs))                             -- the supplementary CSV's columns
local bench = require "dpl.bench"
local lossnet = require "dpl.models.lossnet"
local json = require "dpl.json"

local M = {}

M.DISPLAY = {
  vgg11 = "VGG-11", vgg16 = "VGG-16", vgg16_bn = "VGG-16_bn", vgg19 = "VGG-19", resnet18 = "ResNet-18",
  resnet50 = "ResNet-50", resnext50_32x4d = "ResNeXt-50 32x4d", googlenet = "GoogLeNet", inception_v3 = "InceptionNet v3",
  efficientnet_b0 = "EfficientNet_B0", efficientnet_b7 = "EfficientNet_B7", alexnet = "AlexNet",
  densenet121 = "DenseNet-121", squeezenet1_1 = "SqueezeNet",
}

-- the row groups of the paper's appendix tables (Table V ...)
M.GROUPS = {
  {"VGG Networks", {"vgg11", "vgg16", "vgg16_bn", "vgg19"}},
  {"Residual Networks", {"resnet18", "resnet50", "resnext50_32x4d"}},
  {"Inception Networks", {"googlenet", "inception_v3"}},
  {"EfficientNet", {"efficientnet_b0", "efficientnet_b7"}},
  {"Uncategorized Networks", {"alexnet", "densenet121", "squeezenet1_1"}},
}

M.format_table, M.format_time = bench.format_table, bench.format_time

-- a score as printed in tables: 3 decimals (or `digits`), "-" when missing
function M.fmt(v, digits) return v and ("%." .. (digits or 3) .. "f"):format(v) or "-" end

-- ---- configurations: a table combines runs of one configuration only --------------------------------------------
-- Runs of one benchmark differ by architecture and layer (the table's rows and columns) and by everything else in
-- their stored configuration: the data (folder, subsets, items per subset), --limit, the distance, the weights. A
-- table shows the runs of ONE such configuration; the weights enter as their kind ("torchvision", the checkpoints
-- dpl's manifest lists; "untrained random:SEED"; "custom <folder>"), since their SHA-256 differs per architecture.


local manifest
local function manifest_entry(arch)
  if manifest == nil then
    local ok, m = pcall(require("dpl.weights_store").manifest)
    manifest = ok and m or false
  end
  return manifest and arch and manifest[arch] or nil
end

-- The kind of a run's weights from its architecture, weights SHA-256 (or "random:SEED") and path: "torchvision" (the
-- file dpl's manifest lists for the architecture), "untrained random:SEED", "custom <folder>", or "none".
function M.weights_kind(arch, sha, path)
  if not sha then return "none" end
  if sha:match("^random:") then return "untrained " .. sha end
  local e = manifest_entry(arch)
  if e and (e.sha256 == sha or (not e.sha256 and e.sha256_prefix and sha:sub(1, #e.sha256_prefix) == e.sha256_prefix))
  then return "torchvision" end
  return "custom " .. (path and (path:match("^(.*)/[^/]*$") or ".") or "?")
end

-- A per-epoch series from flat scores: the values of <prefix>.001, <prefix>.002, ... in epoch order, as a JSON array
-- (the training benchmarks' --json entries: val_psnr, val_bce, train_loss).
function M.epoch_series(scores, prefix)
  local keys = {}
  for k in pairs(scores) do
    local e = k:match("^" .. prefix:gsub("%p", "%%%0") .. "%.(%d%d%d)$")
    if e then keys[#keys + 1] = tonumber(e) end
  end
  table.sort(keys)
  local out = require("dpl.json").array({})
  for i, e in ipairs(keys) do out[i] = scores[("%s.%03d"):format(prefix, e)] end
  return out
end

-- true for weights that are not trained (random:SEED)
function M.untrained(sha) return type(sha) == "string" and sha:match("^random:") ~= nil end

-- the configuration of a run as a table (stored runs hold it as JSON text)
local function config_of(run)
  local c = run.config
  if type(c) == "string" then
    local ok, v = pcall(json.decode, c)
    c = ok and v or {}
  end
  return c or {}
end
M.config_of = config_of

local PER_CELL = {experiment = true, arch = true, layer = true, weights_sha256 = true}

-- The table configuration of a run: its stored configuration without what varies from cell to cell (experiment,
-- arch, layer, weights SHA-256, and the keys in `drop`), with the weights' kind instead. Returns the table and its
-- canonical JSON (equal JSON = one configuration).
function M.table_config(run, drop)
  local c, out = config_of(run), {}
  for k, v in pairs(c) do
    if not PER_CELL[k] and not (drop and drop[k]) then out[k] = v end
  end
  out.weights = M.weights_kind(run.arch, run.weights_sha256 or c.weights_sha256, run.weights)
  return out, json.encode(out)
end

local function items_of(cfg)
  local n = 0
  if type(cfg.data) == "table" and type(cfg.data.counts) == "table" then
    for _, v in pairs(cfg.data.counts) do n = n + (tonumber(v) or 0) end
  end
  return n
end

-- A configuration in words: the data, full or limited, the weights (UNTRAINED in capitals), then the other keys.
function M.describe_config(cfg)
  local parts = {}
  if type(cfg.data) == "table" and cfg.data.dir then
    local n, k = 0, 0
    for _, v in pairs(cfg.data.counts or {}) do n, k = n + (tonumber(v) or 0), k + 1 end
    parts[#parts + 1] = ("data %s (%d subsets, %d items)"):format(cfg.data.dir, k, n)
  elseif cfg.data ~= nil then
    parts[#parts + 1] = "data " .. (type(cfg.data) == "table" and json.encode(cfg.data) or tostring(cfg.data))
  end
  -- how much of the protocol the runs followed: BAPPS's --limit, or the training benchmarks' preset
  if cfg.limit then parts[#parts + 1] = ("LIMITED to %s per subset"):format(tostring(cfg.limit))
  elseif cfg.preset == "quick" then parts[#parts + 1] = "QUICK configuration (--quick: not the paper's protocol)"
  elseif cfg.preset == "custom" then parts[#parts + 1] = "CUSTOM configuration (options differ from the paper's protocol)"
  else parts[#parts + 1] = "full data" end
  local w = cfg.weights or "none"
  parts[#parts + 1] = w:match("^untrained") and ("UNTRAINED weights (%s)"):format(w:gsub("^untrained ", ""))
    or ("weights %s"):format(w)
  local keys = {}
  for k in pairs(cfg) do
    if k ~= "data" and k ~= "limit" and k ~= "weights" and k ~= "preset" then keys[#keys + 1] = k end
  end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = cfg[k]
    parts[#parts + 1] = ("%s %s"):format(k, type(v) == "table" and json.encode(v) or tostring(v))
  end
  return table.concat(parts, "; ")
end

-- The runs grouped by table configuration, the preferred first: pretrained weights before untrained, full data before
-- --limit, more items, more runs, newest. Each group: {id (8 hex digits), key (JSON), config, runs (oldest first),
-- newest (largest run id)}. drop: keys of the stored configuration that are not part of the grouping.
function M.config_groups(runs, drop)
  local by_key, groups = {}, {}
  for _, r in ipairs(runs) do
    local cfg, key = M.table_config(r, drop)
    local g = by_key[key]
    if not g then
      g = {key = key, config = cfg, runs = {}, newest = 0,
           id = require("dpl.sys.crypto").sha256_string(key):sub(1, 8)}
      by_key[key] = g
      groups[#groups + 1] = g
    end
    g.runs[#g.runs + 1] = r
    g.newest = math.max(g.newest, tonumber(r.id) or 0)
  end
  local function rank(g)
    return {g.config.weights:match("^untrained") and 1 or 0, g.config.limit and 1 or 0, -items_of(g.config),
            -#g.runs, -g.newest}
  end
  table.sort(groups, function(a, b)
    local ra, rb = rank(a), rank(b)
    for i = 1, #ra do if ra[i] ~= rb[i] then return ra[i] < rb[i] end end
    return a.key < b.key
  end)
  return groups
end

-- The groups a table shows: opts.config (an id or its prefix) picks one, opts.all_configs every one, else the
-- preferred. Errors (one line) on an unknown id, naming the ids there are.
function M.choose_groups(groups, opts)
  opts = opts or {}
  if opts.all_configs then return groups end
  if opts.config then
    for _, g in ipairs(groups) do
      if g.id:sub(1, #opts.config) == opts.config:lower() then return {g} end
    end
    local ids = {}
    for _, g in ipairs(groups) do ids[#ids + 1] = g.id end
    error(("--config %s: no such configuration among these runs (there are: %s)"):format(opts.config,
      #ids > 0 and table.concat(ids, ", ") or "none"), 0)
  end
  return {groups[1]}
end

-- The line above a table: which configuration it shows.
function M.config_line(g)
  return ("configuration %s: %s (%d run%s)"):format(g.id, M.describe_config(g.config), #g.runs, #g.runs == 1 and "" or "s")
end

-- The note under a table about the configurations it does not show (nil when there are none).
function M.others_note(groups, shown)
  local is_shown, lines = {}, {}
  for _, g in ipairs(shown) do is_shown[g] = true end
  for _, g in ipairs(groups) do
    if not is_shown[g] then lines[#lines + 1] = "  " .. M.config_line(g) end
  end
  if #lines == 0 then return nil end
  return ("not in this table (other configurations; show one with --config ID, all with --all-configs):\n%s"):format(
    table.concat(lines, "\n"))
end

-- The paper's table layout of the runs of one configuration (see choose_groups for opts.config / opts.all_configs):
-- rows = architectures by family (only those with results, plus any not in the paper under "Other"), one column per
-- (score, layer). columns: a list of {key = score name, label = header}; opts.layers: default E, S, M, L;
-- opts.digits (default 3); opts.drop: configuration keys not part of the grouping. Runs of other layers (e.g.
-- "lpips") are left out. The text starts with the configuration line and ends with a note on the configurations not
-- shown. Returns the text, the number of rows, and the groups shown and all groups.
function M.paper_table(runs, columns, opts)
  opts = opts or {}
  local layers = opts.layers or lossnet.LAYER_NAMES
  local in_layers = {}
  for _, l in ipairs(layers) do in_layers[l] = true end
  local mine = {}
  for _, r in ipairs(runs) do if r.arch and in_layers[r.layer] then mine[#mine + 1] = r end end
  local groups = M.config_groups(mine, opts.drop)
  local shown = #groups > 0 and M.choose_groups(groups, opts) or {}
  local texts, nrows = {}, 0
  for _, g in ipairs(shown) do
    local text, n = M.grid(g.runs, columns, layers, opts.digits)
    texts[#texts + 1] = M.config_line(g) .. "\n" .. text
    nrows = nrows + n
  end
  if #shown == 0 then texts[1] = (M.grid({}, columns, layers, opts.digits)) end
  local note = M.others_note(groups, shown)
  if note then texts[#texts + 1] = note end
  return table.concat(texts, "\n\n"), nrows, shown, groups
end

-- The grid of one configuration's runs (the newest per arch and layer; runs come oldest first).
function M.grid(runs, columns, layers, digits)
  local net = {}
  for _, r in ipairs(runs) do
    net[r.arch] = net[r.arch] or {}
    net[r.arch][r.layer] = r
  end
  local header = {"Architecture"}
  for _, col in ipairs(columns) do
    for k, l in ipairs(layers) do header[#header + 1] = k == 1 and (col.label .. " " .. l) or l end
  end
  local function row(arch)
    local r = {M.DISPLAY[arch] or arch}
    for _, col in ipairs(columns) do
      for _, l in ipairs(layers) do
        local run = net[arch][l]
        r[#r + 1] = M.fmt(run and run.scores[col.key], digits)
      end
    end
    return r
  end
  local function has_any(arch)
    for _, l in ipairs(layers) do if net[arch] and net[arch][l] then return true end end
    return false
  end
  local rows, listed = {}, {}
  local function group(title, archs)
    local g = {}
    for _, arch in ipairs(archs) do if has_any(arch) then g[#g + 1] = row(arch) end end
    if #g > 0 then
      rows[#rows + 1] = {title}
      for _, r in ipairs(g) do rows[#rows + 1] = r end
    end
  end
  for _, g in ipairs(M.GROUPS) do
    for _, arch in ipairs(g[2]) do listed[arch] = true end
    group(g[1], g[2])
  end
  local other = {}
  for arch in pairs(net) do if not listed[arch] then other[#other + 1] = arch end end
  table.sort(other)
  group("Other", other)
  return bench.format_table(header, rows), #rows
end

-- ---- CSV ----------------------------------------------------------------------------------------------------------
local function csv_cell(v)
  if v == nil then return "" end
  local s = type(v) == "number" and json.number_text(v) or tostring(v)   -- every digit the value has, no more
  if s:find('[,"\r\n]') then s = '"' .. s:gsub('"', '""') .. '"' end
  return s
end
M.csv_cell = csv_cell

local top1
local function imagenet_top1(arch)
  if not top1 then
    top1 = {}
    local ok, m = pcall(require("dpl.weights_store").manifest)
    if ok then for _, a in ipairs(m.order or {}) do top1[a] = m[a] and m[a].top1 end end
  end
  return top1[arch]
end

-- The CSV of runs: architecture, layer and the architecture's attributes, one column per score, then the run's facts
-- (experiment, weights kind, device, weights SHA-256, time, code version, configuration hash). opts.scores: the
-- score columns to always have (a benchmark's full list, so that every export has the same columns); scores of the
-- runs not in it are added after them, sorted. A missing value is an empty cell: every row has the header's columns.
local FACTS = {"experiment", "weights", "device", "weights_sha256", "seconds", "started", "code_version", "config_hash"}
function M.csv(runs, opts)
  opts = opts or {}
  local names, seen = {}, {}
  for _, n in ipairs(opts.scores or {}) do
    if not seen[n] then seen[n] = true; names[#names + 1] = n end
  end
  local extra = {}
  for _, r in ipairs(runs) do
    for k in pairs(r.scores or {}) do if not seen[k] then seen[k] = true; extra[#extra + 1] = k end end
  end
  table.sort(extra)
  for _, n in ipairs(extra) do names[#names + 1] = n end
  local header = {"architecture", "arch", "family", "layer", "layer_index", "imagenet_top1"}
  for _, n in ipairs(names) do header[#header + 1] = n end
  for _, c in ipairs(FACTS) do header[#header + 1] = c end
  local lines = {table.concat(header, ",")}
  for _, r in ipairs(runs) do
    local info = r.arch and lossnet.ARCHS[r.arch]
    local ok, idx = false, nil
    if info and r.layer then ok, idx = pcall(lossnet.layer_index, r.arch, r.layer) end
    local cells = {M.DISPLAY[r.arch] or r.arch, r.arch, info and info.family or nil, r.layer,
                   ok and type(idx) == "number" and idx or nil, imagenet_top1(r.arch)}
    local n = 6                                   -- explicit positions: a nil must not shift the later cells
    for _, name in ipairs(names) do n = n + 1; cells[n] = r.scores and r.scores[name] end
    for _, c in ipairs(FACTS) do
      n = n + 1
      if c == "weights" then
        cells[n] = M.weights_kind(r.arch, r.weights_sha256, r.weights)
      else
        cells[n] = r[c]
      end
    end
    local out = {}
    for i = 1, #header do out[i] = csv_cell(cells[i]) end
    lines[#lines + 1] = table.concat(out, ",")
  end
  return table.concat(lines, "\n") .. "\n"
end

return M

-- dpl.report: tables and CSV from results-store runs (lua/dpl/results.lua) laid out as in the paper.
--
--   local report = require "dpl.report"
--   print(report.bapps_table(db:runs({experiment = "bapps", latest = true})))    -- Table V
--   io.open("bapps.csv", "w"):write(report.csv(runs))                            -- the supplementary CSV's columns
--
-- BAPPS scores are stored as "2afc.<subset>", "2afc.mean", "jnd.<subset>" and "jnd.pooled".
local bench = require "dpl.bench"
local lossnet = require "dpl.lossnet"

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

M.SUBSETS_2AFC = {"traditional", "cnn", "superres", "deblur", "color", "frameinterp"}
M.SUBSETS_JND = {"traditional", "cnn"}

local function fmt(v, digits) return v and ("%." .. (digits or 3) .. "f"):format(v) or "-" end

-- the newest run per (arch, layer): runs come oldest first
local function by_network(runs)
  local out = {}
  for _, r in ipairs(runs) do
    if r.arch and r.layer and r.layer ~= "lpips" then
      out[r.arch] = out[r.arch] or {}
      out[r.arch][r.layer] = r
    end
  end
  return out
end

-- Table V: rows = architectures by family (only those with results, plus any not in the paper), columns = 2AFC
-- (mean over subsets) and JND (pooled mAP) at E, S, M, L; LPIPS runs (layer "lpips") in a small table after it.
-- opts.digits (default 3).
function M.bapps_table(runs, opts)
  opts = opts or {}
  local net = by_network(runs)
  local header = {"Architecture", "2AFC E", "S", "M", "L", "JND E", "S", "M", "L"}
  local rows, listed = {}, {}
  local function row(arch)
    local r = {M.DISPLAY[arch] or arch}
    for _, key in ipairs {"2afc.mean", "jnd.pooled"} do
      for _, l in ipairs(lossnet.LAYER_NAMES) do
        local run = net[arch] and net[arch][l]
        r[#r + 1] = fmt(run and run.scores[key], opts.digits)
      end
    end
    return r
  end
  for _, g in ipairs(M.GROUPS) do
    local group = {}
    for _, arch in ipairs(g[2]) do
      listed[arch] = true
      if net[arch] then group[#group + 1] = row(arch) end
    end
    if #group > 0 then
      rows[#rows + 1] = {g[1]}
      for _, r in ipairs(group) do rows[#rows + 1] = r end
    end
  end
  local other = {}
  for arch in pairs(net) do if not listed[arch] then other[#other + 1] = arch end end
  table.sort(other)
  if #other > 0 then
    rows[#rows + 1] = {"Other"}
    for _, arch in ipairs(other) do rows[#rows + 1] = row(arch) end
  end
  local lpips = {}
  for _, r in ipairs(runs) do
    if r.layer == "lpips" then
      lpips[#lpips + 1] = {M.DISPLAY[r.arch] or r.arch, fmt(r.scores["2afc.mean"], opts.digits),
                           fmt(r.scores["jnd.pooled"], opts.digits)}
    end
  end
  local parts = {}
  if #rows > 0 or #lpips == 0 then parts[#parts + 1] = bench.format_table(header, rows) end
  if #lpips > 0 then parts[#parts + 1] = bench.format_table({"LPIPS v0.1", "2AFC", "JND"}, lpips) end
  return table.concat(parts, "\n\n")
end

-- Per-subset detail: one row per loss network, every 2AFC subset and the mean, every JND subset and the pooled mAP.
function M.bapps_detail(runs, opts)
  opts = opts or {}
  local header = {"network"}
  for _, s in ipairs(M.SUBSETS_2AFC) do header[#header + 1] = "2afc " .. s end
  header[#header + 1] = "2afc mean"
  for _, s in ipairs(M.SUBSETS_JND) do header[#header + 1] = "jnd " .. s end
  header[#header + 1] = "jnd pooled"
  header[#header + 1] = "time"
  local rows = {}
  for _, r in ipairs(runs) do
    local cells = {(M.DISPLAY[r.arch] or r.arch or "?") .. " " .. (r.layer or "")}
    for _, s in ipairs(M.SUBSETS_2AFC) do cells[#cells + 1] = fmt(r.scores["2afc." .. s], opts.digits) end
    cells[#cells + 1] = fmt(r.scores["2afc.mean"], opts.digits)
    for _, s in ipairs(M.SUBSETS_JND) do cells[#cells + 1] = fmt(r.scores["jnd." .. s], opts.digits) end
    cells[#cells + 1] = fmt(r.scores["jnd.pooled"], opts.digits)
    cells[#cells + 1] = r.seconds and bench.format_time(r.seconds) or "-"
    rows[#rows + 1] = cells
  end
  return bench.format_table(header, rows)
end

-- The --json entry of a BAPPS run: {"arch", "layer", "2afc": {subset..., "mean"}, "jnd": {subset..., "pooled"}}
function M.bapps_json(arch, layer, scores)
  local e = {arch = arch, layer = layer, ["2afc"] = {}, jnd = {}}
  for name, v in pairs(scores) do
    local kind, key = name:match("^(%w+)%.(.+)$")
    if kind == "2afc" or kind == "jnd" then e[kind][key] = v end
  end
  return e
end

-- ---- CSV ----------------------------------------------------------------------------------------------------------
local function csv_cell(v)
  if v == nil then return "" end
  local s = type(v) == "number" and (v == math.floor(v) and ("%d"):format(v) or ("%.10g"):format(v)) or tostring(v)
  if s:find('[,"\n]') then s = '"' .. s:gsub('"', '""') .. '"' end
  return s
end

local top1
local function imagenet_top1(arch)
  if not top1 then
    top1 = {}
    local ok, m = pcall(require("dpl.weights_store").manifest)
    if ok then for _, a in ipairs(m.order or {}) do top1[a] = m[a] and m[a].top1 end end
  end
  return top1[arch]
end

-- CSV of runs: architecture, layer and the architecture's attributes, then one column per score (sorted), then
-- run facts (experiment, device, weights hash, time, code version).
function M.csv(runs)
  local names, seen = {}, {}
  for _, r in ipairs(runs) do
    for k in pairs(r.scores or {}) do if not seen[k] then seen[k] = true; names[#names + 1] = k end end
  end
  table.sort(names)
  local header = {"architecture", "arch", "family", "layer", "layer_index", "imagenet_top1"}
  for _, n in ipairs(names) do header[#header + 1] = n end
  for _, c in ipairs {"experiment", "device", "weights_sha256", "seconds", "started", "code_version", "config_hash"} do
    header[#header + 1] = c
  end
  local lines = {table.concat(header, ",")}
  for _, r in ipairs(runs) do
    local info = r.arch and lossnet.ARCHS[r.arch]
    local idx = info and r.layer and select(2, pcall(lossnet.layer_index, r.arch, r.layer))
    local cells = {M.DISPLAY[r.arch] or r.arch, r.arch, info and info.family, r.layer,
                   type(idx) == "number" and idx or nil, imagenet_top1(r.arch)}
    for _, n in ipairs(names) do cells[#cells + 1] = r.scores[n] end
    for _, c in ipairs {"experiment", "device", "weights_sha256", "seconds", "started", "code_version", "config_hash"} do
      cells[#cells + 1] = r[c]
    end
    local out = {}
    for i = 1, #header do out[i] = csv_cell(cells[i]) end
    lines[#lines + 1] = table.concat(out, ",")
  end
  return table.concat(lines, "\n") .. "\n"
end

return M

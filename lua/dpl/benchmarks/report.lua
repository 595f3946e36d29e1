-- dpl.benchmarks.report: tables and CSV from results-store runs (lua/dpl/results.lua) laid out as in the paper, for
-- every benchmark (each benchmark module says which scores its table shows).
--
--   local report = require "dpl.benchmarks.report"
--   print(report.paper_table(runs, {{key = "2afc.mean", label = "2AFC"}, {key = "jnd.pooled", label = "JND"}}))
--   io.open("runs.csv", "w"):write(report.csv(runs))                             -- the supplementary CSV's columns
local bench = require "dpl.bench"
local lossnet = require "dpl.models.lossnet"

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

-- The paper's table layout for any benchmark: rows = architectures by family (only those with results, plus any not
-- in the paper under "Other"), one column per (score, layer). columns: a list of {key = score name, label = header};
-- layers: default E, S, M, L. opts.digits (default 3). Runs of other layers (e.g. "lpips") are left out.
function M.paper_table(runs, columns, opts)
  opts = opts or {}
  local layers = opts.layers or lossnet.LAYER_NAMES
  local net = {}
  for _, r in ipairs(runs) do      -- the newest run per (arch, layer): runs come oldest first
    if r.arch and r.layer then
      net[r.arch] = net[r.arch] or {}
      net[r.arch][r.layer] = r
    end
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
        r[#r + 1] = M.fmt(run and run.scores[col.key], opts.digits)
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
  local s = type(v) == "number" and (v == math.floor(v) and ("%d"):format(v) or ("%.10g"):format(v)) or tostring(v)
  if s:find('[,"\n]') then s = '"' .. s:gsub('"', '""') .. '"' end
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

-- The analysis (lua/dpl/benchmarks/analysis.lua, experiments/analysis.lua, docs/analysis.md) and the paper's tables as
-- data (lua/dpl/benchmarks/paper_tables.lua).
--  * paper tables: counts, spot values, every architecture / layer / score name known to dpl; the paper's own Table IV
--    (best layers) follows from the transcribed Tables V-IX and XI, and its Table III (mean ranks) too, within what
--    the rounding of the published values leaves open (ties) - a check of the transcription.
--  * a synthetic results store with known values (the paper's numbers shifted, some cells missing, a superseded run,
--    a failed run, other experiments): what the analysis reads, the ranks, best layers, mean ranks and every
--    Pearson/Spearman correlation with its p-value against tests/ref/analysis_ref.py (numpy + scipy).
--  * experiments/analysis.lua end to end: every table as CSV, index.md/html linking all files, figures (PNG and SVG;
--    skipped with a note when gnuplot is missing), --compare-paper's numbers, and one-line errors.
local test = require "dpl.test"
local json = require "dpl.json"
local results = require "dpl.results"
local lossnet = require "dpl.models.lossnet"
local paper = require "dpl.benchmarks.paper_tables"
local analysis = require "dpl.benchmarks.analysis"
local stats = require "dpl.benchmarks.stats"
-- no tensors: one configuration is enough
local suite = test.suite("analysis", {configurations = {"default"}})

local here = arg[0]:match("^(.*)/[^/]*$") or "."
local root = here .. "/.."
local dplrun = test.dplrun()
local sh, slurp = test.run_command, test.read_file

local tmp = os.tmpname() .. "_analysis"
os.execute(("rm -f '%s'; mkdir -p '%s'"):format(tmp, tmp))
suite.teardown = function() os.execute(("rm -rf '%s'"):format(tmp)) end

local function spit(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end
-- CSV rows (quoted cells with commas and doubled quotes, no newlines inside cells)
local function csv_rows(text)
  local rows = {}
  for line in text:gmatch("[^\n]+") do
    local r, i = {}, 1
    while i <= #line + 1 do
      if line:sub(i, i) == '"' then
        local j, cell = i + 1, {}
        while true do
          local c = line:sub(j, j)
          if c == '"' and line:sub(j + 1, j + 1) == '"' then cell[#cell + 1] = '"'; j = j + 2
          elseif c == '"' or c == "" then break
          else cell[#cell + 1] = c; j = j + 1 end
        end
        r[#r + 1] = table.concat(cell)
        i = j + 2
      else
        local j = line:find(",", i, true) or #line + 1
        r[#r + 1] = line:sub(i, j - 1)
        i = j + 1
      end
    end
    rows[#rows + 1] = r
  end
  return rows
end

-- ---- the paper's tables ---------------------------------------------------------------------------------------------
suite:add("paper tables: counts, names, spot values", function(t)
  local counts = {}
  for _, v in ipairs(paper.values()) do
    counts[v.table] = (counts[v.table] or 0) + 1
    t:ok(lossnet.ARCHS[v.arch], "unknown architecture " .. v.arch)
    t:ok(v.layer == "E" or v.layer == "S" or v.layer == "M" or v.layer == "L", "layer " .. v.layer)
    t:ok(analysis.score(v.score), "unknown score " .. v.score)
    t:ok(type(v.value) == "number" and v.value > 0, "value")
  end
  for _, id in ipairs {"V", "XI"} do t:eq(counts[id], 14 * 8, "Table " .. id) end
  for _, id in ipairs {"VI", "VII", "VIII", "IX"} do t:eq(counts[id], 14 * 12, "Table " .. id) end
  t:eq(counts.X, nil, "Table X is not transcribed")
  t:ok(paper.table("X").unavailable)
  for _, tab in ipairs(paper.TABLES) do
    for _, s in ipairs(tab.scores) do t:ok(analysis.score(s), "score " .. s) end
    for arch, row in pairs(tab.rows) do
      t:ok(lossnet.ARCHS[arch], arch)
      t:eq(#row, #tab.scores * 4, tab.id .. " " .. arch)
    end
  end
  t:eq(paper.value("bapps/2afc", "alexnet", "M"), 0.691)
  t:eq(paper.value("bapps/jnd", "squeezenet1_1", "L"), 0.606)
  t:eq(paper.value("superres4/psnr.Set5", "vgg16_bn", "L"), 13.2)
  t:eq(paper.value("superres4/ssim.BSD100", "efficientnet_b0", "S"), 0.637)
  t:eq(paper.value("superres8/psnr.Set14", "densenet121", "E"), 20.8)
  t:eq(paper.value("superres8/ssim.BSD100", "resnext50_32x4d", "L"), 0.290)
  t:eq(paper.value("svhn/accuracy", "vgg19", "M"), 0.896)
  t:eq(paper.value("stl10/accuracy", "squeezenet1_1", "L"), 0.681)
  t:eq(paper.value("delineation/quality", "vgg16", "E"), nil)
  for arch in pairs(lossnet.ARCHS) do
    t:eq(#paper.TABLE_III.rows[arch], 5, "Table III " .. arch)
    t:eq(#paper.TABLE_IV.rows[arch], 7, "Table IV " .. arch)
  end
  for _, s in ipairs(paper.TABLE_IV.scores) do t:ok(analysis.score(s), s) end
end)

suite:add("paper tables: Table IV's best layers follow from Tables V-IX and XI", function(t)
  local best = analysis.best_layers(analysis.paper_data())
  local compared = 0
  for arch, letters in pairs(paper.TABLE_IV.rows) do
    for k, id in ipairs(paper.TABLE_IV.scores) do
      local b = best.best[id] and best.best[id][arch]
      if id ~= "delineation/quality" then
        t:eq(b and b.layer, letters:sub(k, k), ("%s %s"):format(id, arch))
        compared = compared + 1
      end
    end
  end
  t:eq(compared, 14 * 6)
end)

suite:add("paper tables: Table III's mean ranks follow from Tables V-IX and XI up to ties", function(t)
  local rk = analysis.ranking(analysis.paper_data())
  t:eq(table.concat(rk.numbers, ","), "1,2,4")
  for arch, row in pairs(paper.TABLE_III.rows) do
    -- the paper ranked unrounded scores; the published values tie, and ties share their mean rank here, so a mean
    -- can differ by up to half the tie's width over the benchmark's scores (measured: at most 0.25)
    for _, num in ipairs {1, 2, 4} do
      t:near(rk.by_number[num][arch], row[num], 0.26, ("benchmark %d %s"):format(num, arch))
    end
    t:near((row[1] + row[2] + row[3] + row[4]) / 4, row[5], 0.006, "the paper's All column is the mean " .. arch)
  end
  -- benchmark 1 exactly where no published values tie: VGG-16 (6th 2AFC, 3rd JND), ResNet-18, SqueezeNet
  t:eq(rk.by_number[1].vgg16, 4.5)
  t:eq(rk.by_number[1].resnet18, 5.5)
  t:eq(rk.by_number[1].squeezenet1_1, 3.5)
end)

-- ---- statistics -----------------------------------------------------------------------------------------------------
suite:add("stats: ranks with ties, constant inputs, p-value limits", function(t)
  t:eq(table.concat(stats.ranks({0.3, 0.1, 0.3, 0.7}, {descending = true}), ","), "2.5,4,2.5,1")
  t:eq(table.concat(stats.ranks({3, 1, 2}), ","), "3,1,2")
  local r, p = stats.pearson({1, 2, 3}, {5, 5, 5})
  t:ok(r ~= r and p ~= p, "constant input gives NaN")
  r, p = stats.pearson({1, 2}, {1, 2})
  t:ok(r ~= r, "2 points give NaN")
  r, p = stats.spearman({1, 2, 3, 4}, {10, 20, 30, 40})
  t:eq(r, 1)
  t:eq(p, 0)
  t:near(stats.betainc(2, 3, 0.4), 0.5248, 1e-12)   -- I_0.4(2,3) = 1 - 0.6^4 - 4 * 0.4 * 0.6^3 (closed form)
end)

-- ---- a synthetic store ----------------------------------------------------------------------------------------------
-- The values: the paper's bapps (+0.002), x4 Set5/Set14 PSNR and SSIM (-0.1 dB, +0.01) of 9 architectures, SVHN
-- accuracy of 10; a few cells missing. Attributes: synthetic, with a constant flag.
local LAYERS = {"E", "S", "M", "L"}
local function synthetic()
  local values = {}
  local function put(id, arch, layer, v)
    values[id] = values[id] or {}
    values[id][arch] = values[id][arch] or {}
    values[id][arch][layer] = v
  end
  for i, arch in ipairs(lossnet.ORDER) do
    for _, l in ipairs(LAYERS) do
      if arch ~= "inception_v3" and not (arch == "vgg19" and l == "L") then
        put("bapps/2afc", arch, l, paper.value("bapps/2afc", arch, l) + 0.002)
        put("bapps/jnd", arch, l, paper.value("bapps/jnd", arch, l) + 0.002)
      end
      if i <= 9 then
        for _, set in ipairs {"Set5", "Set14"} do
          put("superres4/psnr." .. set, arch, l, paper.value("superres4/psnr." .. set, arch, l) - 0.1)
          put("superres4/ssim." .. set, arch, l, paper.value("superres4/ssim." .. set, arch, l) + 0.01)
        end
      end
      if i >= 5 and not (arch == "densenet121" and l == "E") then
        put("svhn/accuracy", arch, l, paper.value("svhn/accuracy", arch, l))
      end
    end
  end
  local attrs = {}
  for i, arch in ipairs(lossnet.ORDER) do
    local a = {top1 = 55 + (i * 37) % 23 + i / 10, params = 1e6 * ((i * 13) % 17 + 1), depth = 8 + (i * 7) % 40,
               mflops = 300 + (i * 211) % 5000, layers = {}}
    for k, l in ipairs(LAYERS) do
      a.layers[l] = {params = 1000 * i * k + (i * k * 31) % 97, depth = k * 3 + i % 5, mflops = 10 * i * k + i % 3,
                     channels = 64 * k, features = 200000 / k + i, skip = (i % 3 == 0) and 1 or 0,
                     branch = (i % 4 == 1 and k > 1) and 1 or 0, conv1x1 = 1, batchnorm = (i + k) % 2}
    end
    attrs[arch] = a
  end
  return values, attrs
end

local store = tmp .. "/store.sqlite"
local function build_store(values)
  local db = results.open(store)
  local runs = {}    -- {experiment, config, arch, layer, scores}
  local function run(experiment, config, arch, layer, scores, status)
    config.arch, config.layer = arch, layer
    db:record({experiment = experiment, arch = arch, layer = layer, config = config, scores = scores,
               status = status, error = status and "boom" or nil, code_version = "test"})
  end
  for _, arch in ipairs(lossnet.ORDER) do
    for _, l in ipairs(LAYERS) do
      local b = values["bapps/2afc"][arch]
      if b and b[l] then
        -- an older run of the same cell with other numbers (superseded), and the real one
        run("bapps", {subsets = "old"}, arch, l, {["2afc.mean"] = 0.1, ["jnd.pooled"] = 0.1})
        run("bapps", {}, arch, l, {["2afc.mean"] = b[l], ["jnd.pooled"] = values["bapps/jnd"][arch][l],
                                   ["2afc.cnn"] = 0.5})
      end
      local p = values["superres4/psnr.Set5"][arch]
      if p and p[l] then
        run("superres", {scale = 4}, arch, l, {["test.Set5.psnr"] = p[l], ["test.Set14.psnr"] =
          values["superres4/psnr.Set14"][arch][l], ["test.Set5.ssim"] = values["superres4/ssim.Set5"][arch][l],
          ["test.Set14.ssim"] = values["superres4/ssim.Set14"][arch][l], ["val_psnr.best"] = 20})
        run("superres", {scale = 4}, arch, l, {["test.Set5.psnr"] = 99}, "failed")   -- failed: ignored
      end
      local s = values["svhn/accuracy"][arch]
      if s and s[l] then
        run("autoencoder", {dataset = "svhn"}, arch, l, {["test.accuracy"] = s[l]})
        run("autoencoder", {dataset = "stl10", quick = true}, arch, l, {["test.accuracy"] = 0.5})
      end
    end
  end
  run("bapps", {lpips = true}, "alexnet", "lpips", {["2afc.mean"] = 0.9})   -- not a loss-network layer
  run("other", {}, "alexnet", "E", {score = 1})
  db:close()
end

local values, attrs = synthetic()
build_store(values)
local attrs_file = tmp .. "/attributes.json"
spit(attrs_file, json.encode({size = 224, archs = attrs}))

suite:add("load: the newest finished run of each cell, scores read by name and configuration", function(t)
  local data = analysis.load(store)
  for id, per in pairs(values) do
    for arch, layers in pairs(per) do
      for l, v in pairs(layers) do t:eq(data.values[id][arch][l], v, ("%s %s %s"):format(id, arch, l)) end
    end
  end
  local n = 0
  for id, per in pairs(data.values) do
    for arch, layers in pairs(per) do for l in pairs(layers) do
      n = n + 1
      t:ok(id == "stl10/accuracy" or values[id][arch][l], ("unexpected %s %s %s"):format(id, arch, l))
    end end
  end
  t:ok(n > 300, "cells read")
  t:eq(#analysis.present_scores(data), 2 + 4 + 1 + 1)
  t:eq(data.values["stl10/accuracy"].resnet18.E, 0.5)
  local quick = analysis.load(store, {where = {quick = "false"}})
  t:eq(#analysis.present_scores(quick), 2 + 4 + 1, "--where quick=false drops the STL-10 runs (quick = true)")
  t:eq(quick.values["bapps/2afc"].alexnet.M, values["bapps/2afc"].alexnet.M, "runs without the field are kept")
  t:ok(data.superseded > 0, "the older BAPPS runs are superseded")
  quick = analysis.load(store, {where = {quick = "true", subsets = "new"}})
  t:eq(quick.values["stl10/accuracy"].resnet18.E, 0.5)
  t:eq(quick.superseded, 0, "--where subsets=new leaves the older BAPPS runs (subsets = old) out")
  t:eq(quick.values["bapps/2afc"].alexnet.M, values["bapps/2afc"].alexnet.M)
  t:raises(function() analysis.benchmarks("bapps,nope") end, "unknown benchmark 'nope'")
end)

suite:add("ranks, best layers and correlations against numpy/scipy", function(t)
  local status = os.execute("/usr/bin/python3 -c 'import scipy, numpy' >/dev/null 2>&1")
  if status ~= 0 and status ~= true then t:skip("python3-scipy is not installed (apt-get install python3-scipy)") end
  local data = analysis.load(store)
  local numbers, attr_list = {}, {}
  for _, id in ipairs(analysis.present_scores(data)) do numbers[id] = analysis.score(id).benchmark.number end
  for _, a in ipairs(analysis.ATTRIBUTES) do attr_list[#attr_list + 1] = {name = a.name, of = a.of, field = a.field} end
  -- the reference reads the values the test wrote (not what the analysis read)
  local inp = {values = {}, numbers = numbers, archs = json.array(lossnet.ORDER), attributes = json.array(attr_list),
               attrs = attrs}
  for id, per in pairs(values) do inp.values[id] = per end
  inp.values["stl10/accuracy"] = data.values["stl10/accuracy"]
  spit(tmp .. "/ref_in.json", json.encode(inp))
  local rc, log = sh(("/usr/bin/python3 %s/tests/ref/analysis_ref.py %s/ref_in.json %s/ref_out.json"):format(root, tmp, tmp))
  t:eq(rc, 0, log)
  local ref = json.decode(slurp(tmp .. "/ref_out.json"))

  local best = analysis.best_layers(data)
  local rk = analysis.ranking(data)
  local n = 0
  for id, per in pairs(ref.best) do
    for arch, layer in pairs(per) do t:eq(best.best[id][arch].layer, layer, "best layer " .. id .. " " .. arch); n = n + 1 end
  end
  for id, per in pairs(ref.rank) do
    for arch, r in pairs(per) do t:eq(rk.rank[id][arch], r, "rank " .. id .. " " .. arch) end
  end
  local ties = 0
  for _, r in pairs(ref.rank["bapps/2afc"]) do if r ~= math.floor(r) then ties = ties + 1 end end
  t:ok(ties >= 2, "the data has tied ranks")
  for num, per in pairs(ref.mean_rank) do
    for arch, v in pairs(per) do t:near(rk.by_number[tonumber(num)][arch], v, 1e-12, "mean rank " .. num .. " " .. arch) end
  end
  for arch, v in pairs(ref.overall) do t:near(rk.overall[arch], v, 1e-12, "overall " .. arch) end
  t:eq(rk.overall.inception_v3 ~= nil, true, "an architecture without BAPPS runs is ranked on the rest")

  local corr = analysis.correlations(data, attrs)
  local mine = {}
  for _, c in ipairs(corr) do mine[c.score .. "|" .. c.group .. "|" .. c.attribute] = c end
  local compared, nan = 0, 0
  for _, c in ipairs(ref.corr) do
    local m = mine[c.score .. "|" .. c.group .. "|" .. c.attribute]
    local what = ("%s %s %s"):format(c.score, c.group, c.attribute)
    t:ok(m, "missing correlation " .. what)
    t:eq(m.n, c.n, what .. " n")
    if c.pearson then
      t:near(m.pearson, c.pearson, 1e-9, what .. " pearson")
      t:near(m.spearman, c.spearman, 1e-9, what .. " spearman")
      -- p-values relative to their size (small ones matter as much)
      t:ok(math.abs(m.pearson_p - c.pearson_p) <= 1e-7 * math.max(c.pearson_p, 1e-12) + 1e-13,
           ("%s pearson p %.10g vs scipy %.10g"):format(what, m.pearson_p, c.pearson_p))
      t:ok(math.abs(m.spearman_p - c.spearman_p) <= 1e-7 * math.max(c.spearman_p, 1e-12) + 1e-13,
           ("%s spearman p %.10g vs scipy %.10g"):format(what, m.spearman_p, c.spearman_p))
      compared = compared + 1
    else
      t:ok(m.pearson ~= m.pearson and m.spearman ~= m.spearman, what .. " should be NaN")
      nan = nan + 1
    end
  end
  t:eq(#corr, #ref.corr)
  t:ok(compared > 400 and nan > 0, ("%d correlations compared, %d NaN"):format(compared, nan))
end)

-- ---- the command line -----------------------------------------------------------------------------------------------
local function analysis_cli(opts)
  return sh(("cd %s && %s%s experiments/analysis.lua %s"):format(root, opts.env or "", dplrun, opts.args))
end

suite:add("experiments/analysis.lua: tables, CSV, index, figures, --compare-paper", function(t)
  local out = tmp .. "/report"
  local rc, log = analysis_cli({args = ("--db %s --out %s --attributes %s --compare-paper"):format(store, out, attrs_file)})
  t:eq(rc, 0, log)
  t:ok(log:find("Table III", 1, true) and log:find("Comparison with the paper", 1, true), log)
  local md, html = slurp(out .. "/index.md"), slurp(out .. "/index.html")
  t:ok(md and html, "index.md and index.html")
  local tables = {"table_III_ranking", "table_IV_best_layer", "table_V", "table_VI", "table_VII", "table_XI",
                  "correlations", "compare_paper_summary", "compare_paper"}
  for _, name in ipairs(tables) do
    t:ok(slurp(("%s/tables/%s.csv"):format(out, name)), name .. ".csv")
    t:ok(md:find(("tables/%s.csv"):format(name), 1, true), "index.md links " .. name)
    t:ok(html:find(("tables/%s.csv"):format(name), 1, true), "index.html links " .. name)
  end
  t:ok(not slurp(out .. "/tables/table_VIII.csv"), "no x8 runs, no Table VIII")
  -- the ranking CSV names its rank columns; Table III's numbers
  local r3 = csv_rows(slurp(out .. "/tables/table_III_ranking.csv"))
  t:eq(r3[1][3], "rank.bapps/2afc")
  t:eq(r3[1][#r3[1]], "mean_rank.all")
  -- Table V: every architecture, the missing ones as empty cells
  local r5 = csv_rows(slurp(out .. "/tables/table_V.csv"))
  t:eq(#r5, 15)
  for _, r in ipairs(r5) do
    if r[2] == "inception_v3" then t:eq(r[3], "") end
    if r[2] == "alexnet" then t:near(tonumber(r[5]), 0.693, 1e-9) end
  end
  -- --compare-paper: bapps is the paper + 0.002 everywhere, so the same ranking; x4 PSNR is 0.1 dB below
  local sum = csv_rows(slurp(out .. "/tables/compare_paper_summary.csv"))
  local by = {}
  for i = 2, #sum do by[sum[i][1]] = sum[i] end
  t:eq(tonumber(by.bapps[3]), 13 * 8 - 2)
  t:near(tonumber(by.bapps[4]), 0.002, 1e-9, "mean |diff| bapps")
  t:near(tonumber(by.bapps[7]), 1, 1e-12, "Spearman of the architectures, bapps")
  t:eq(tonumber(by.superres4[3]), 9 * 4 * 4)
  t:near(tonumber(by.superres4[4]), (0.1 + 0.01) / 2, 1e-9, "mean |diff| x4")
  t:eq(by.superres8[3], "0")
  t:eq(tonumber(by.svhn[3]), 10 * 4 - 1)
  t:near(tonumber(by.svhn[4]), 0, 1e-12)
  local cells = csv_rows(slurp(out .. "/tables/compare_paper.csv"))
  t:eq(table.concat(cells[1], ","), "table,score,arch,layer,ours,paper,diff")
  local found = false
  for _, c in ipairs(cells) do
    if c[2] == "superres4/psnr.Set5" and c[3] == "vgg16_bn" and c[4] == "L" then
      found = true
      t:near(tonumber(c[5]), 13.1, 1e-9); t:eq(tonumber(c[6]), 13.2); t:near(tonumber(c[7]), -0.1, 1e-9)
    end
  end
  t:ok(found, "vgg16_bn L x4 Set5 PSNR compared")
  -- figures: PNG and SVG of each score's layer plot and top-1 scatter, and the rank heat map, all linked
  if os.execute("command -v gnuplot >/dev/null 2>&1") ~= 0 then t:skip("gnuplot is not installed (apt-get install gnuplot-nox): figures not checked") end
  local pngs = 0
  for _, name in ipairs {"layers_bapps_2afc", "top1_bapps_2afc", "layers_superres4_psnr.Set14", "top1_svhn_accuracy",
                         "ranks"} do
    local png = slurp(("%s/figures/%s.png"):format(out, name))
    t:ok(png and png:sub(1, 8) == "\137PNG\r\n\26\n", name .. ".png")
    local svg = slurp(("%s/figures/%s.svg"):format(out, name))
    t:ok(svg and svg:find("<svg", 1, true), name .. ".svg")
    t:ok(md:find(("figures/%s.png"):format(name), 1, true) and md:find(("figures/%s.svg"):format(name), 1, true),
         "index.md links " .. name)
    t:ok(html:find(("figures/%s.png"):format(name), 1, true), "index.html links " .. name)
    pngs = pngs + 1
  end
  t:eq(pngs, 5)
end)

suite:add("experiments/analysis.lua: without gnuplot the report is written and says why there are no figures", function(t)
  local bin = tmp .. "/bin"
  os.execute(("mkdir -p '%s' && ln -sf \"$(command -v mkdir)\" '%s/mkdir'"):format(bin, bin))
  local out = tmp .. "/report_nognuplot"
  local rc, log = analysis_cli({env = ("PATH='%s' "):format(bin), args = ("--db %s --out %s --attributes %s"):format(
    store, out, attrs_file)})
  t:eq(rc, 0, log)
  t:ok(log:find("gnuplot is not installed", 1, true), log)
  t:ok((slurp(out .. "/index.md") or ""):find("gnuplot is not installed", 1, true), "index.md says so")
  t:ok(slurp(out .. "/tables/table_V.csv"), "tables written")
  t:ok(slurp(out .. "/figures/layers_bapps_2afc.dat"), "the figures' data are written")
end)

suite:add("experiments/analysis.lua: --help and one-line errors", function(t)
  local rc, log = analysis_cli({args = "--help"})
  t:eq(rc, 0, log)
  t:ok(log:find("Usage", 1, true) and log:find("--compare-paper", 1, true), log)
  local function one_line_error(args, pattern)
    local rc2, out = analysis_cli({args = args})
    t:eq(rc2, 1, out)
    t:ok(out:find(pattern, 1, true), ("expected '%s' in: %s"):format(pattern, out))
    t:ok(not out:find("traceback", 1, true) and select(2, out:gsub("\n", "")) <= 1, "one line: " .. out)
  end
  one_line_error(("--db %s/none.sqlite --out %s/r1"):format(tmp, tmp), "no results store at " .. tmp .. "/none.sqlite")
  spit(tmp .. "/corrupt.sqlite", ("this is not a database\n"):rep(200))
  one_line_error(("--db %s/corrupt.sqlite --out %s/r2"):format(tmp, tmp), "corrupt.sqlite")
  one_line_error(("--db %s --benchmarks bapps,superres3 --out %s/r3"):format(store, tmp), "unknown benchmark 'superres3'")
  one_line_error(("--db %s --benchmarks delineation --out %s/r4 --attributes %s"):format(store, tmp, attrs_file),
    "holds no finished run of delineation")
  one_line_error(("--db %s --out %s/r5 --where quick"):format(store, tmp), "expected KEY=VALUE")
  one_line_error(("--db %s --out %s/r6 --attributes %s/nofile.json"):format(store, tmp, tmp), "no such file")
end)

-- ---- the example strips -----------------------------------------------------------------------------------------------
-- A small store of x4 super-resolution and delineation runs, and for most cells the PNGs their --save writes, in the
-- folder the sweep's --save-examples uses (examples/<experiment>/<hash16>/ beside the store): each cell's output is a
-- flat colour or grey level of its own, so the strip's rows can be told apart by their pixels.
local examples = require "dpl.benchmarks.analysis_examples"
local function flat(path, channels, size, v)
  local dpl = require "dpl"
  local ffi = require "ffi"
  local n = size * size
  local buf = ffi.new("float[?]", channels * n)
  for c = 0, channels - 1 do
    local x = type(v) == "table" and v[c + 1] or v
    for i = 0, n - 1 do buf[c * n + i] = x end
  end
  dpl.image.save(dpl.from_pointer(buf, {channels, size, size}, {device = "cpu"}), path)
end

-- the colour at the centre of a tile (row i, column j: 1-based) of a strip, as 0..1 floats
local function tile_colour(img, i, j)
  local W = img:size(3)
  local H = img:size(2)
  local x = math.floor(examples.LABEL_W + (j - 0.5) * examples.TILE)
  local y = math.floor(examples.HEAD_H + (i - 0.5) * examples.TILE)
  local d = img:contiguous():float_data()
  return {d[y * W + x], d[H * W + y * W + x], d[2 * H * W + y * W + x]}
end

local SR = {   -- arch, layer, x4 PSNR on Set5, the output's colour (nil: no outputs saved)
  {"alexnet", "E", 20, {0, 0, 1}}, {"vgg16", "M", 25, {1, 0, 0}}, {"resnet18", "L", 22, {0, 1, 0}},
  {"squeezenet1_1", "E", 21, nil}}
local function example_store(dir, with_outputs)
  os.execute(("rm -rf '%s'; mkdir -p '%s'"):format(dir, dir))
  local db = results.open(dir .. "/dpl.sqlite")
  local function run(experiment, config, arch, layer, scores)
    config.experiment, config.arch, config.layer = experiment, arch, layer
    db:record({experiment = experiment, arch = arch, layer = layer, config = config, scores = scores,
               code_version = "test"})
    return examples.cell_dir(dir .. "/examples", experiment, results.config_hash(config))
  end
  for _, c in ipairs(SR) do
    local cell = run("superres", {scale = 4}, c[1], c[2], {["test.Set5.psnr"] = c[3], ["test.Set5.ssim"] = 0.5})
    if with_outputs and c[4] then
      os.execute(("mkdir -p '%s/Set5' '%s/Set14'"):format(cell, cell))
      for _, stem in ipairs {"baby", "bird"} do
        flat(("%s/Set5/%s.png"):format(cell, stem), 3, 32, c[4])
        flat(("%s/Set5/%s_hr.png"):format(cell, stem), 3, 32, 0.5)
        flat(("%s/Set5/%s_lr.png"):format(cell, stem), 3, 8, 0.25)
        flat(("%s/Set14/%s.png"):format(cell, stem), 3, 32, {1, 1, 0})   -- Set5 is shown, not Set14
      end
      if c[1] == "alexnet" then spit(cell .. "/Set5/bird.png", "not a png") end
    end
  end
  -- 8 delineation cells: quality k / 10; the strip shows the best 3 and the worst 3, each by its last map (k3)
  for k = 1, 8 do
    local arch = lossnet.ORDER[k]
    local cell = run("delineation", {eval = "fixed"}, arch, "M", {["test.quality"] = k / 10,
      ["test.correctness"] = 0.5, ["test.completeness"] = 0.5})
    if with_outputs then
      os.execute(("mkdir -p '%s'"):format(cell))
      for _, stem in ipairs {"10078735_15", "23429170_15", "99999999_15"} do
        flat(("%s/%s_k1.png"):format(cell, stem), 1, 48, 0)
        flat(("%s/%s_k3.png"):format(cell, stem), 1, 48, k / 10)
        flat(("%s/%s_image.png"):format(cell, stem), 3, 48, {0.2, 0.4, 0.6})
        flat(("%s/%s_gt.png"):format(cell, stem), 1, 48, 1)
      end
    end
  end
  db:close()
  return dir .. "/dpl.sqlite"
end

suite:add("experiments/analysis.lua: a strip of example outputs per benchmark, best first, linked from the index",
  function(t)
  if os.execute("command -v gnuplot >/dev/null 2>&1") ~= 0 then t:skip("gnuplot is not installed (apt-get install gnuplot-nox)") end
  local db = example_store(tmp .. "/ex", true)
  local out = tmp .. "/ex/report"
  local rc, log = analysis_cli({args = ("--db %s --out %s --attributes %s"):format(db, out, attrs_file)})
  t:eq(rc, 0, log)
  t:ok(log:find("2 example strip(s)", 1, true), log)
  local dpl = require "dpl"
  local T, LW, HH = examples.TILE, examples.LABEL_W, examples.HEAD_H
  -- super-resolution: 2 images (Set5's), rows input, ground truth, vgg16 M, resnet18 L, alexnet E (squeezenet has none)
  local img = dpl.image.load(out .. "/figures/examples_superres4.png", {device = "cpu"})
  t:shape(img, {3, HH + 5 * T, LW + 2 * T})   -- at least MIN_COLUMNS wide
  local function near(got, want, what)
    for c = 1, 3 do t:near(got[c], want[c], 0.02, ("%s channel %d: %s"):format(what, c, table.concat(got, " "))) end
  end
  near(tile_colour(img, 1, 1), {0.25, 0.25, 0.25}, "input (LR) row")
  near(tile_colour(img, 2, 2), {0.5, 0.5, 0.5}, "ground truth row")
  near(tile_colour(img, 3, 1), {1, 0, 0}, "best: vgg16 M")
  near(tile_colour(img, 4, 2), {0, 1, 0}, "second: resnet18 L")
  near(tile_colour(img, 5, 1), {0, 0, 1}, "third: alexnet E")
  near(tile_colour(img, 5, 2), {1, 1, 1}, "alexnet's unreadable bird.png: an empty tile")
  -- delineation: 8 cells with outputs, the best 3 and the worst 3 shown (quality 0.8, 0.7, 0.6, 0.3, 0.2, 0.1), each
  -- by its last iteration's map; MAX_IMAGES columns
  img = dpl.image.load(out .. "/figures/examples_delineation.png", {device = "cpu"})
  t:shape(img, {3, HH + 8 * T, LW + 3 * T})
  near(tile_colour(img, 1, 3), {0.2, 0.4, 0.6}, "input row")
  near(tile_colour(img, 2, 1), {1, 1, 1}, "ground truth row")
  for i, q in ipairs {0.8, 0.7, 0.6, 0.3, 0.2, 0.1} do near(tile_colour(img, 2 + i, 2), {q, q, q}, "row " .. (2 + i)) end
  -- the index links both strips (PNG only) and says what it found
  local md, html = slurp(out .. "/index.md"), slurp(out .. "/index.html")
  for _, b in ipairs {"superres4", "delineation"} do
    t:ok(md:find(("](figures/examples_%s.png)"):format(b), 1, true), "index.md shows the strip of " .. b)
    t:ok(html:find(('<img src="figures/examples_%s.png"'):format(b), 1, true), "index.html shows the strip of " .. b)
    t:ok(not md:find(("figures/examples_%s.svg"):format(b), 1, true), "no SVG link for " .. b)
  end
  t:ok(md:find("superres4: 3 of its 4 cell(s) have saved outputs", 1, true), md)
  t:ok(md:find("delineation: 8 of its 8 cell(s) have saved outputs, the best and the worst are shown", 1, true), md)
  t:ok(md:find("not a readable PNG (shown as no output): " .. tmp .. "/ex/examples/superres/", 1, true), md)
  t:ok(slurp(out .. "/figures/examples_superres4.gp"), "the strip's gnuplot script is kept")
  -- a gnuplot that fails: the report is written and says so (figures and strips), never a crash
  local bin = tmp .. "/badbin"
  os.execute(("mkdir -p '%s' && printf '#!/bin/sh\\necho gnuplot says no >&2\\nexit 1\\n' > '%s/gnuplot' && " ..
    "chmod +x '%s/gnuplot'"):format(bin, bin, bin))
  rc, log = analysis_cli({env = ("PATH='%s':\"$PATH\" "):format(bin), args = ("--db %s --out %s2 --attributes %s")
    :format(db, out, attrs_file)})
  t:eq(rc, 0, log)
  md = slurp(out .. "2/index.md")
  t:ok(md:find("gnuplot failed on " .. out .. "2/figures/plots_png.gp: gnuplot says no", 1, true), md)
  t:ok(md:find("superres4: gnuplot failed on " .. out .. "2/figures/examples_superres4.gp: gnuplot says no", 1, true),
    md)
  t:ok(not md:find("](figures/examples_superres4.png)", 1, true), "a strip that failed is not linked")
end)

suite:add("experiments/analysis.lua: no saved outputs: the report says so, no strip", function(t)
  if os.execute("command -v gnuplot >/dev/null 2>&1") ~= 0 then t:skip("gnuplot is not installed (apt-get install gnuplot-nox)") end
  local db = example_store(tmp .. "/noex", false)
  local out = tmp .. "/noex/report"
  local rc, log = analysis_cli({args = ("--db %s --out %s --attributes %s"):format(db, out, attrs_file)})
  t:eq(rc, 0, log)
  local md = slurp(out .. "/index.md")
  t:ok(md:find(("superres4: no saved outputs of its 4 cell(s) under %s/noex/examples (run the sweep with " ..
    "--save-examples N"):format(tmp), 1, true), md)
  t:ok(md:find("delineation: no saved outputs of its 8 cell(s)", 1, true), md)
  t:eq(slurp(out .. "/figures/examples_superres4.png"), nil)
  t:ok(slurp(out .. "/figures/layers_superres4_psnr.Set5.png"), "the other figures are drawn")
  -- --examples names another folder
  rc, log = analysis_cli({args = ("--db %s --out %s --attributes %s --examples %s/ex/examples --no-figures"):format(db,
    out .. "2", attrs_file, tmp)})
  t:eq(rc, 0, log)
  t:eq(slurp(out .. "2/figures/examples_superres4.png"), nil, "--no-figures draws no strip")
end)

return suite

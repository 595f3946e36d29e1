-- experiments/analysis.lua - the paper's analysis from the results store: Tables III-XI, correlations of every score
-- with the loss networks' attributes (ImageNet top-1, depth, parameters, FLOPs, ...), figures, and with
-- --compare-paper every cell beside the published number. docs/analysis.md describes the outputs and choices.
--   dplrun experiments/analysis.lua                                        results/dpl.sqlite -> report/
--   dplrun experiments/analysis.lua --db results/dpl.sqlite --out report/ --compare-paper
--   dplrun experiments/analysis.lua --benchmarks bapps,superres4 --where preset=paper --no-figures
-- Writes report/index.md and index.html (every table and figure linked), report/tables/*.csv,
-- report/figures/*.png|svg (gnuplot), report/figures/examples_<benchmark>.png (a strip of the saved example outputs of
-- super-resolution and delineation cells) and report/attributes.json (the attributes, computed once and reused).
local argparse = require "argparse"
local json = require "dpl.json"
local results = require "dpl.results"
local analysis = require "dpl.benchmarks.analysis"
local R = require "dpl.benchmarks.analysis_report"

local parser = argparse("dplrun experiments/analysis.lua",
  "The paper's analysis (Tables III-XI, correlations, figures) from the results store, optionally beside the " ..
  "paper's published numbers.")
parser:option("--db", "Results store to read.", results.DEFAULT_PATH)
parser:option("--out", "Folder for index.md, index.html, tables/ and figures/.", "report")
parser:option("--benchmarks", "Benchmarks to analyse: a comma list of bapps, superres4, superres8, delineation, svhn, " ..
  "stl10, or all.", "all")
parser:option("--where", "KEY=VALUE (repeatable): leave out runs whose configuration has the field KEY with another " ..
  "value, e.g. preset=paper (runs without the field are kept)."):count("*")
parser:flag("--compare-paper", "Also compare every cell with the paper's published Tables V-XI.")
parser:flag("--from-paper", "Analyse the paper's published numbers (its Tables V-XI) instead of a results store.")
parser:option("--attributes", "JSON file of the loss networks' attributes (default: <out>/attributes.json, " ..
  "computed and written there when missing).")
parser:option("--examples", "Folder of the cells' saved example outputs (experiments/sweep.lua --save-examples; " ..
  "default: examples/ beside --db): a strip per super-resolution / delineation benchmark.")
parser:flag("--no-figures", "Do not draw figures (nor the example strips).")
local args = parser:parse(arg)

local function die(msg)
  io.stderr:write("analysis.lua: ", tostring(msg):gsub("\n.*", ""), "\n")
  os.exit(1)
end
local function note(fmt, ...) io.stderr:write("analysis.lua: ", fmt:format(...), "\n") end

local ok, benches = pcall(analysis.benchmarks, args.benchmarks)
if not ok then die(benches) end
local where = {}
for _, w in ipairs(args.where) do
  local k, v = w:match("^([%w_%.%-]+)=(.*)$")
  if not k then die(("--where %s: expected KEY=VALUE"):format(w)) end
  where[k] = v
end

local ok_load, data
if args.from_paper then
  ok_load, data = true, analysis.paper_data(benches)
  args.db = "the paper's Tables V-XI (dpl.benchmarks.paper_tables)"
else
  ok_load, data = pcall(analysis.load, args.db, {benchmarks = benches, where = where})
end
if not ok_load then die(data) end
local present = analysis.present_scores(data)
if #present == 0 then
  local names = {}
  for _, b in ipairs(benches) do names[#names + 1] = b.id end
  die(("%s holds no finished run of %s%s (run the benchmarks first; see README)"):format(args.db,
    table.concat(names, ", "), next(where) and " matching --where" or ""))
end

local out = args.out:gsub("/+$", "")
if os.execute(("mkdir -p '%s/tables' '%s/figures'"):format(out:gsub("'", "'\\''"), out:gsub("'", "'\\''"))) ~= 0 then
  die("cannot create " .. out)
end

-- the architectures' attributes: from --attributes, the cache in <out>, or computed (and cached)
local archs, seen = {}, {}
for _, id in ipairs(present) do
  for a in pairs(data.values[id]) do if not seen[a] then seen[a] = true; archs[#archs + 1] = a end end
end
table.sort(archs)
local attr_path = args.attributes or (out .. "/attributes.json")
local attrs = {}
do
  local f = io.open(attr_path, "rb")
  if f then
    local text = f:read("*a")
    f:close()
    local okj, a = pcall(json.decode, text)
    if not okj or type(a) ~= "table" or type(a.archs) ~= "table" then
      die(("%s is not an attributes file written by analysis.lua (delete it to recompute)"):format(attr_path))
    end
    attrs = a.archs
  elseif args.attributes then
    die(("--attributes %s: no such file"):format(args.attributes))
  end
  local missing = {}
  for _, a in ipairs(archs) do if not attrs[a] then missing[#missing + 1] = a end end
  if #missing > 0 then
    if args.attributes then die(("%s has no attributes of %s"):format(attr_path, table.concat(missing, ", "))) end
    note("computing the attributes of %d architecture(s) (once; cached in %s)", #missing, attr_path)
    local okc, computed = pcall(analysis.attributes, missing, 224, function(i, n, a) note("  [%d/%d] %s", i, n, a) end)
    if not okc then die(computed) end
    for a, v in pairs(computed) do attrs[a] = v end
    R.write_file(attr_path, json.encode({size = 224, archs = attrs}, {indent = " "}) .. "\n")
  end
end

local rk = analysis.ranking(data)
local best = analysis.best_layers(data)
local corr = analysis.correlations(data, attrs)

local sections = {}
local function table_section(t, short, text)
  R.write_file(out .. "/tables/" .. t.name .. ".csv", R.csv(t))
  sections[#sections + 1] = {title = t.title, short = short, table = t, text = text}
  return t
end
local t3 = table_section(R.table_iii(rk), nil, "Ties (equal best values) share the mean of their ranks. An architecture " ..
  "missing a score is ranked over the scores it has.")
table_section(R.table_iv(best))
for _, t in ipairs(R.paper_tables(data)) do table_section(t) end
table_section(R.correlation_tables(corr), "Correlations")
local cmp
if args.compare_paper then
  cmp = analysis.compare(data)
  local summary, cells = R.compare_tables(cmp)
  table_section(summary, "Comparison with the paper")
  table_section(cells, "Every compared cell")
  print(R.text(summary))
  print()
end

local figs, why = {}, nil
if not args.no_figures then
  local okf, f, w = pcall(R.figures, data, rk, attrs, corr, out .. "/figures")
  if not okf then figs, why = nil, tostring(f) else figs, why = f, w end
  if figs then
    sections[#sections + 1] = {title = "Figures", figures = figs}
  else
    note("%s", why)
    sections[#sections + 1] = {title = "Figures", text = why}
  end
end

-- a strip of example outputs per benchmark that saves them (super-resolution, delineation)
if not args.no_figures and not args.from_paper then
  local examples = args.examples or ((args.db:match("^(.*)/[^/]*$") or ".") .. "/examples")
  local strips, notes = {}, {}
  if R.have_gnuplot() then
    local okx, s, n = pcall(require("dpl.benchmarks.analysis_examples").strips, data, {root = examples,
                                                                                        dir = out .. "/figures"})
    if okx then strips, notes = s, n else notes = {tostring(s)} end
  elseif args.examples then
    notes = {"gnuplot is not installed (Debian: apt-get install gnuplot-nox): no example strips"}
  end
  for _, n in ipairs(notes) do note("%s", n) end
  if #strips > 0 or #notes > 0 then
    sections[#sections + 1] = {title = "Example outputs", figures = strips,
                               text = #notes > 0 and (table.concat(notes, ". ") .. ".") or nil}
  end
end

local meta = {
  ("Results store: %s; %d cells read%s%s."):format(args.db, data.cells,
    data.superseded > 0 and (", %d older runs of the same cells superseded by newer ones"):format(data.superseded) or "",
    next(where) and (" (--where " .. table.concat(args.where, " ") .. ")") or ""),
  ("Scores: %s."):format((function()
    local l = {}
    for _, id in ipairs(present) do l[#l + 1] = analysis.score(id).label end
    return table.concat(l, ", ")
  end)()),
  ("Written %s by %s."):format(results.iso_time(os.time()), results.code_version()),
}
R.index(out, meta, sections)

print(R.text(t3))
print()
print(R.text(R.correlation_tables(corr, {groups = {"best"}})))
local ntables, nstrips = 0, 0
for _, s in ipairs(sections) do
  if s.table then ntables = ntables + 1 end
  if s.title == "Example outputs" then nstrips = #s.figures end
end
note("%d tables%s%s -> %s/index.md, %s/index.html", ntables, figs and (", %d figures"):format(#figs) or "",
  nstrips > 0 and (", %d example strip(s)"):format(nstrips) or "", out, out)

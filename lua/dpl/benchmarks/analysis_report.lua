-- dpl.benchmarks.analysis_report: the outputs of the analysis (dpl.benchmarks.analysis) as tables (plain text for the
-- terminal, Markdown, HTML and CSV from one description each), gnuplot figures (PNG and SVG) and report/index.md +
-- index.html linking all of them. experiments/analysis.lua drives it; docs/analysis.md lists the files.
--
-- A table is {name =, title =, header = {...}, rows = {{...}, {"group title"}, ...}, csv_header =, csv_rows =,
-- note =}: rows of one cell are group titles (VGG Networks, ...) in text/Markdown/HTML and left out of the CSV.
local analysis = require "dpl.benchmarks.analysis"
local paper = require "dpl.benchmarks.paper_tables"
local report = require "dpl.benchmarks.report"

local R = {}

local DISPLAY, GROUPS = report.DISPLAY, report.GROUPS
local LAYERS = analysis.LAYERS

local function fmt(v, digits)
  if v == nil or v ~= v then return "-" end
  return ("%." .. (digits or 3) .. "f"):format(v)
end
-- a p-value: 3 significant digits, small ones in e-notation
local function fmt_p(p)
  if p == nil or p ~= p then return "-" end
  if p < 1e-3 then return ("%.2e"):format(p) end
  return ("%.3f"):format(p)
end
-- a mean rank as the paper prints it: up to 2 decimals, no trailing zeros
local function fmt_rank(v)
  if v == nil or v ~= v then return "-" end
  return (("%.2f"):format(v):gsub("0+$", ""):gsub("%.$", ""))
end
R.fmt, R.fmt_p, R.fmt_rank = fmt, fmt_p, fmt_rank

-- architectures in the paper's row order with their group titles: {{"VGG Networks"}, "vgg11", ...}
local function paper_rows(keep)
  local out = {}
  for _, g in ipairs(GROUPS) do
    local members = {}
    for _, a in ipairs(g[2]) do if not keep or keep[a] then members[#members + 1] = a end end
    if #members > 0 then
      out[#out + 1] = {g[1]}
      for _, a in ipairs(members) do out[#out + 1] = a end
    end
  end
  return out
end

-- ---- the tables ---------------------------------------------------------------------------------------------------
-- Tables V-XI in the paper's layout for the tables that have at least one value: every architecture (missing cells
-- "-"), one column per (score, layer).
function R.paper_tables(data)
  local out = {}
  for _, t in ipairs(paper.TABLES) do
    local any = false
    for _, id in ipairs(t.scores) do
      for _, layers in pairs(data.values[id] or {}) do if next(layers) then any = true end end
    end
    if any then
      local header, csv_header = {"Architecture"}, {"architecture", "arch"}
      for _, id in ipairs(t.scores) do
        local s = analysis.score(id)
        for k, l in ipairs(LAYERS) do
          header[#header + 1] = k == 1 and (s.label .. " " .. l) or l
          csv_header[#csv_header + 1] = id .. "." .. l
        end
      end
      local rows, csv_rows = {}, {}
      for _, a in ipairs(paper_rows()) do
        if type(a) == "table" then rows[#rows + 1] = a else
          local row, csv = {DISPLAY[a]}, {DISPLAY[a], a}
          for _, id in ipairs(t.scores) do
            local per = data.values[id] and data.values[id][a] or {}
            for _, l in ipairs(LAYERS) do
              row[#row + 1] = fmt(per[l], analysis.score(id).digits)
              csv[#csv + 1] = per[l]
            end
          end
          rows[#rows + 1], csv_rows[#csv_rows + 1] = row, csv
        end
      end
      out[#out + 1] = {name = "table_" .. t.id, title = ("Table %s: %s"):format(t.id, t.title:gsub("^%a", string.upper)),
                       header = header, rows = rows, csv_header = csv_header, csv_rows = csv_rows}
    end
  end
  return out
end

-- Table III: mean rank per benchmark and overall (the paper's layout); the CSV also holds every score's rank.
function R.table_iii(rk)
  local header, csv_header = {"Architecture"}, {"architecture", "arch"}
  for _, num in ipairs(rk.numbers) do header[#header + 1] = ("Benchmark %d"):format(num) end
  header[#header + 1] = "All"
  for _, id in ipairs(rk.scores) do csv_header[#csv_header + 1] = "rank." .. id end
  for _, num in ipairs(rk.numbers) do csv_header[#csv_header + 1] = ("mean_rank.benchmark%d"):format(num) end
  csv_header[#csv_header + 1] = "mean_rank.all"
  local keep = {}
  for a in pairs(rk.overall) do keep[a] = true end
  local rows, csv_rows = {}, {}
  for _, a in ipairs(paper_rows(keep)) do
    if type(a) == "table" then rows[#rows + 1] = a else
      local row, csv = {DISPLAY[a]}, {DISPLAY[a], a}
      for _, num in ipairs(rk.numbers) do row[#row + 1] = fmt_rank(rk.by_number[num][a]) end
      row[#row + 1] = fmt_rank(rk.overall[a])
      for _, id in ipairs(rk.scores) do csv[#csv + 1] = rk.rank[id][a] end
      for _, num in ipairs(rk.numbers) do csv[#csv + 1] = rk.by_number[num][a] end
      csv[#csv + 1] = rk.overall[a]
      rows[#rows + 1], csv_rows[#csv_rows + 1] = row, csv
    end
  end
  local counts = {}
  for _, id in ipairs(rk.scores) do counts[#counts + 1] = ("%s %d"):format(analysis.score(id).label, rk.n[id]) end
  return {name = "table_III_ranking", header = header, rows = rows, csv_header = csv_header, csv_rows = csv_rows,
          title = "Table III: mean rank (1 = best) of each architecture's best loss network over the scores of each " ..
            "benchmark, and over the benchmarks weighted equally",
          note = "Architectures ranked per score: " .. table.concat(counts, ", ") .. "."}
end

-- Table IV: the best layer of each architecture per score; "*" marks the best architecture of the score.
function R.table_iv(best)
  local header = {"Architecture"}
  for _, id in ipairs(best.scores) do header[#header + 1] = analysis.score(id).label end
  local keep = {}
  for _, id in ipairs(best.scores) do for a in pairs(best.best[id]) do keep[a] = true end end
  local rows, csv_rows = {}, {}
  for _, a in ipairs(paper_rows(keep)) do
    if type(a) == "table" then rows[#rows + 1] = a else
      local row = {DISPLAY[a]}
      for _, id in ipairs(best.scores) do
        local b = best.best[id][a]
        row[#row + 1] = b and (b.layer .. (best.top[id][a] and "*" or "")) or "-"
        if b then
          csv_rows[#csv_rows + 1] = {id, DISPLAY[a], a, b.layer, b.value, best.top[id][a] and 1 or 0}
        end
      end
      rows[#rows + 1] = row
    end
  end
  return {name = "table_IV_best_layer", header = header, rows = rows,
          csv_header = {"score", "architecture", "arch", "best_layer", "value", "best_architecture"}, csv_rows = csv_rows,
          title = "Table IV: the extraction layer with the best score of each architecture (* the best architecture, " ..
            "all of them when tied)"}
end

-- Correlations of every score with ImageNet top-1 accuracy (Pearson r and Spearman rho with p-values), one row per
-- score and layer group (opts.groups: only these groups, e.g. {"best"}); the CSV holds every attribute.
function R.correlation_tables(corr, opts)
  local groups = {}
  for _, g in ipairs(opts and opts.groups or analysis.GROUPS) do groups[g] = true end
  local rows, csv_rows = {}, {}
  for _, c in ipairs(corr) do
    if c.attribute == "imagenet_top1" and groups[c.group] then
      rows[#rows + 1] = {analysis.score(c.score).label, c.group, c.n, fmt(c.pearson, 3), fmt_p(c.pearson_p),
                         fmt(c.spearman, 3), fmt_p(c.spearman_p)}
    end
    csv_rows[#csv_rows + 1] = {c.score, c.group, c.attribute, c.n, c.pearson, c.pearson_p, c.spearman, c.spearman_p}
  end
  local names = {}
  for _, a in ipairs(analysis.ATTRIBUTES) do names[#names + 1] = a.name end
  return {name = "correlations", header = {"Score", "Layers", "n", "Pearson r", "p", "Spearman rho", "p"}, rows = rows,
          csv_header = {"score", "layer_group", "attribute", "n", "pearson_r", "pearson_p", "spearman_rho", "spearman_p"},
          csv_rows = csv_rows,
          title = "Correlation of each score with ImageNet top-1 accuracy: over the architectures at one layer (E, S, " ..
            "M, L), at each architecture's best layer (best), and over every loss network (all)",
          note = "Two-sided p-values; \"-\" where fewer than 3 networks or a constant score. The CSV holds every " ..
            "attribute: " .. table.concat(names, ", ") .. "."}
end

-- the comparison with the paper: the summary per benchmark and every cell
function R.compare_tables(cmp)
  local rows, csv = {}, {}
  for _, s in ipairs(cmp.summary) do
    rows[#rows + 1] = {s.benchmark, s.tables ~= "" and s.tables or "-", s.cells,
                       s.unavailable and "paper: " .. s.unavailable or fmt(s.mad, 4), s.unavailable and "-" or fmt(s.max_abs, 4),
                       s.archs, fmt(s.spearman, 3), fmt_p(s.spearman_p)}
    csv[#csv + 1] = {s.benchmark, s.tables, s.cells, s.mad, s.max_abs, s.archs, s.spearman, s.spearman_p}
  end
  local summary = {name = "compare_paper_summary", header = {"Benchmark", "Tables", "Cells", "Mean |diff|",
                   "Max |diff|", "Archs", "Spearman (mean rank)", "p"}, rows = rows,
                   csv_header = {"benchmark", "tables", "cells", "mean_abs_diff", "max_abs_diff", "archs",
                                 "spearman_rank", "spearman_p"}, csv_rows = csv,
                   title = "Comparison with the paper, per benchmark",
                   note = "Differences are ours minus the paper's, in the paper's units (Table X: percent), against the " ..
                     "paper's rounded values. Spearman: the architectures' mean rank over the benchmark's scores, ours " ..
                     "against the paper's, both ranked over the cells we have."}
  local crow, ccsv = {}, {}
  for _, c in ipairs(cmp.cells) do
    crow[#crow + 1] = {c.table, analysis.score(c.score).label, DISPLAY[c.arch], c.layer, fmt(c.ours, c.digits + 1),
                       fmt(c.paper, c.digits), ("%+." .. (c.digits + 1) .. "f"):format(c.diff)}
    ccsv[#ccsv + 1] = {c.table, c.score, c.arch, c.layer, c.ours, c.paper, c.diff}
  end
  local cells = {name = "compare_paper", header = {"Table", "Score", "Architecture", "Layer", "Ours", "Paper", "Diff"},
                 rows = crow, csv_header = {"table", "score", "arch", "layer", "ours", "paper", "diff"}, csv_rows = ccsv,
                 title = "Comparison with the paper, every cell present in both"}
  return summary, cells
end

-- ---- renderers ----------------------------------------------------------------------------------------------------
function R.text(t)
  return t.title .. "\n" .. report.format_table(t.header, t.rows) .. (t.note and ("\n" .. t.note) or "")
end

function R.csv(t)
  local lines = {}
  local function line(cells)
    local out = {}
    for i = 1, #t.csv_header do
      local v = cells[i]
      out[i] = report.csv_cell(v == v and v or nil)   -- NaN (no correlation) as an empty cell
    end
    lines[#lines + 1] = table.concat(out, ",")
  end
  line(t.csv_header)
  for _, r in ipairs(t.csv_rows) do line(r) end
  return table.concat(lines, "\n") .. "\n"
end

local function md_cell(s) return (tostring(s == nil and "" or s):gsub("|", "\\|")) end

function R.markdown(t)
  local out = {"| " .. table.concat((function()
    local h = {}
    for i, c in ipairs(t.header) do h[i] = md_cell(c) end
    return h
  end)(), " | ") .. " |"}
  local rule = {}
  for i = 1, #t.header do rule[i] = i == 1 and "---" or "---:" end
  out[#out + 1] = "|" .. table.concat(rule, "|") .. "|"
  for _, r in ipairs(t.rows) do
    local cells = {}
    if #r == 1 and #t.header > 1 then
      cells[1] = "**" .. md_cell(r[1]) .. "**"
      for i = 2, #t.header do cells[i] = "" end
    else
      for i = 1, #t.header do cells[i] = md_cell(r[i]) end
    end
    out[#out + 1] = "| " .. table.concat(cells, " | ") .. " |"
  end
  return table.concat(out, "\n")
end

local function esc(s)
  return (tostring(s == nil and "" or s):gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;"):gsub('"', "&quot;"))
end
R.html_escape = esc

function R.html(t)
  local out = {"<table>", "<tr>"}
  for _, c in ipairs(t.header) do out[#out + 1] = "<th>" .. esc(c) .. "</th>" end
  out[#out + 1] = "</tr>"
  for _, r in ipairs(t.rows) do
    if #r == 1 and #t.header > 1 then
      out[#out + 1] = ('<tr class="group"><td colspan="%d">%s</td></tr>'):format(#t.header, esc(r[1]))
    else
      local cells = {}
      for i = 1, #t.header do cells[i] = "<td>" .. esc(r[i]) .. "</td>" end
      out[#out + 1] = "<tr>" .. table.concat(cells) .. "</tr>"
    end
  end
  out[#out + 1] = "</table>"
  return table.concat(out, "\n")
end

-- ---- figures (gnuplot) --------------------------------------------------------------------------------------------
local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function gp_quote(s) return '"' .. tostring(s):gsub('\\', '\\\\'):gsub('"', '\\"'):gsub("\n", "\\n") .. '"' end
R.gp_quote = gp_quote   -- a gnuplot string literal
local function file_name(id) return (id:gsub("[^%w%.%-]", "_")) end

-- whether gnuplot is on PATH (figures are skipped without it, with a note)
function R.have_gnuplot()
  return os.execute("command -v gnuplot >/dev/null 2>&1") == 0
end

local function write(path, text)
  local f, err = io.open(path, "w")
  if not f then error(("cannot write %s: %s"):format(path, tostring(err)), 0) end
  f:write(text)
  f:close()
end
R.write_file = write

-- Writes the figures' data files and gnuplot scripts under dir and runs gnuplot once per terminal (pngcairo, svg).
-- Returns the list of figures {name =, title =} (files dir/<name>.png and .svg), or nil and a reason.
function R.figures(data, rk, attrs, corr, dir)
  local figs, plots = {}, {}
  local top1_corr = {}
  for _, c in ipairs(corr or {}) do
    if c.attribute == "imagenet_top1" and c.group == "best" then top1_corr[c.score] = c end
  end
  for _, id in ipairs(analysis.present_scores(data)) do
    local s = analysis.score(id)
    local values = data.values[id]
    -- Fig. 2 style: the score at each layer, one line per architecture
    local archs = {}
    for _, a in ipairs(analysis.ARCHS) do if values[a] and next(values[a]) then archs[#archs + 1] = a end end
    local name = "layers_" .. file_name(id)
    local lines = {"layer"}
    for _, a in ipairs(archs) do lines[1] = lines[1] .. " " .. gp_quote(DISPLAY[a]) end
    for k, l in ipairs(LAYERS) do
      local row = {tostring(k)}
      for _, a in ipairs(archs) do row[#row + 1] = values[a][l] and ("%.10g"):format(values[a][l]) or "NaN" end
      lines[#lines + 1] = table.concat(row, " ")
    end
    write(dir .. "/" .. name .. ".dat", table.concat(lines, "\n") .. "\n")
    plots[#plots + 1] = table.concat({
      ("set output '%s.%%EXT%%'"):format(name),
      ("set title %s"):format(gp_quote(s.label .. " by extraction layer")),
      "set key outside right top", "set xrange [0.7:4.3]", 'set xtics ("E" 1, "S" 2, "M" 3, "L" 4)',
      "set xlabel 'extraction layer'", ("set ylabel %s"):format(gp_quote(s.label)), "set autoscale y",
      ("plot for [c=2:%d] '%s.dat' using 1:c with linespoints lw 1.5 title columnheader(c)"):format(#archs + 1, name),
      "unset xlabel", "unset ylabel", "set xtics autofreq", "set autoscale x"}, "\n")
    figs[#figs + 1] = {name = name, title = s.label .. " by extraction layer (one line per architecture)"}
    -- score of the best layer against ImageNet top-1
    local best = analysis.best(values)
    local pts = {}
    for _, a in ipairs(analysis.ARCHS) do
      if best[a] and attrs[a] and attrs[a].top1 then
        pts[#pts + 1] = ("%.10g %.10g %s"):format(attrs[a].top1, best[a].value, gp_quote(DISPLAY[a] .. " " .. best[a].layer))
      end
    end
    if #pts > 0 then
      local c = top1_corr[id]
      local sub = c and c.n >= 3 and ("Pearson r = %s (p = %s), Spearman rho = %s (p = %s)"):format(fmt(c.pearson, 2),
        fmt_p(c.pearson_p), fmt(c.spearman, 2), fmt_p(c.spearman_p)) or "fewer than 3 architectures"
      local tname = "top1_" .. file_name(id)
      write(dir .. "/" .. tname .. ".dat", table.concat(pts, "\n") .. "\n")
      plots[#plots + 1] = table.concat({
        ("set output '%s.%%EXT%%'"):format(tname),
        ("set title %s"):format(gp_quote(s.label .. " (best layer) vs ImageNet top-1\n" .. sub)),
        "set key off", "set xlabel 'ImageNet top-1 accuracy (%)'", ("set ylabel %s"):format(gp_quote(s.label)),
        "set offsets graph 0.05, graph 0.15, graph 0.08, graph 0.08",
        ("plot '%s.dat' using 1:2 with points pt 7 ps 1.2, '' using 1:2:3 with labels offset char 0,0.9 font ',8'")
          :format(tname),
        "set offsets 0, 0, 0, 0", "unset xlabel", "unset ylabel", "set key default"}, "\n")
      figs[#figs + 1] = {name = tname, title = s.label .. " of each architecture's best layer against its ImageNet " ..
        "top-1 accuracy (" .. sub .. ")"}
    end
  end
  -- the rank heat map (Table III's per-score ranks)
  if rk and #rk.scores > 0 and #rk.order > 0 then
    local archs = {}
    for _, a in ipairs(analysis.ARCHS) do if rk.overall[a] then archs[#archs + 1] = a end end
    local lines = {}
    for _, a in ipairs(archs) do
      local row = {}
      for _, id in ipairs(rk.scores) do row[#row + 1] = rk.rank[id][a] and ("%g"):format(rk.rank[id][a]) or "NaN" end
      lines[#lines + 1] = table.concat(row, " ")
    end
    write(dir .. "/ranks.dat", table.concat(lines, "\n") .. "\n")
    local xt, yt = {}, {}
    for i, id in ipairs(rk.scores) do xt[#xt + 1] = ("%s %d"):format(gp_quote(analysis.score(id).label), i - 1) end
    for i, a in ipairs(archs) do yt[#yt + 1] = ("%s %d"):format(gp_quote(DISPLAY[a]), i - 1) end
    local nmax = 1
    for _, id in ipairs(rk.scores) do nmax = math.max(nmax, rk.n[id]) end
    plots[#plots + 1] = table.concat({
      "set output 'ranks.%EXT%'", "set title 'Rank of each architecture (best layer) per score: 1 = best'",
      "set key off", ("set xtics (%s) rotate by 45 right"):format(table.concat(xt, ", ")),
      ("set ytics (%s)"):format(table.concat(yt, ", ")), "set yrange [] reverse",
      ('set palette defined (0 "#1a9850", 0.5 "#ffffbf", 1 "#d73027")'), ("set cbrange [1:%d]"):format(math.max(2, nmax)),
      ("set xrange [-0.5:%g]"):format(#rk.scores - 0.5), ("set yrange [%g:-0.5]"):format(#archs - 0.5),
      "plot 'ranks.dat' matrix with image, '' matrix using 1:2:(sprintf('%g', $3)) with labels font ',8'",
      "set xtics autofreq norotate", "set ytics autofreq", "set autoscale x", "set autoscale y", "unset cbrange"}, "\n")
    figs[#figs + 1] = {name = "ranks", title = "Rank heat map: every architecture's rank per score (Table III before averaging)"}
  end
  if #plots == 0 then return figs end
  if not R.have_gnuplot() then
    return nil, "gnuplot is not installed (Debian: apt-get install gnuplot-nox); figures skipped, their data files are in " .. dir
  end
  local script = table.concat(plots, "\n\n")
  for _, term in ipairs {{"png", "set terminal pngcairo size 1000,650 noenhanced font ',10'"},
                         {"svg", "set terminal svg size 1000,650 noenhanced font 'sans,10' background '#ffffff'"}} do
    local gp = "plots_" .. term[1] .. ".gp"
    write(dir .. "/" .. gp, "# written by experiments/analysis.lua; rerun with: gnuplot " .. gp .. "\n" ..
      "set datafile missing 'NaN'\nset grid\n" .. term[2] .. "\n" .. script:gsub("%%EXT%%", term[1]) .. "\n")
    local err = R.gnuplot(dir, gp)
    if err then return nil, err end
  end
  return figs
end

-- Runs gnuplot on script (a file in dir, run from dir): nil when it succeeded, else "gnuplot failed on FILE: its
-- messages" (LuaJIT's popen close does not return the exit status: the shell prints it).
function R.gnuplot(dir, script)
  local p = io.popen(("cd %s && gnuplot %s 2>&1; echo \"rc=$?\""):format(sh_quote(dir), sh_quote(script)))
  local out = p:read("*a")
  p:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  if rc == 0 then return nil end
  local msg = out:gsub("rc=%d+%s*$", ""):gsub("\n+$", ""):gsub("\n", " | ")
  return ("gnuplot failed on %s/%s: %s"):format(dir, script, msg)
end

-- ---- index.md / index.html ----------------------------------------------------------------------------------------
-- sections: list of {title =, text = (paragraph), table = t (linked CSV tables/<name>.csv), figures = {...}}
function R.index(out, meta, sections)
  local md = {"# dpl analysis", ""}
  local html = {"<!DOCTYPE html>", '<html><head><meta charset="utf-8"><title>dpl analysis</title>',
                "<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}" ..
                "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;" ..
                "text-align:right}td:first-child,th:first-child{text-align:left}tr.group td{font-weight:bold;" ..
                "text-align:left;background:#eee}img{max-width:100%}</style></head><body>", "<h1>dpl analysis</h1>"}
  for _, line in ipairs(meta) do
    md[#md + 1] = "- " .. line
    html[#html + 1] = "<p>" .. esc(line) .. "</p>"
  end
  md[#md + 1] = ""
  md[#md + 1] = "Contents: " .. (function()
    local c = {}
    for i, s in ipairs(sections) do c[#c + 1] = ("[%s](#s%d)"):format(s.short or s.title:match("^Table %u+") or s.title, i) end
    return table.concat(c, " · ")
  end)()
  for i, s in ipairs(sections) do
    md[#md + 1] = ""
    md[#md + 1] = ('<a id="s%d"></a>'):format(i)
    md[#md + 1] = ""
    md[#md + 1] = "## " .. s.title
    html[#html + 1] = ('<h2 id="s%d">%s</h2>'):format(i, esc(s.title))
    if s.text then
      md[#md + 1] = ""
      md[#md + 1] = s.text
      html[#html + 1] = "<p>" .. esc(s.text) .. "</p>"
    end
    if s.table then
      md[#md + 1] = ""
      md[#md + 1] = R.markdown(s.table)
      md[#md + 1] = ""
      md[#md + 1] = ("CSV: [tables/%s.csv](tables/%s.csv)%s"):format(s.table.name, s.table.name,
        s.table.note and (". " .. s.table.note) or "")
      html[#html + 1] = R.html(s.table)
      html[#html + 1] = ('<p>CSV: <a href="tables/%s.csv">tables/%s.csv</a>%s</p>'):format(s.table.name, s.table.name,
        s.table.note and (". " .. esc(s.table.note)) or "")
    end
    for _, f in ipairs(s.figures or {}) do   -- f.svg == false: a PNG only (the example strips)
      md[#md + 1] = ""
      md[#md + 1] = ("![%s](figures/%s.png)"):format(f.title, f.name)
      md[#md + 1] = ""
      md[#md + 1] = ("%s ([PNG](figures/%s.png)%s)"):format(f.title, f.name,
        f.svg == false and "" or (", [SVG](figures/%s.svg)"):format(f.name))
      html[#html + 1] = ('<figure><img src="figures/%s.png" alt="%s"><figcaption>%s (<a href="figures/%s.png">PNG</a>%s)' ..
        '</figcaption></figure>'):format(f.name, esc(f.title), esc(f.title), f.name,
        f.svg == false and "" or (', <a href="figures/%s.svg">SVG</a>'):format(f.name))
    end
  end
  html[#html + 1] = "</body></html>"
  write(out .. "/index.md", table.concat(md, "\n") .. "\n")
  write(out .. "/index.html", table.concat(html, "\n") .. "\n")
end

return R

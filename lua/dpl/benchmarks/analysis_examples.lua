-- dpl.benchmarks.analysis_examples: the example outputs of the super-resolution and road delineation cells - where
-- the sweep saves them (experiments/sweep.lua --save-examples N) and the strip the analysis draws of them per
-- benchmark (experiments/analysis.lua; docs/analysis.md, "Example outputs").
--
-- A cell's outputs are in <examples>/<experiment>/<first 16 hex digits of its configuration hash>/ (by default
-- <examples> is examples/ beside the results store), so the analysis finds the outputs of exactly the run it reads,
-- whichever process or SLURM task computed it. The files are the benchmark's own --save files:
--   superres:    <set>/<stem>.png (the output), <stem>_hr.png (ground truth), <stem>_lr.png (the input)
--   delineation: <stem>_k<k>.png (the map of iteration k; the last one is shown), <stem>_image.png, <stem>_gt.png
-- A strip is one PNG: a column per test image, a row for the input, one for the ground truth and one per loss network
-- (labelled architecture, layer and the benchmark's main score), best first; with more than MAX_CELLS cells with
-- outputs, the best and the worst half of MAX_CELLS. gnuplot composes it (pngcairo, `with rgbimage` in multiplot,
-- reading the PNGs itself: no pixels pass through Lua).
local analysis = require "dpl.benchmarks.analysis"
local R = require "dpl.benchmarks.analysis_report"
local report = require "dpl.benchmarks.report"
local files = require "dpl.data.files"

local M = {}

M.MAX_IMAGES = 4    -- columns: the first test images (sorted by name)
M.MAX_CELLS = 6     -- loss-network rows: all of them up to this, else the best and the worst MAX_CELLS / 2
-- the layout in pixels: a square tile per image, a label column on the left, a title and column names on top
M.TILE, M.LABEL_W, M.HEAD_H, M.PAD = 160, 200, 56, 3
M.MIN_COLUMNS = 2   -- the canvas is at least this many tiles wide (room for the title)

-- The folder of one cell's example outputs.
function M.cell_dir(root, experiment, hash)
  return ("%s/%s/%s"):format(root, experiment, hash:sub(1, 16))
end

-- Width and height of a PNG file from its header, or nil when it is not a readable PNG.
function M.png_size(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local head = f:read(24)
  f:close()
  if not head or #head < 24 or head:sub(1, 8) ~= "\137PNG\r\n\26\n" or head:sub(13, 16) ~= "IHDR" then return nil end
  local function u32(i)
    local a, b, c, d = head:byte(i, i + 3)
    return ((a * 256 + b) * 256 + c) * 256 + d
  end
  return u32(17), u32(21)
end

-- What each benchmark saves: the folder of its images inside a cell folder, and per stem the output, ground truth and
-- input file names. stems(dir) lists the stems that have an output.
local function superres_layout(cell)
  local found, sets = files.list(cell)
  if not found then return nil end
  local order, rank = {}, {Set5 = 1, Set14 = 2, BSD100 = 3}
  for _, s in ipairs(sets) do order[#order + 1] = s end
  table.sort(order, function(a, b)
    local ra, rb = rank[a] or 4, rank[b] or 4
    if ra ~= rb then return ra < rb end
    return a < b
  end)
  return order[1] and (cell .. "/" .. order[1]), order[1]
end

M.KINDS = {
  superres = {
    folder = superres_layout,
    output = function(stem) return stem .. ".png" end,
    stems = function(names)
      local out = {}
      for _, n in ipairs(names) do
        local stem = n:match("^(.*)%.png$")
        if stem and not stem:match("_hr$") and not stem:match("_lr$") then out[#out + 1] = stem end
      end
      return out
    end,
    input = {"input (LR)", "_lr.png"}, truth = {"ground truth (HR)", "_hr.png"},
  },
  delineation = {
    folder = function(cell) return cell, nil end,
    stems = function(names)
      local out, seen = {}, {}
      for _, n in ipairs(names) do
        local stem = n:match("^(.*)_k%d+%.png$")
        if stem and not seen[stem] then seen[stem] = true; out[#out + 1] = stem end
      end
      return out
    end,
    -- the map of the last iteration present
    output = function(stem, names)
      local best, kbest = nil, -1
      for _, n in ipairs(names) do
        local s, k = n:match("^(.*)_k(%d+)%.png$")
        if s == stem and tonumber(k) > kbest then best, kbest = n, tonumber(k) end
      end
      return best
    end,
    input = {"input (aerial image)", "_image.png"}, truth = {"ground truth (roads)", "_gt.png"},
  },
}


-- The cells of benchmark b with saved outputs, best first by its main score: {{arch, layer, value, dir, names, rank}},
-- the number of cells the store has, and notes (unreadable files).
local function cells_with_outputs(data, b, root, kind)
  local main = b.id .. "/" .. (b.main or b.scores[1].id)
  local values = data.values[main] or {}
  local all = {}
  for arch, layers in pairs(data.hashes and data.hashes[b.id] or {}) do
    for layer, hash in pairs(layers) do
      all[#all + 1] = {arch = arch, layer = layer, hash = hash, value = values[arch] and values[arch][layer]}
    end
  end
  local order = {}
  for i, a in ipairs(analysis.ARCHS) do order[a] = i end
  local lorder = {}
  for i, l in ipairs(analysis.LAYERS) do lorder[l] = i end
  table.sort(all, function(x, y)   -- best first; cells without the main score last; then the paper's order
    if (x.value ~= nil) ~= (y.value ~= nil) then return x.value ~= nil end
    if x.value and x.value ~= y.value then return x.value > y.value end
    if x.arch ~= y.arch then return (order[x.arch] or 99) < (order[y.arch] or 99) end
    return (lorder[x.layer] or 9) < (lorder[y.layer] or 9)
  end)
  local with = {}
  for i, c in ipairs(all) do
    c.rank = c.value and i or nil
    local dir, set = kind.folder(M.cell_dir(root, b.experiment, c.hash))
    local names = dir and files.list(dir)
    if names and #kind.stems(names) > 0 then
      c.dir, c.set, c.names = dir, set, names
      with[#with + 1] = c
    end
  end
  return with, #all, main
end

-- which cells get a row: all up to MAX_CELLS, else the best and the worst MAX_CELLS / 2 (in rank order)
local function choose(cells)
  if #cells <= M.MAX_CELLS then return cells, false end
  local half, out = math.floor(M.MAX_CELLS / 2), {}
  for i = 1, half do out[#out + 1] = cells[i] end
  for i = #cells - (M.MAX_CELLS - half) + 1, #cells do out[#out + 1] = cells[i] end
  return out, true
end

-- The strip of one benchmark: writes dir/<name>.gp and runs gnuplot on it. Returns the figure {name =, title =,
-- rows =, columns =, width =, height =, svg = false} or nil, and a note (why there is no strip, or which cells have
-- outputs).
function M.strip(data, b, opts)
  local kind = M.KINDS[b.experiment]
  if not kind then return nil end
  local cells, n_store, main = cells_with_outputs(data, b, opts.root, kind)
  if n_store == 0 then return nil end
  if #cells == 0 then
    return nil, ("%s: no saved outputs of its %d cell(s) under %s (run the sweep with --save-examples N to save " ..
      "them; docs/analysis.md)"):format(b.id, n_store, opts.root)
  end
  local shown, sampled = choose(cells)
  -- the test images: the first MAX_IMAGES stems with an output in a shown cell (of its first set for superres)
  local set = shown[1].set
  local stem_set = {}
  for _, c in ipairs(shown) do
    if c.set == set then for _, s in ipairs(kind.stems(c.names)) do stem_set[s] = true end end
  end
  local stems = {}
  for s in pairs(stem_set) do stems[#stems + 1] = s end
  table.sort(stems)
  while #stems > M.MAX_IMAGES do table.remove(stems) end
  -- the rows: input and ground truth (from the first shown cell that has them), then one per shown cell
  local unreadable = {}
  local function png(path)
    if not path then return nil end
    local w, h = M.png_size(path)
    -- absolute: gnuplot runs in the figures folder, and the script stays rerunnable from there
    if w then return {path = require("dpl.download").absolute(path), w = w, h = h} end
    if files.exists(path) then unreadable[#unreadable + 1] = path end
    return nil
  end
  local rows = {}
  for _, special in ipairs {kind.input, kind.truth} do
    local row = {label = special[1], tiles = {}}
    local any = false
    for j, stem in ipairs(stems) do
      for _, c in ipairs(shown) do
        if c.set == set then
          local t = png(c.dir .. "/" .. stem .. special[2])
          if t then row.tiles[j], any = t, true; break end
        end
      end
    end
    if any then rows[#rows + 1] = row end
  end
  local s = analysis.score(main)
  for _, c in ipairs(shown) do
    local label = ("%s%s %s\n%s %s"):format(c.rank and (c.rank .. ". ") or "", report.DISPLAY[c.arch] or c.arch,
      c.layer, s.label, c.value and ("%." .. (s.digits + 1) .. "f"):format(c.value) or "-")
    local row = {label = label, tiles = {}}
    for j, stem in ipairs(stems) do
      if c.set == set then
        local f = kind.output(stem, c.names)
        row.tiles[j] = png(f and (c.dir .. "/" .. f))
      end
    end
    rows[#rows + 1] = row
  end

  -- the gnuplot script: labels drawn by an empty full-canvas plot, then one plot per tile (aspect kept, centred)
  local T, LW, HH, P = M.TILE, M.LABEL_W, M.HEAD_H, M.PAD
  local W, H = LW + math.max(#stems, M.MIN_COLUMNS) * T, HH + #rows * T
  local name = "examples_" .. b.id
  local title = ("%s%s\nby %s, best first%s"):format(b.title, set and (" on " .. set) or "", s.label, sampled and
    (" (best %d, worst %d of %d)"):format(math.floor(M.MAX_CELLS / 2), M.MAX_CELLS - math.floor(M.MAX_CELLS / 2),
      #cells) or "")
  local gp = {"# written by experiments/analysis.lua; rerun with: gnuplot " .. name .. ".gp",
    ("set terminal pngcairo size %d,%d noenhanced font ',9' background '#ffffff'"):format(W, H),
    ("set output '%s.png'"):format(name),
    "set multiplot", "unset border", "unset tics", "unset key", "unset colorbox",
    "set lmargin 0", "set rmargin 0", "set tmargin 0", "set bmargin 0",
    ("set label %s at screen 0.5, screen %.6f center"):format(R.gp_quote(title), 1 - 12 / H)}
  local function sx(px) return ("%.6f"):format(px / W) end
  local function sy(px) return ("%.6f"):format(1 - px / H) end   -- px from the top
  for j, stem in ipairs(stems) do
    gp[#gp + 1] = ("set label %s at screen %s, screen %s center"):format(R.gp_quote(stem), sx(LW + (j - 0.5) * T),
      sy(HH - 9))
  end
  for i, row in ipairs(rows) do
    gp[#gp + 1] = ("set label %s at screen %s, screen %s right"):format(R.gp_quote(row.label), sx(LW - 8),
      sy(HH + (i - 0.5) * T))
    for j = 1, #stems do
      if not row.tiles[j] then
        gp[#gp + 1] = ("set label 'no output' at screen %s, screen %s center textcolor '#888888'"):format(
          sx(LW + (j - 0.5) * T), sy(HH + (i - 0.5) * T))
      end
    end
  end
  gp[#gp + 1] = "set origin 0, 0"
  gp[#gp + 1] = "set size 1, 1"
  gp[#gp + 1] = "plot [0:1] [0:1] NaN notitle"
  gp[#gp + 1] = "unset label"
  gp[#gp + 1] = "set size ratio -1"
  for i, row in ipairs(rows) do
    for j = 1, #stems do
      local t = row.tiles[j]
      if t then
        -- big images (delineation tiles) are read every k-th pixel: the tile shows at most 2 x TILE of them
        local k = math.max(1, math.floor(math.max(t.w, t.h) / (2 * T)))
        gp[#gp + 1] = ("set origin %s, %s"):format(sx(LW + (j - 1) * T + P), sy(HH + i * T - P))
        gp[#gp + 1] = ("set size %.6f, %.6f"):format((T - 2 * P) / W, (T - 2 * P) / H)
        gp[#gp + 1] = ("plot %s binary filetype=png%s with rgbimage"):format(R.gp_quote(t.path),
          k > 1 and (" every %d:%d"):format(k, k) or "")
      end
    end
  end
  gp[#gp + 1] = "unset multiplot"
  local script = opts.dir .. "/" .. name .. ".gp"
  local f = io.open(script, "w")
  if not f then return nil, ("%s: cannot write %s"):format(b.id, script) end
  f:write(table.concat(gp, "\n"), "\n")
  f:close()
  local err = R.gnuplot(opts.dir, name .. ".gp")
  if err then return nil, b.id .. ": " .. err end
  local note = ("%s: %d of its %d cell(s) have saved outputs%s"):format(b.id, #cells, n_store,
    sampled and (", the best and the worst are shown") or "")
  if #unreadable > 0 then
    note = note .. ("; not a readable PNG (shown as no output): %s"):format(table.concat(unreadable, ", "))
  end
  return {name = name, svg = false, rows = #rows, columns = #stems, width = W, height = H,
          title = ("%s: example outputs%s (rows: %s; loss networks best first by %s)"):format(b.title,
            set and (" on " .. set) or "", #rows > #shown and "input, ground truth, one per loss network" or
            "one per loss network", s.label)}, note
end

-- The strips of every benchmark of data that saves outputs. opts: root (the examples folder), dir (the figures
-- folder). Returns the figures and the notes (one line per benchmark: what was found, or why there is no strip).
function M.strips(data, opts)
  local figs, notes = {}, {}
  for _, b in ipairs(data.benchmarks or {}) do
    local fig, note = M.strip(data, b, opts)
    if fig then figs[#figs + 1] = fig end
    if note then notes[#notes + 1] = note end
  end
  return figs, notes
end

return M

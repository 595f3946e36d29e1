-- dpl.bapps: the data side of Benchmark 1 for experiments/bapps.lua - which BAPPS val subsets a folder holds, batches
-- of preprocessed patches through the dataset iterator (dpl.data.bapps, dpl.data.dataset), and the scores
-- (dpl.metrics.bapps). spec/benchmarks.md 1.1, 1.2, 1.4.
--
--   local bapps = require "dpl.bapps"
--   local data = bapps.open("data/BAPPS", {subsets = {"cnn"}, limit = 100})
--   for _, s in ipairs(data.subsets_2afc) do
--     local d0, d1, judge = data:distances("2afc", s, 64, function(batch) ... return {d0_list, d1_list} end)
--     print(s, bapps.score_2afc(d0, d1, judge))
--   end
local dataset = require "dpl.data.dataset"
local data_bapps = require "dpl.data.bapps"
local files = require "dpl.data.files"
local metrics = require "dpl.metrics.bapps"

local M = {}

M.SUBSETS_2AFC = data_bapps.TWOAFC_SUBSETS
M.SUBSETS_JND = data_bapps.JND_SUBSETS
M.SIZE = 64
M.score_2afc = metrics.score_2afc
M.jnd_map = metrics.jnd_map
M.jnd_map_pooled = metrics.jnd_map_pooled

function M.default_dir() return files.data_root() .. "/BAPPS" end

-- spec 1.2 up to ToTensor: PIL Resize((64, 64)) (bilinear, on the 8-bit image; BAPPS patches are already 64 x 64, so
-- it is skipped for them). The ImageNet or LPIPS normalisation is done by dpl.perceptual on the device.
local function resize64(sample)
  for _, k in ipairs {"ref", "p0", "p1"} do
    local x = sample[k]
    if x and (x:size(2) ~= M.SIZE or x:size(3) ~= M.SIZE) then
      sample[k] = require("dpl.transforms").resize(x, {M.SIZE, M.SIZE}, {interpolation = "bilinear"})
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
    for _, v in ipairs(b[label]:tolist()) do labels[#labels + 1] = v end
  end
  if kind == "2afc" then return outs[1], outs[2], labels end
  return outs[1], labels
end

return M

-- dpl.bapps: the BAPPS side of Benchmark 1 for experiments/bapps.lua - the val trees, batches of preprocessed
-- patches, and the scores (spec/benchmarks.md 1.1, 1.2, 1.4).
--
--   local bapps = require "dpl.bapps"
--   local data = bapps.open("data/BAPPS", {subsets = {"cnn"}, limit = 100})
--   for _, s in ipairs(data.subsets_2afc) do
--     local d0, d1, judge = data:distances("2afc", s, 64, function(batch) ... return {d0_list, d1_list} end)
--     print(s, bapps.score_2afc(d0, d1, judge))
--   end
--
-- Layout (LPIPS's tarballs): DIR/2afc/val/<subset>/{ref,p0,p1}/<stem>.png + judge/<stem>.npy and
-- DIR/jnd/val/<subset>/{p0,p1}/<stem>.png + same/<stem>.npy; files are paired by stem. The reference
-- implementation's own layout (DIR/val/<subset>, DIR/jnd/val/<subset>) is accepted too.
local ffi = require "ffi"
local dpl = require "dpl"

local M = {}

M.SUBSETS_2AFC = {"traditional", "cnn", "superres", "deblur", "color", "frameinterp"}
M.SUBSETS_JND = {"traditional", "cnn"}
M.SIZE = 64

-- ---- directories --------------------------------------------------------------------------------------------------
-- glibc's struct dirent has this layout on every 64-bit Linux
pcall(ffi.cdef, [[
typedef struct DIR DIR;
struct dpl_dirent { uint64_t d_ino; int64_t d_off; unsigned short d_reclen; unsigned char d_type; char d_name[256]; };
DIR *opendir(const char *name);
struct dpl_dirent *readdir(DIR *dirp);
int closedir(DIR *dirp);
]])

local function is_dir(path)
  local d = ffi.C.opendir(path)
  if d == nil then return false end
  ffi.C.closedir(d)
  return true
end
M.is_dir = is_dir

-- sorted stems of the files in `dir` ending in `ext`
local function stems(dir, ext)
  local d = ffi.C.opendir(dir)
  if d == nil then error(("BAPPS: cannot read the folder %s"):format(dir), 0) end
  local out = {}
  while true do
    local e = ffi.C.readdir(d)
    if e == nil then break end
    local name = ffi.string(e.d_name)
    local stem = name:sub(-#ext - 1) == "." .. ext and name:sub(1, -#ext - 2) or nil
    if stem and stem ~= "" then out[#out + 1] = stem end
  end
  ffi.C.closedir(d)
  table.sort(out)
  return out
end

-- the stems present in every one of `folders` (png) and `labels` (npy) under dir; a file without its partners is
-- an error naming it
local function paired(dir, folders, label)
  local lists = {}
  for _, f in ipairs(folders) do lists[#lists + 1] = {f, stems(dir .. "/" .. f, "png")} end
  lists[#lists + 1] = {label, stems(dir .. "/" .. label, "npy")}
  local base = lists[1][2]
  for _, l in ipairs(lists) do
    local set = {}
    for _, s in ipairs(l[2]) do set[s] = true end
    for _, s in ipairs(base) do
      if not set[s] then error(("BAPPS: %s/%s/%s has no partner %s/%s/%s.%s"):format(dir, lists[1][1], s, dir, l[1], s,
        l[1] == label and "npy" or "png"), 0) end
    end
    if #l[2] ~= #base then
      error(("BAPPS: %s: %s holds %d files but %s holds %d"):format(dir, l[1], #l[2], lists[1][1], #base), 0)
    end
  end
  return base
end

-- ---- the data -----------------------------------------------------------------------------------------------------
local Data = {}
Data.__index = Data

-- opts.subsets: names to keep (2AFC and JND alike); opts.limit: at most this many items per subset
function M.open(dir, opts)
  opts = opts or {}
  if not is_dir(dir) then error(("no BAPPS folder at %s"):format(dir), 0) end
  local root2 = is_dir(dir .. "/2afc/val") and dir .. "/2afc/val" or (is_dir(dir .. "/val") and dir .. "/val" or nil)
  local rootj = is_dir(dir .. "/jnd/val") and dir .. "/jnd/val" or nil
  if not root2 and not rootj then
    error(("%s holds neither 2afc/val nor jnd/val"):format(dir), 0)
  end
  local keep
  if opts.subsets then
    keep = {}
    local known = {}
    for _, s in ipairs(M.SUBSETS_2AFC) do known[s] = true end
    for _, s in ipairs(opts.subsets) do
      if not known[s] then error(("unknown BAPPS subset '%s' (%s)"):format(s, table.concat(M.SUBSETS_2AFC, ", ")), 0) end
      keep[s] = true
    end
  end
  local self = setmetatable({dir = dir, items = {["2afc"] = {}, jnd = {}}, subsets_2afc = {}, subsets_jnd = {},
                             limit = opts.limit}, Data)
  local function scan(kind, root, names, folders, label, list)
    if not root then return end
    for _, s in ipairs(names) do
      local d = root .. "/" .. s
      if (not keep or keep[s]) and is_dir(d) then
        local st = paired(d, folders, label)
        if opts.limit and #st > opts.limit then for i = #st, opts.limit + 1, -1 do st[i] = nil end end
        if #st > 0 then
          self.items[kind][s] = {dir = d, stems = st}
          list[#list + 1] = s
        end
      end
    end
  end
  scan("2afc", root2, M.SUBSETS_2AFC, {"ref", "p0", "p1"}, "judge", self.subsets_2afc)
  scan("jnd", rootj, M.SUBSETS_JND, {"p0", "p1"}, "same", self.subsets_jnd)
  if #self.subsets_2afc + #self.subsets_jnd == 0 then
    error(("%s holds no BAPPS val subset%s"):format(dir, keep and " among those selected" or ""), 0)
  end
  return self
end

function Data:count(kind, subset) return #self.items[kind][subset].stems end

-- patches the benchmark reads per loss network (3 per triplet, 2 per pair)
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

-- one patch, preprocessed as spec 1.2 up to ToTensor: RGB, 64 x 64 (Pillow bilinear resize if it is not), [0,1]
local function load_patch(path, device)
  local image = require "dpl.image"
  local x = image.load(path, {mode = "RGB", device = device})
  if x:size(2) ~= M.SIZE or x:size(3) ~= M.SIZE then
    x = image.resize(x, {M.SIZE, M.SIZE}, {filter = "bilinear"})
  end
  return x
end

local function scalar_npy(path)
  local t = dpl.load_npy(path, {device = "cpu"})
  if t:numel() ~= 1 then error(("BAPPS: %s holds %d values, expected 1"):format(path, t:numel()), 0) end
  return t:reshape(1):item()
end

-- Runs fn over the subset in batches of `batch` items. fn(list of N x 3 x 64 x 64 tensors: ref, p0, p1 for 2AFC or
-- p0, p1 for JND) returns a list of distance lists (d0 and d1 for 2AFC, d for JND). Returns d0, d1, judge (2AFC) or
-- d, same (JND) as Lua lists in stem order.
function Data:distances(kind, subset, batch, fn, device)
  local item = self.items[kind][subset]
  if not item then error(("BAPPS: no %s subset %s in %s"):format(kind, subset, self.dir), 2) end
  local folders = kind == "2afc" and {"ref", "p0", "p1"} or {"p0", "p1"}
  local label = kind == "2afc" and "judge" or "same"
  local outs, labels = {}, {}
  local st = item.stems
  for first = 1, #st, batch do
    local last = math.min(first + batch - 1, #st)
    local tensors = {}
    for k, f in ipairs(folders) do
      local imgs = {}
      for i = first, last do imgs[#imgs + 1] = load_patch(("%s/%s/%s.png"):format(item.dir, f, st[i]), device) end
      tensors[k] = dpl.stack and dpl.stack(imgs, 1) or dpl.cat((function()
        local u = {}
        for i, x in ipairs(imgs) do u[i] = x:unsqueeze(1) end
        return u
      end)(), 1)
    end
    local d = fn(tensors)
    for k, list in ipairs(d) do
      outs[k] = outs[k] or {}
      for _, v in ipairs(list) do outs[k][#outs[k] + 1] = v end
    end
    for i = first, last do labels[#labels + 1] = scalar_npy(("%s/%s/%s.npy"):format(item.dir, label, st[i])) end
  end
  if kind == "2afc" then return outs[1], outs[2], labels end
  return outs[1], labels
end

-- ---- scores (spec 1.4) ------------------------------------------------------------------------------------------
-- 2AFC: mean over triplets of (1 - h) where d0 < d1, h where d1 < d0, 0.5 on ties
function M.score_2afc(d0, d1, h)
  if #d0 ~= #d1 or #d0 ~= #h then error("score_2afc: d0, d1 and h must have the same length", 2) end
  if #d0 == 0 then error("score_2afc: no triplets", 2) end
  local s = 0
  for i = 1, #d0 do
    if d0[i] < d1[i] then s = s + (1 - h[i]) elseif d1[i] < d0[i] then s = s + h[i] else s = s + 0.5 end
  end
  return s / #d0
end

-- JND mAP: pairs sorted by ascending distance, `same` as soft labels, VOC "correct" AP (LPIPS voc_ap)
function M.jnd_map(d, same)
  if #d ~= #same then error("jnd_map: d and same must have the same length", 2) end
  if #d == 0 then error("jnd_map: no pairs", 2) end
  local order = {}
  for i = 1, #d do order[i] = i end
  table.sort(order, function(a, b) if d[a] ~= d[b] then return d[a] < d[b] end return a < b end)  -- stable
  local total = 0
  for i = 1, #same do total = total + same[i] end
  local rec, prec = {0}, {0}
  local tp, fp = 0, 0
  for _, i in ipairs(order) do
    tp, fp = tp + same[i], fp + (1 - same[i])
    rec[#rec + 1] = tp / total
    prec[#prec + 1] = tp / (tp + fp)
  end
  rec[#rec + 1], prec[#prec + 1] = 1, 0
  for i = #prec - 1, 1, -1 do prec[i] = math.max(prec[i], prec[i + 1]) end
  local ap = 0
  for i = 1, #rec - 1 do
    if rec[i + 1] ~= rec[i] then ap = ap + (rec[i + 1] - rec[i]) * prec[i + 1] end
  end
  return ap
end

return M

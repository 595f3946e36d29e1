-- Image-folder datasets: any folder of images, the super-resolution test sets (Set5, Set14, BSD100) and the MS-COCO
-- 2014 subsets of the super-resolution benchmark (docs/benchmarks/superres.md). Samples are
-- {image = 3 x H x W in [0, 1] (RGB), name = file stem}; sizes differ between images, so batch them after a
-- resize/crop transform (or with batch_size 1).
--
--   local folders = require "dpl.data.folders"
--   local ds = folders.folder("some/dir", {pattern = "_HR%.png$"})
--   local set5 = folders.set5({scale = 4})            -- {hr, lr (when the *_LR.png exists), name}
--   local train = folders.coco("train")               -- the 10,000-image subset of train2014
local files = require "dpl.data.files"
local mt = require "dpl.data.mt19937"

local M = {}
local IMAGE_EXTS = {png = true, jpg = true, jpeg = true, bmp = true, tif = true, tiff = true}

local Folder = {}
Folder.__index = Folder
function Folder:len() return #self.names end
function Folder:files(i)
  local out = {{self.dir .. "/" .. self.names[i], kind = "image", channels = self.channels}}
  if self.lr_names then out[2] = {self.dir .. "/" .. self.lr_names[i], kind = "image", channels = self.channels} end
  return out
end
function Folder:make(i, decoded)
  local s = {name = self.names[i]:gsub("%.[^.]+$", ""), [self.key] = decoded[1]}
  if decoded[2] then s.lr = decoded[2] end
  return s
end

-- Sorted image files of dir. opts: pattern (a Lua pattern the name must match), names (an explicit list of file
-- names, in order), mode ("RGB" default, "L", "keep"), transform, and for error messages dataset / fetch / what.
function M.folder(dir, opts)
  opts = opts or {}
  local names = opts.names
  if not names then
    local list = files.list(dir)
    names = {}
    for _, n in ipairs(list or {}) do
      local ext = n:match("%.([^.]+)$")
      if ext and IMAGE_EXTS[ext:lower()] and (not opts.pattern or n:find(opts.pattern)) then names[#names + 1] = n end
    end
  end
  if #names == 0 then
    if opts.fetch then
      files.missing(opts.dataset or "images", opts.fetch, opts.what or "image files", dir, 2)
    end
    error(("image folder: no image files%s in %s"):format(opts.pattern and (" matching '" .. opts.pattern .. "'") or "", dir), 2)
  end
  return setmetatable({dir = dir, names = names, key = opts.key or "image",
    channels = ({RGB = 3, L = 1, keep = 0})[opts.mode or "RGB"], transform = opts.transform}, Folder)
end

-- Set5 / Set14 in the SelfExSR layout (<root>/image_SRF_<scale>/img_NNN_SRF_<scale>_{HR,LR}.png); REF uses the
-- scale-2 HR files. Samples {hr, lr, name}.
local function selfexsr(name, fetch, opts)
  opts = opts or {}
  local scale = opts.scale or 2
  local dir = (opts.root or (files.data_root() .. "/" .. name)) .. "/image_SRF_" .. scale
  local list = files.list(dir) or {}
  local hr, lr = {}, {}
  for _, n in ipairs(list) do
    if n:find("_HR%.png$") then
      local l = n:gsub("_HR%.png$", "_LR.png")
      hr[#hr + 1] = n
      lr[#lr + 1] = l
    end
  end
  if #hr == 0 then
    files.missing(name, fetch, ("the HR/LR PNG pairs img_NNN_SRF_%d_{HR,LR}.png"):format(scale), dir, 3)
  end
  local have = {}
  for _, n in ipairs(list) do have[n] = true end
  local pairs_ok = true
  for _, l in ipairs(lr) do if not have[l] then pairs_ok = false end end
  local ds = M.folder(dir, {names = hr, key = "hr", mode = opts.mode, transform = opts.transform})
  if pairs_ok then ds.lr_names = lr end
  return ds
end

function M.set5(opts) return selfexsr("Set5", "set5", opts) end
function M.set14(opts) return selfexsr("Set14", "set14", opts) end

-- BSD100 = the 100 test images of BSDS300 (<root>/BSDS300/images/test/*.jpg).
function M.bsd100(opts)
  opts = opts or {}
  local dir = (opts.root or (files.data_root() .. "/BSDS300")) .. "/images/test"
  return M.folder(dir, {pattern = "%.jpg$", key = "hr", mode = opts.mode, transform = opts.transform,
    dataset = "BSD100", fetch = "bsd100", what = "the 100 BSDS300 test JPEGs"})
end

-- MS-COCO 2014 subsets as REF draws them (docs/benchmarks/superres.md): train = sklearn
-- train_test_split(train_size=10000, random_state=42) over train2014, val = train_size=100 over val2014, i.e. the last
-- k entries of numpy's RandomState(42).permutation(N), in that order. REF indexes os.listdir's (unsorted,
-- filesystem-dependent) order, which cannot be reproduced; here the listing is sorted by name first, so the subset is
-- the same on every machine. opts: root (default <data>/coco), size (override k), seed (default 42), transform, mode.
M.COCO_SUBSET = {train = 10000, val = 100}
function M.coco(split, opts)
  opts = opts or {}
  local k = opts.size or M.COCO_SUBSET[split]
  if not k then error("coco: split must be 'train' or 'val', got " .. tostring(split), 2) end
  local dir = (opts.root or (files.data_root() .. "/coco")) .. "/" .. split .. "2014"
  local list = files.list(dir) or {}
  local all = {}
  for _, n in ipairs(list) do if n:lower():find("%.jpe?g$") then all[#all + 1] = n end end
  if #all == 0 then files.missing("MS-COCO 2014", "coco", "the " .. split .. "2014 JPEGs", dir, 2) end
  if #all < k then
    error(("MS-COCO 2014: %s holds %d images, fewer than the %d of the %s subset (incomplete download? "
      .. "dplrun data/fetch.lua coco)"):format(dir, #all, k, split), 2)
  end
  local names = {}
  for i, idx in ipairs(mt.train_split(#all, k, opts.seed or 42)) do names[i] = all[idx + 1] end
  return M.folder(dir, {names = names, mode = opts.mode, transform = opts.transform})
end

return M

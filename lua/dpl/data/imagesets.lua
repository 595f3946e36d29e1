-- SVHN (format 2, cropped 32x32 digits) and STL-10 (96x96), held in memory as bytes by the C reader
-- (runtime/src/io/imageset.c); a batch is gathered and converted to floats in one C call, so no file decoding
-- happens per sample. See docs/benchmarks/autoencoder.md.
--
--   local sets = require "dpl.data.imagesets"
--   local train = sets.svhn("train")          -- <data>/svhn/train_32x32.mat   (train, test, extra)
--   local stl = sets.stl10("unlabeled")       -- <data>/stl10/stl10_binary/unlabeled_X.bin   (train, test, unlabeled)
--   for b in dataset.batches(train, {batch_size = 256, shuffle = true, seed = 0}) do ... b.image, b.label ... end
-- Batches: {image = N x 3 x H x W in [0, 1], label = N class indices 0..9 (absent when unlabeled), index}.
-- opts.batch_transform(batch) runs on each batch (e.g. the reflection padding 32 -> 64 of SVHN).
local ffi = require "ffi"
local dffi = require "dpl.ffi"
local T = require "dpl.tensor"
local dpl = require "dpl"
local files = require "dpl.data.files"
local C = dffi.C

local M = {}

local Set = {}
Set.__index = Set
function Set:len() return self.n end

function Set:get_batch(indices, device)
  local n = #indices
  local idx = ffi.new("int64_t[?]", math.max(n, 1))
  for k = 1, n do
    if indices[k] < 1 or indices[k] > self.n then
      error(("%s: index %d out of range 1..%d"):format(self.name, indices[k], self.n), 2)
    end
    idx[k - 1] = indices[k] - 1
  end
  local batch = {image = T.new(C.dpl_image_set_batch, self._c, T.resolve_device(device), n, idx)}
  if self.labeled then
    local labels = {}
    for k = 1, n do labels[k] = C.dpl_image_set_label(self._c, indices[k] - 1) end
    batch.label = dpl.tensor(labels, {device = device})
  end
  if self.batch_transform then batch = self.batch_transform(batch) end
  return batch
end

-- one sample: {image = 3 x H x W, label = number or nil}
function Set:get(i)
  local b = self:get_batch({i}, "cpu")
  return {image = b.image:select(1, 1), label = self.labeled and C.dpl_image_set_label(self._c, i - 1) or nil}
end

local function wrap(c, name, labeled, opts)
  if c == nil then dffi.raise(3) end
  local shape = ffi.new("int64_t[3]")
  C.dpl_image_set_shape(c, shape)
  return setmetatable({_c = ffi.gc(c, C.dpl_image_set_free), n = tonumber(C.dpl_image_set_count(c)), name = name,
    labeled = labeled, shape = {tonumber(shape[0]), tonumber(shape[1]), tonumber(shape[2])},
    batch_transform = opts.batch_transform}, Set)
end

M.SVHN_SPLITS = {train = true, test = true, extra = true}
function M.svhn(split, opts)
  opts = opts or {}
  if not M.SVHN_SPLITS[split] then error("svhn: split must be train, test or extra, got " .. tostring(split), 2) end
  local path = opts.path or ((opts.root or (files.data_root() .. "/svhn")) .. "/" .. split .. "_32x32.mat")
  if not files.exists(path) then files.missing("SVHN", "svhn", "the format-2 file " .. split .. "_32x32.mat", path, 2) end
  return wrap(C.dpl_svhn_open(path), "SVHN " .. split, true, opts)
end

M.STL10_SPLITS = {train = true, test = true, unlabeled = true}
function M.stl10(split, opts)
  opts = opts or {}
  if not M.STL10_SPLITS[split] then error("stl10: split must be train, test or unlabeled, got " .. tostring(split), 2) end
  local dir = opts.dir or ((opts.root or (files.data_root() .. "/stl10")) .. "/stl10_binary")
  local x = dir .. "/" .. split .. "_X.bin"
  local y = split ~= "unlabeled" and (dir .. "/" .. split .. "_y.bin") or nil
  if not files.exists(x) then files.missing("STL-10", "stl10", "the binary file " .. split .. "_X.bin", x, 2) end
  if y and not files.exists(y) then files.missing("STL-10", "stl10", "the label file " .. split .. "_y.bin", y, 2) end
  return wrap(C.dpl_stl10_open(x, y), "STL-10 " .. split, y ~= nil, opts)
end

return M

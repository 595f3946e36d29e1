-- dpl.weights: reading weight files - PyTorch checkpoints (torch.save's zip format and the legacy pre-1.6 format,
-- read by a safe unpickler that never executes anything) and safetensors - as float32 tensors.
--
--   local weights = require "dpl.weights"
--   local w, names = weights.load("vgg16-397923af.pth", {device = "cpu"})
--   -- w["features.0.weight"] is a float32 tensor; names lists the state_dict keys in file order
--   for _, e in ipairs(weights.info("lpips_alex.pth")) do print(e.name, e.dtype, table.concat(e.shape, "x")) end
--
-- A directory of per-tensor .npy files (one file per state_dict entry, as in shared/data/SqueezeNet1.1) loads with a
-- name map from file stems to state_dict keys:
--   local w = weights.load_npy_dir("SqueezeNet1.1/squeezenet1.1_nchw/weights", names, {name_map = "gluon_squeezenet1_1"})
--
-- A checkpoint must hold a dict of tensors (a state_dict); dicts nested in it are flattened with dotted names
-- ({'model': sd, 'epoch': 3} gives "model.<key>"), and values that are not tensors are skipped.
local ffi = require "ffi"
local dffi = require "dpl.ffi"
local T = require "dpl.tensor"
local C = dffi.C

local M = {}

local function open(path, level)
  if type(path) ~= "string" then error("dpl.weights: expected a file path, got " .. type(path), level + 1) end
  local f = C.dpl_tensor_file_open(path)
  if f == nil then dffi.raise(level + 1) end
  return ffi.gc(f, C.dpl_tensor_file_close)
end

local function close(f)
  C.dpl_tensor_file_close(ffi.gc(f, nil))
end

-- Every tensor of a file: returns name -> tensor and the list of names in file order. opts.device: where to put them.
function M.load(path, opts)
  local f = open(path, 2)
  local dev = T.resolve_device(opts and opts.device)
  local out, names = {}, {}
  local ok, err = pcall(function()
    for i = 0, C.dpl_tensor_file_count(f) - 1 do
      local name = ffi.string(C.dpl_tensor_file_name(f, i))
      out[name] = T.new(C.dpl_tensor_file_load, f, dev, i)
      names[#names + 1] = name
    end
  end)
  close(f)
  if not ok then error(err, 0) end
  return out, names
end

-- The index without reading any data: a list of {name =, shape = {...}, dtype = "float32" | "int64" | ...}.
function M.info(path)
  local f = open(path, 2)
  local shape = ffi.new("int64_t[?]", C.DPL_MAX_DIMS)
  local out = {}
  for i = 0, C.dpl_tensor_file_count(f) - 1 do
    local nd = C.dpl_tensor_file_shape(f, i, shape)
    local s = {}
    for d = 0, nd - 1 do s[d + 1] = tonumber(shape[d]) end
    out[#out + 1] = {name = ffi.string(C.dpl_tensor_file_name(f, i)), shape = s,
                     dtype = ffi.string(C.dpl_tensor_file_dtype(f, i))}
  end
  close(f)
  return out
end

-- "pth-zip", "pth-legacy" or "safetensors".
function M.format(path)
  local f = open(path, 2)
  local s = ffi.string(C.dpl_tensor_file_format(f))
  close(f)
  return s
end

-- ---- directories of per-tensor .npy files ---------------------------------------------------------------------------
-- True when path names a directory (fopen of "<dir>/." succeeds only for directories).
function M.is_dir(path)
  local f = io.open(path .. "/.", "r")
  if f then f:close() return true end
  return false
end

-- Built-in name maps, file stem -> state_dict key.
M.name_maps = {}

-- The ONNX model zoo's Gluon-named SqueezeNet 1.1 (squeezenet0_convN_{weight,bias}.npy) to torchvision's
-- squeezenet1_1: conv0 -> features.0; Fire module i = 0..7 sits at features index [3,4,6,7,9,10,11,12][i], with
-- conv(3i+1) -> squeeze, conv(3i+2) -> expand1x1, conv(3i+3) -> expand3x3; conv25 -> classifier.1 (SOURCES.md).
function M.name_maps.gluon_squeezenet1_1()
  local conv = {conv0 = "features.0", conv25 = "classifier.1"}
  local fire_at = {3, 4, 6, 7, 9, 10, 11, 12}
  for i = 0, 7 do
    local base = "features." .. fire_at[i + 1]
    conv["conv" .. (3 * i + 1)] = base .. ".squeeze"
    conv["conv" .. (3 * i + 2)] = base .. ".expand1x1"
    conv["conv" .. (3 * i + 3)] = base .. ".expand3x3"
  end
  local map = {}
  for g, tv in pairs(conv) do
    for _, kind in ipairs {"weight", "bias"} do map["squeezenet0_" .. g .. "_" .. kind] = tv .. "." .. kind end
  end
  return map
end

-- A name map from: a table (file stem -> key), the name of a built-in map, or a text file of "stem key" lines
-- (blank lines and lines starting with # are skipped).
function M.name_map(spec)
  if spec == nil or type(spec) == "table" then return spec end
  if type(spec) ~= "string" then error("name map: expected a table, a built-in map name or a file, got " .. type(spec), 2) end
  if M.name_maps[spec] then return M.name_maps[spec]() end
  local f = io.open(spec)
  if not f then
    local known = {}
    for k in pairs(M.name_maps) do known[#known + 1] = k end
    table.sort(known)
    error(("name map '%s' is neither a built-in map (%s) nor a readable file"):format(spec, table.concat(known, ", ")), 2)
  end
  local map, n = {}, 0
  for line in f:lines() do
    n = n + 1
    if not line:match("^%s*$") and not line:match("^%s*#") then
      local stem, key = line:match("^%s*(%S+)%s+(%S+)%s*$")
      if not stem then
        f:close()
        error(("name map %s line %d: expected 'file_stem state_dict_key', got '%s'"):format(spec, n, line), 2)
      end
      map[stem] = key
    end
  end
  f:close()
  return map
end

-- Reads the state_dict entries `names` from dir/<stem>.npy, where map[stem] is the entry's key (the key itself is
-- the stem when there is no map or the map does not name it). Entries without a file are left out of the result
-- (the caller reports what is missing). opts.device, opts.name_map (see name_map).
function M.load_npy_dir(dir, names, opts)
  opts = opts or {}
  local map = M.name_map(opts.name_map)
  local stem_of = {}
  for stem, key in pairs(map or {}) do
    if stem_of[key] then error(("name map: both %s and %s map to %s"):format(stem_of[key], stem, key), 2) end
    stem_of[key] = stem
  end
  local dpl = require "dpl"
  local out = {}
  for _, key in ipairs(names) do
    local path = dir .. "/" .. (stem_of[key] or key) .. ".npy"
    local f = io.open(path, "rb")
    if f then
      f:close()
      out[key] = dpl.load_npy(path, {device = opts.device})
    end
  end
  return out
end

return M

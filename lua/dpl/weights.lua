-- dpl.weights: reading weight files - PyTorch checkpoints (torch.save's zip format and the legacy pre-1.6 format,
-- read by a safe unpickler that never executes anything) and safetensors - as float32 tensors.
--
--   local weights = require "dpl.weights"
--   local w, names = weights.load("vgg16-397923af.pth", {device = "cpu"})
--   -- w["features.0.weight"] is a float32 tensor; names lists the state_dict keys in file order
--   for _, e in ipairs(weights.info("lpips_alex.pth")) do print(e.name, e.dtype, table.concat(e.shape, "x")) end
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

return M

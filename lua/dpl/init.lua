-- dpl: deep perceptual loss on Vulkan and CPU. `local dpl = require "dpl"`.
--
--   local x = dpl.randn({2, 3})                 -- on the default device (see dplrun --devices)
--   local y = (x * 2 + 1):relu():sum()
--   print(y:item())
--
-- Creation functions take a shape as varargs (2, 3) or a table {2, 3}, and an optional options table last:
-- {device = "cpu" | "vulkan" | "vulkan:N"}.
local ffi = require "ffi"
local dffi = require "dpl.ffi"
local T = require "dpl.tensor"
local C = dffi.C

local dpl = {
  Tensor = T.Tensor,
  Size = T.Size,
  C = C,
  is_tensor = T.is_tensor,
  where = T.where,
  version = ffi.string(C.dpl_version()),
}

-- split (shape..., opts) arguments: the options table is a trailing table with named keys, or any trailing table
-- after a shape table ({2, 3}, {}).
local function shape_and_opts(...)
  local n = select("#", ...)
  local last = n >= 1 and select(n, ...) or nil
  if type(last) == "table" and getmetatable(last) ~= T.Size and
      ((#last == 0 and next(last) ~= nil) or (n >= 2 and type((...)) == "table")) then
    local args = {...}
    args[n] = nil
    return args, last
  end
  return {...}, {}
end

local function unpack_shape(args)
  if type(args[1]) == "table" then return args[1] end
  return args
end

-- ---- devices ------------------------------------------------------------------------------------------------------
-- dpl.device() -> the default device's spec; dpl.device("cpu") makes "cpu" the default and returns its spec
function dpl.device(spec)
  local d = spec and T.set_default_device(spec) or T.resolve_device(nil)
  return ffi.string(C.dpl_device_spec(d))
end

function dpl.device_banner(spec)
  return ffi.string(C.dpl_device_banner(T.resolve_device(spec)))
end

function dpl.devices()
  local list = {"cpu"}
  for i = 0, C.dpl_vulkan_device_count() - 1 do list[#list + 1] = "vulkan:" .. i end
  return list
end

function dpl.vulkan_available() return C.dpl_vulkan_device_count() > 0 end

function dpl.synchronize(spec) dffi.check(C.dpl_device_synchronize(T.resolve_device(spec)), 2) end

-- counters: bytes, peak_bytes, reserved_bytes, dispatches, submits, barriers, pipelines, uploads, downloads
function dpl.stat(name, spec) return tonumber(C.dpl_device_stat(T.resolve_device(spec), name)) end

function dpl.validation_messages() return tonumber(C.dpl_validation_message_count()) end

-- ---- creation -----------------------------------------------------------------------------------------------------
function dpl.empty(...)
  local args, opts = shape_and_opts(...)
  local n, arr = T.shape_args(unpack_shape(args))
  return T.new(C.dpl_tensor_empty, T.resolve_device(opts.device), n, arr)
end

function dpl.full(shape, value, opts)
  local n, arr = T.shape_args(shape)
  return T.new(C.dpl_tensor_full, T.resolve_device(opts and opts.device), n, arr, value)
end

function dpl.zeros(...)
  local args, opts = shape_and_opts(...)
  return dpl.full(unpack_shape(args), 0, opts)
end

function dpl.ones(...)
  local args, opts = shape_and_opts(...)
  return dpl.full(unpack_shape(args), 1, opts)
end

function dpl.zeros_like(t) return dpl.full(t:size(), 0, {device = t}) end
function dpl.ones_like(t) return dpl.full(t:size(), 1, {device = t}) end

-- dpl.arange(n), dpl.arange(start, stop[, step][, opts])
function dpl.arange(a, b, c, opts)
  if type(b) == "table" then opts, b = b, nil end
  if type(c) == "table" then opts, c = c, nil end
  local start, stop, step = 0, a, 1
  if b then start, stop, step = a, b, c or 1 end
  return T.new(C.dpl_tensor_arange, T.resolve_device(opts and opts.device), start, stop, step)
end

-- From a (nested) Lua table of numbers: dpl.tensor({{1, 2}, {3, 4}})
function dpl.tensor(data, opts)
  if type(data) == "number" then data = {data} end
  if type(data) ~= "table" then error("dpl.tensor: expected a table of numbers, got " .. type(data), 2) end
  local shape, flat = {}, {}
  local probe = data
  while type(probe) == "table" do
    shape[#shape + 1] = #probe
    probe = probe[1]
  end
  local function walk(x, d)
    if d > #shape then
      if type(x) ~= "number" then error("dpl.tensor: expected a number, got " .. type(x), 4) end
      flat[#flat + 1] = x
      return
    end
    if type(x) ~= "table" or #x ~= shape[d] then error("dpl.tensor: ragged nested table at depth " .. d, 4) end
    for i = 1, #x do walk(x[i], d + 1) end
  end
  walk(data, 1)
  local buf = ffi.new("float[?]", math.max(#flat, 1))
  for i = 1, #flat do buf[i - 1] = flat[i] end
  local n, arr = T.shape_args(shape)
  return T.new(C.dpl_tensor_from_host, T.resolve_device(opts and opts.device), n, arr, buf)
end

-- From host memory: `ptr` points to numel floats (any cdata convertible to const float*).
function dpl.from_pointer(ptr, shape, opts)
  local n, arr = T.shape_args(shape)
  return T.new(C.dpl_tensor_from_host, T.resolve_device(opts and opts.device), n, arr, ptr)
end

-- ---- files --------------------------------------------------------------------------------------------------------
-- A .npy file (any numeric dtype) as a float32 tensor.
function dpl.load_npy(path, opts)
  return T.new(C.dpl_npy_load, T.resolve_device(opts and opts.device), path)
end

-- Writes a tensor as a float32 .npy file (atomically).
function dpl.save_npy(t, path)
  dffi.check(C.dpl_npy_save(T.handle(t), path), 2)
end
T.Tensor.save_npy = function(t, path) return dpl.save_npy(t, path) end

local checkpoint = require "dpl.checkpoint"
dpl.checkpoint = checkpoint
dpl.save_tensors, dpl.load_tensors = checkpoint.save_tensors, checkpoint.load_tensors

-- ---- random numbers -----------------------------------------------------------------------------------------------
-- A global counter-based stream: each call takes the next numel counters of the current seed, so a sequence of calls
-- is reproducible and identical on every device. Pass {seed = s} to draw from a fixed stream instead.
local rng = {seed = 0, offset = 0}
function dpl.manual_seed(seed)
  rng.seed, rng.offset = seed, 0
end
-- the stream's position {seed = s, offset = o}, and setting it back (a resumed training run continues the stream)
function dpl.get_rng_state() return {seed = rng.seed, offset = rng.offset} end
function dpl.set_rng_state(st)
  if type(st) ~= "table" or type(st.seed) ~= "number" or type(st.offset) ~= "number" then
    error("set_rng_state: expected {seed = number, offset = number} from dpl.get_rng_state()", 2)
  end
  rng.seed, rng.offset = st.seed, st.offset
end

local function random(dist, a, b, ...)
  local args, opts = shape_and_opts(...)
  local n, arr = T.shape_args(unpack_shape(args))
  local numel = 1
  for i = 0, n - 1 do numel = numel * tonumber(arr[i]) end
  local seed, offset = rng.seed, rng.offset
  if opts.seed then seed, offset = opts.seed, opts.offset or 0 else rng.offset = rng.offset + numel end
  return T.new(C.dpl_tensor_random, T.resolve_device(opts.device), n, arr, dist, a, b, seed, offset)
end

function dpl.rand(...) return random(0, 0, 1, ...) end
function dpl.randn(...) return random(1, 0, 1, ...) end
function dpl.uniform(lo, hi, ...) return random(0, lo, hi, ...) end
function dpl.normal(mean, std, ...) return random(1, mean, std, ...) end

-- ---- autograd ------------------------------------------------------------------------------------------------------
local autograd = require "dpl.autograd"
dpl.autograd = autograd
dpl.no_grad = autograd.no_grad
dpl.where = T.where
dpl.muladd = T.muladd   -- x * a + b in one pass (broadcast), with autograd

-- ---- joining and splitting ----------------------------------------------------------------------------------------
local join = require "dpl.join"
dpl.cat, dpl.split, dpl.chunk = join.cat, join.split, join.chunk
T.Tensor.split = join.split
T.Tensor.chunk = join.chunk

-- ---- functions mirroring methods ----------------------------------------------------------------------------------
for _, name in ipairs {"matmul", "mm", "exp", "log", "sqrt", "abs", "relu", "sigmoid", "silu", "tanh", "sum", "mean", "max", "min",
                       "argmax", "argmin", "var", "std", "clamp", "maximum", "minimum", "pow"} do
  if T.Tensor[name] then dpl[name] = function(...) return T.Tensor[name](...) end end
end

-- ---- neural-network functions (lua/dpl/functional.lua): dpl.conv2d and its gradients, also as dpl.functional.X ----
dpl.functional = require "dpl.functional"
for name, fn in pairs(dpl.functional) do if dpl[name] == nil then dpl[name] = fn end end

-- ---- pooling, padding and resizing (lua/dpl/spatial.lua): dpl.max_pool2d, avg_pool2d, adaptive_avg_pool2d, pad2d, upsample2d
for k, v in pairs(require "dpl.spatial") do dpl[k] = v end

-- ---- images (lua/dpl/image.lua): dpl.image.load(path, {mode = "RGB" | "L" | "keep", device = ...}), dpl.image.save
dpl.image = require "dpl.image"
-- preprocessing matching Pillow / torchvision / MATLAB (lua/dpl/transforms.lua)
dpl.transforms = require "dpl.transforms"

return dpl

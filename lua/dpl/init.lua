-- dpl: deep perceptual loss on Vulkan and CPU. `local dpl = require "dpl"`.
--
--   local x = dpl.randn({2, 3})                 -- on the default device (see dplrun --devices)
--   local y = (x * 2 + 1):relu():sum()
--   print(y:item())
--
-- Creation functions take a shape as varargs (2, 3) or a table {2, 3}, and an optional options table last:
-- {device = "cpu" | "vulkan" | "vulkan:N"}.
--
-- The library's layers (docs/architecture.md): this file, tensor.lua, autograd.lua and ops/ are the core; nn/
-- (modules, and nn/functional.lua = dpl.F), models/ (architectures, loss networks), data/, metrics/, optim/, train/,
-- benchmarks/ (one module per benchmark and the shared runner), sys/ (FFI declarations of system libraries) build on
-- it. The modules most scripts use are fields of dpl, loaded on first use: dpl.nn, dpl.F, dpl.optim, dpl.lossnet,
-- dpl.perceptual, dpl.image, dpl.transforms.
local ffi = require "ffi"
local dffi = require "dpl.ffi"
local T = require "dpl.tensor"
local A = require "dpl.autograd"
local ops = require "dpl.ops"
local C = dffi.C

local dpl = {
  Tensor = T.Tensor,
  Size = T.Size,
  C = C,
  is_tensor = T.is_tensor,
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
-- peak_bytes starts again from the bytes held now
function dpl.reset_peak(spec) C.dpl_device_reset_peak(T.resolve_device(spec)) end

function dpl.validation_messages() return tonumber(C.dpl_validation_message_count()) end

-- dpl.set_precision("fp32" | "fp16"), dpl.precision(): what dplrun --precision sets (DPL_PRECISION). fp16: the Vulkan
-- GPU kernels stage their tiles in float16 where the device can, accumulating in float32 (docs/vulkan.md).
pcall(ffi.cdef, "int setenv(const char *name, const char *value, int overwrite);")
function dpl.set_precision(p)
  if p ~= "fp32" and p ~= "fp16" then error("dpl.set_precision: expected \"fp32\" or \"fp16\", got " .. tostring(p), 2) end
  ffi.C.setenv("DPL_PRECISION", p, 1)
end
function dpl.precision() return os.getenv("DPL_PRECISION") == "fp16" and "fp16" or "fp32" end

-- per-kernel GPU time since the last call, as a text table (nil unless the device is Vulkan and DPL_VK_PROFILE=1)
function dpl.profile_report(spec)
  local buf = ffi.new("char[?]", 16384)
  local n = C.dpl_device_profile(T.resolve_device(spec), buf, 16384)
  if n < 0 then return nil end
  return ffi.string(buf, math.min(n, 16383))
end

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
dpl.save_npy = T.Tensor.save_npy

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
dpl.autograd = A
dpl.no_grad = A.no_grad

-- ---- functions mirroring methods, as torch.X ------------------------------------------------------------------------
local E, R, S = ops.elementwise, ops.reduce, ops.shape
dpl.where = E.where
dpl.muladd = E.muladd   -- x * a + b in one pass (broadcast), with autograd
dpl.cat, dpl.split, dpl.chunk = S.cat, S.split, S.chunk
for _, name in ipairs {"exp", "log", "sqrt", "abs", "relu", "sigmoid", "silu", "tanh", "clamp", "maximum", "minimum",
                       "pow"} do
  dpl[name] = E[name]
end
for _, name in ipairs {"matmul", "mm", "sum", "mean", "max", "min", "argmax", "argmin", "var", "std"} do
  dpl[name] = R[name]
end

-- ---- modules loaded on first use, and F's functions as dpl.X (dpl.conv2d, dpl.max_pool2d, as torch.conv2d) ----------
local LAZY = {
  nn = "dpl.nn", F = "dpl.nn.functional", functional = "dpl.nn.functional", optim = "dpl.optim",
  lossnet = "dpl.models.lossnet", perceptual = "dpl.perceptual",
  image = "dpl.image",                 -- dpl.image.load(path, {mode = "RGB" | "L" | "keep", device = ...}), save
  transforms = "dpl.data.transforms",  -- preprocessing matching Pillow / torchvision / MATLAB
}
setmetatable(dpl, {__index = function(t, k)
  local m = LAZY[k]
  if m then
    local v = require(m)
    rawset(t, k, v)
    return v
  end
  return t.F[k]
end})

return dpl

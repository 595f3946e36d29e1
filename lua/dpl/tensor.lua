-- dpl.tensor: the Tensor type over the C runtime: handles, devices, shapes, dims, host data and printing. The ops
-- (arithmetic, reductions, views, convolutions ...) and their gradients are in lua/dpl/ops/, which also installs them
-- as Tensor methods and operators (lua/dpl/ops/init.lua); this file holds only what every op builds on.
--
-- A Tensor is a userdata (so that `#t` works under LuaJIT) whose environment table holds the C handle (`_c`,
-- released by ffi.gc when the tensor is collected) and any fields a library attaches (autograd stores grad and
-- grad_fn there). Dims and indices are 1-based as in torch7; negative dims count from the end (-1 is the last).
local ffi = require "ffi"
local dffi = require "dpl.ffi"
local C, raise, check = dffi.C, dffi.raise, dffi.check

local Tensor = {}            -- methods
local mt = {}                -- metatable of every tensor
local proto = newproxy(true)
do
  local pm = getmetatable(proto)
  for k, v in pairs(mt) do pm[k] = v end
  mt = pm
end

local getfenv, setfenv = debug.getfenv, debug.setfenv
local int64_array = ffi.typeof("int64_t[?]")
local int_array = ffi.typeof("int[?]")
local float_array = ffi.typeof("float[?]")
local float_box = ffi.typeof("float[1]")

local M = {Tensor = Tensor, C = C}

-- ---- devices ------------------------------------------------------------------------------------------------------
local default_device_handle
local banner_printed = {}
local opened = {}             -- spec -> handle of every device this process opened

local function open_device(spec)
  local d = C.dpl_device_open(spec)
  if d == nil then raise(3) end
  local key = ffi.string(C.dpl_device_spec(d))
  opened[key] = d
  if not banner_printed[key] and (os.getenv("DPL_QUIET") or "") == "" then
    banner_printed[key] = true
    io.stderr:write("dpl ", ffi.string(C.dpl_version()), " | ", ffi.string(C.dpl_device_banner(d)), "\n")
  end
  return d
end

-- A device handle from nil (the default), a spec string, a tensor, or a handle.
local function resolve_device(d)
  if d == nil then
    if not default_device_handle then default_device_handle = open_device(nil) end
    return default_device_handle
  end
  if type(d) == "string" then return open_device(d) end
  if type(d) == "userdata" and getfenv(d)._c then return C.dpl_tensor_device(getfenv(d)._c) end
  if type(d) == "table" and d.handle then return d.handle end
  return d
end
M.resolve_device = resolve_device

-- The handles of the devices opened so far (the test runner drains them after every test).
function M.open_devices()
  local list = {}
  for _, d in pairs(opened) do list[#list + 1] = d end
  return list
end

function M.set_default_device(d)
  default_device_handle = resolve_device(d)
  return default_device_handle
end

-- ---- memory pressure: tell the Lua GC about device memory (torch7's heap tracking) --------------------------------
-- Lua sees a tensor as a few bytes, so without this unreachable activations would pile up for hundreds of MB before a
-- collection, and every pass of a network would touch fresh pages (the kernel zeroing them cost ~25% of a small
-- network's forward pass). A full collection runs when a device holds more than twice what survived the last one,
-- and at least DPL_GC_SOFT_LIMIT_MB (default 64) more.
local floor_bytes = (tonumber(os.getenv("DPL_GC_SOFT_LIMIT_MB")) or 64) * 2 ^ 20
local gc_limit = {}       -- per device handle address: bytes past which to collect
local function memory_pressure(dev)
  local key = tonumber(ffi.cast("intptr_t", dev))
  local limit = gc_limit[key] or floor_bytes
  local bytes = tonumber(C.dpl_device_stat(dev, "bytes"))
  if bytes > limit then
    collectgarbage("collect")
    bytes = tonumber(C.dpl_device_stat(dev, "bytes"))
    gc_limit[key] = math.max(2 * bytes, bytes + floor_bytes)
  end
end

-- ---- wrapping handles ---------------------------------------------------------------------------------------------
local function wrap(c)
  local t = newproxy(proto)
  setfenv(t, {_c = ffi.gc(c, C.dpl_tensor_free)})
  return t
end
M.wrap = wrap

-- Calls a C function that returns a new tensor handle; on out-of-memory collects garbage and retries once.
local function new(fn, ...)
  local c = fn(...)
  if c == nil then
    if C.dpl_last_status() == C.DPL_ERR_OUT_OF_MEMORY then
      collectgarbage("collect")
      collectgarbage("collect")
      C.dpl_clear_error()
      c = fn(...)
    end
    if c == nil then raise(3) end
  end
  local t = wrap(c)
  memory_pressure(C.dpl_tensor_device(c))
  return t
end

local function handle(t, what)
  if type(t) ~= "userdata" then
    error((what or "argument") .. ": expected a dpl.Tensor, got " .. type(t), 3)
  end
  local c = getfenv(t)._c
  if c == nil then error((what or "argument") .. ": this tensor was freed", 3) end
  return c
end
M.handle = handle

function M.is_tensor(x)
  return type(x) == "userdata" and getmetatable(x) == mt
end
local is_tensor = M.is_tensor

-- ---- shapes -------------------------------------------------------------------------------------------------------
local Size = {}
Size.__index = Size
Size.__tostring = function(s)
  local parts = {}
  for i = 1, #s do parts[i] = tostring(s[i]) end
  return table.concat(parts, "x")
end
Size.__eq = function(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end
M.Size = Size

-- shape from varargs: (2, 3), ({2, 3}) or a Size
local function shape_args(...)
  local first = ...
  local dims
  if type(first) == "table" then dims = first else dims = {...} end
  local n = #dims
  local arr = int64_array(n > 0 and n or 1)
  for i = 1, n do
    local v = dims[i]
    if type(v) ~= "number" or v ~= math.floor(v) then error("shape: sizes must be integers, got " .. tostring(v), 3) end
    arr[i - 1] = v
  end
  return n, arr
end
M.shape_args = shape_args

-- "[2, 3]": the shape of a handle, for error messages
local function shape_str(c)
  local parts = {}
  for i = 0, C.dpl_tensor_ndim(c) - 1 do parts[#parts + 1] = tostring(tonumber(C.dpl_tensor_size(c, i))) end
  return "[" .. table.concat(parts, ", ") .. "]"
end

M.shape_str = shape_str

local function int_arg(fn, what, v)
  if type(v) ~= "number" or v ~= math.floor(v) then
    error(("%s: %s must be an integer, got %s"):format(fn, what, type(v) == "number" and tostring(v) or type(v)), 4)
  end
end

-- 1-based (and negative) Lua dim -> 0-based C dim, checked here so that errors name the function and the dim as the
-- user wrote it (C's messages count dims from 0). `extra` widens the range (unsqueeze may name one past the end).
local function cdim(d, c, fn, extra)
  fn = fn or "dim"
  int_arg(fn, "dim", d)
  if d == 0 then error(fn .. ": dims are 1-based: dim 0 does not exist (use 1 for the first, -1 for the last)", 3) end
  if c ~= nil then
    local n = C.dpl_tensor_ndim(c) + (extra or 0)
    if d > n or d < -n then
      error(("%s: dim %d out of range for a tensor of shape %s (dims are 1..%d or -%d..-1)"):format(
        fn, d, shape_str(c), n, n), 3)
    end
  end
  return d > 0 and d - 1 or d
end
M.cdim = cdim

-- 1-based (and negative) index along 0-based C dim cd of c -> 0-based index, checked against [0, size + extra)
local function cindex(i, c, cd, fn, what, extra)
  int_arg(fn, what, i)
  if i == 0 then error(("%s: %s 0 does not exist: indices are 1-based (1 is the first, -1 the last)"):format(fn, what), 3) end
  local size = tonumber(C.dpl_tensor_size(c, cd))
  local n = size + (extra or 0)
  if i > n or i < -size then
    error(("%s: %s %d out of range for dim %d (size %d) of a tensor of shape %s"):format(
      fn, what, i, cd < 0 and cd or cd + 1, size, shape_str(c)), 3)
  end
  return i > 0 and i - 1 or i
end
M.cindex, M.int_arg = cindex, int_arg

function Tensor.dim(t) return C.dpl_tensor_ndim(handle(t)) end
Tensor.ndim = Tensor.dim
function Tensor.size(t, d)
  local c = handle(t)
  local n = C.dpl_tensor_ndim(c)
  if d then
    return tonumber(C.dpl_tensor_size(c, cdim(d, c, "size")))
  end
  local s = setmetatable({}, Size)
  for i = 1, n do s[i] = tonumber(C.dpl_tensor_size(c, i - 1)) end
  return s
end
function Tensor.stride(t, d)
  local c = handle(t)
  local n = C.dpl_tensor_ndim(c)
  if d then return tonumber(C.dpl_tensor_stride(c, cdim(d, c, "stride"))) end
  local s = {}
  for i = 1, n do s[i] = tonumber(C.dpl_tensor_stride(c, i - 1)) end
  return s
end
function Tensor.numel(t) return tonumber(C.dpl_tensor_numel(handle(t))) end
Tensor.nElement = Tensor.numel
function Tensor.is_contiguous(t) return C.dpl_tensor_is_contiguous(handle(t)) ~= 0 end
function Tensor.device(t) return ffi.string(C.dpl_device_spec(C.dpl_tensor_device(handle(t)))) end
function Tensor.storage_offset(t) return tonumber(C.dpl_tensor_storage_offset(handle(t))) end
function Tensor.same_storage(a, b) return C.dpl_tensor_same_storage(handle(a), handle(b)) ~= 0 end

-- Releases the tensor's memory now (the handle is unusable afterwards).
function Tensor.free(t)
  local env = getfenv(t)
  if env._c ~= nil then
    local c = env._c
    env._c = nil
    ffi.gc(c, nil)
    C.dpl_tensor_free(c)
  end
end

-- ---- host data ----------------------------------------------------------------------------------------------------
-- float[numel] copy of the data, row-major
function Tensor.float_data(t)
  local c = handle(t)
  local n = tonumber(C.dpl_tensor_numel(c))
  local buf = float_array(n > 0 and n or 1)
  check(C.dpl_tensor_to_host(c, buf), 2)
  return buf, n
end

function Tensor.totable(t)
  local buf, n = Tensor.float_data(t)
  local size = Tensor.size(t)
  if #size == 0 then return buf[0] end
  local pos = 0
  local function build(d)
    local out = {}
    for i = 1, size[d] do
      if d == #size then out[i] = buf[pos]; pos = pos + 1 else out[i] = build(d + 1) end
    end
    return out
  end
  if n == 0 and #size == 1 then return {} end
  return build(1)
end

-- flat Lua array of the values
function Tensor.tolist(t)
  local buf, n = Tensor.float_data(t)
  local out = {}
  for i = 1, n do out[i] = buf[i - 1] end
  return out
end

-- Writes the tensor as a float32 .npy file (atomically).
function Tensor.save_npy(t, path)
  check(C.dpl_npy_save(handle(t), path), 2)
end

function Tensor.item(t)
  local box = float_box()
  check(C.dpl_tensor_item(handle(t), box), 2)
  return box[0]
end

-- ---- printing -----------------------------------------------------------------------------------------------------
local function fmt(v)
  if v ~= v then return "nan" end
  if v == math.huge then return "inf" elseif v == -math.huge then return "-inf" end
  return ("%.4f"):format(v)
end

function mt.__tostring(t)
  local env = getfenv(t)
  if env._c == nil then return "dpl.Tensor (freed)" end
  local size = Tensor.size(t)
  local head = ("dpl.Tensor [%s] on %s"):format(tostring(size), Tensor.device(t))
  local n = Tensor.numel(t)
  if n == 0 then return head .. " (empty)" end
  local preview_n = math.min(n, 12)
  local flat = wrap(C.dpl_tensor_reshape(handle(t), 1, int64_array(1, -1)))
  local buf = Tensor.float_data(wrap(C.dpl_tensor_narrow(handle(flat), 0, 0, preview_n)))
  local parts = {}
  for i = 0, preview_n - 1 do parts[#parts + 1] = fmt(buf[i]) end
  if n > preview_n then parts[#parts + 1] = ("... (%d values)"):format(n) end
  return head .. "\n  " .. table.concat(parts, " ")
end

-- ---- metatable (the arithmetic operators are set by lua/dpl/ops/init.lua) ----------------------------------------
mt.__len = function(t) return Tensor.size(t) end                  -- #t is the size, as in torch7
mt.__index = function(t, k)
  local m = Tensor[k]
  if m ~= nil then return m end
  return getfenv(t)[k]
end
mt.__newindex = function(t, k, v) getfenv(t)[k] = v end
mt.__metatable = mt

M.mt = mt
M.new = new
return M

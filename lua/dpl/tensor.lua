-- dpl.tensor: the Tensor type over the C runtime.
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

local function open_device(spec)
  local d = C.dpl_device_open(spec)
  if d == nil then raise(3) end
  local key = ffi.string(C.dpl_device_spec(d))
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
local DPL_ERR_OUT_OF_MEMORY = 2
local function new(fn, ...)
  local c = fn(...)
  if c == nil then
    if C.dpl_last_status() == DPL_ERR_OUT_OF_MEMORY then
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

function Tensor.item(t)
  local box = float_box()
  check(C.dpl_tensor_item(handle(t), box), 2)
  return box[0]
end

-- ---- views --------------------------------------------------------------------------------------------------------
function Tensor.view(t, ...)
  local n, arr = shape_args(...)
  return new(C.dpl_tensor_view, handle(t), n, arr)
end
function Tensor.reshape(t, ...)
  local n, arr = shape_args(...)
  return new(C.dpl_tensor_reshape, handle(t), n, arr)
end
function Tensor.view_as(t, o) return Tensor.view(t, Tensor.size(o)) end
function Tensor.flatten(t) return Tensor.reshape(t, -1) end
function Tensor.narrow(t, d, start, length)
  local c = handle(t)
  local cd = cdim(d, c, "narrow")
  -- start may be one past the end for an empty narrow
  local s0 = cindex(start, c, cd, "narrow", "start", 1)
  int_arg("narrow", "length", length)
  local size = tonumber(C.dpl_tensor_size(c, cd))
  local first = s0 < 0 and s0 + size or s0
  if length < 0 or first + length > size then
    error(("narrow: start %d and length %d are out of range for dim %d (size %d) of a tensor of shape %s"):format(
      start, length, d, size, shape_str(c)), 2)
  end
  return new(C.dpl_tensor_narrow, c, cd, s0, length)
end
function Tensor.select(t, d, index)
  local c = handle(t)
  local cd = cdim(d, c, "select")
  return new(C.dpl_tensor_select, c, cd, cindex(index, c, cd, "select", "index"))
end
function Tensor.permute(t, ...)
  local dims = type((...)) == "table" and (...) or {...}
  local c = handle(t)
  local n = C.dpl_tensor_ndim(c)
  if #dims ~= n then error(("permute: %d dims given for a %d-d tensor of shape %s"):format(#dims, n, shape_str(c)), 2) end
  local arr = int_array(n > 0 and n or 1)
  local seen = {}
  for i = 1, n do
    local cd = cdim(dims[i], c, "permute")
    cd = cd < 0 and cd + n or cd
    if seen[cd] then
      local list = {}
      for j = 1, n do list[j] = tostring(dims[j]) end
      error(("permute: {%s} is not a permutation of the dims of a tensor of shape %s"):format(
        table.concat(list, ", "), shape_str(c)), 2)
    end
    seen[cd] = true
    arr[i - 1] = cd
  end
  return new(C.dpl_tensor_permute, c, arr)
end
function Tensor.transpose(t, d0, d1)
  local c = handle(t)
  return new(C.dpl_tensor_transpose, c, cdim(d0, c, "transpose"), cdim(d1, c, "transpose"))
end
function Tensor.t(t)
  if Tensor.dim(t) ~= 2 then error("t: needs a 2-d tensor, got " .. Tensor.dim(t) .. "-d", 2) end
  return Tensor.transpose(t, 1, 2)
end
function Tensor.expand(t, ...)
  local n, arr = shape_args(...)
  return new(C.dpl_tensor_expand, handle(t), n, arr)
end
function Tensor.expand_as(t, o) return Tensor.expand(t, Tensor.size(o)) end
function Tensor.squeeze(t, d)
  local c = handle(t)
  return new(C.dpl_tensor_squeeze, c, d and cdim(d, c, "squeeze") or 127)
end
function Tensor.unsqueeze(t, d)
  local c = handle(t)
  -- unsqueeze(-1) appends a dim, as in torch
  return new(C.dpl_tensor_unsqueeze, c, cdim(d, c, "unsqueeze", 1))
end

-- ---- copies -------------------------------------------------------------------------------------------------------
function Tensor.contiguous(t) return new(C.dpl_tensor_contiguous, handle(t)) end
function Tensor.clone(t) return new(C.dpl_tensor_clone, handle(t)) end
function Tensor.copy_(t, src)
  check(C.dpl_tensor_copy_(handle(t), handle(src, "copy_ source")), 2)
  return t
end
function Tensor.to(t, device) return new(C.dpl_tensor_to_device, handle(t), resolve_device(device)) end
function Tensor.cpu(t) return Tensor.to(t, "cpu") end
function Tensor.fill_(t, v)
  check(C.dpl_tensor_fill_(handle(t), v), 2)
  return t
end
function Tensor.zero_(t) return Tensor.fill_(t, 0) end

-- ---- elementwise --------------------------------------------------------------------------------------------------
local BINARY = {add = 0, sub = 1, mul = 2, div = 3, pow = 4, maximum = 5, minimum = 6,
                eq = 7, ne = 8, lt = 9, le = 10, gt = 11, ge = 12}
local UNARY = {neg = 0, exp = 1, log = 2, sqrt = 3, abs = 4, square = 5, rsqrt = 6, sign = 7, relu = 8,
               sigmoid = 9, tanh = 10, clamp = 11, affine = 12, silu = 13}
M.BINARY, M.UNARY = BINARY, UNARY

local BINARY_NAME = {}
for name, op in pairs(BINARY) do BINARY_NAME[op] = name end

local function binary(op, a, b)
  if is_tensor(a) then
    if is_tensor(b) then return new(C.dpl_binary, op, handle(a), handle(b)) end
    if type(b) ~= "number" then error(BINARY_NAME[op] .. ": expected a tensor or a number, got " .. type(b), 3) end
    return new(C.dpl_binary_scalar, op, handle(a), b, 0)
  end
  if type(a) ~= "number" then error(BINARY_NAME[op] .. ": expected a tensor or a number, got " .. type(a), 3) end
  return new(C.dpl_binary_scalar, op, handle(b), a, 1)
end
M.binary = binary

for name, op in pairs(BINARY) do
  Tensor[name] = function(a, b) return binary(op, a, b) end
  -- in place: a:add_(b) writes into a
  Tensor[name .. "_"] = function(a, b)
    if is_tensor(b) then check(C.dpl_binary_into(op, handle(a), handle(a), handle(b)), 2)
    elseif type(b) == "number" then check(C.dpl_binary_scalar_into(op, handle(a), handle(a), b, 0), 2)
    else error(name .. "_: expected a tensor or a number, got " .. type(b), 2) end
    return a
  end
end

for name, op in pairs(UNARY) do
  if name ~= "clamp" and name ~= "affine" then
    Tensor[name] = function(a) return new(C.dpl_unary, op, handle(a), 0, 0) end
    Tensor[name .. "_"] = function(a)
      check(C.dpl_unary_into(op, handle(a), handle(a), 0, 0), 2)
      return a
    end
  end
end

function Tensor.clamp(a, lo, hi)
  return new(C.dpl_unary, UNARY.clamp, handle(a), lo or -math.huge, hi or math.huge)
end
function Tensor.clamp_(a, lo, hi)
  check(C.dpl_unary_into(UNARY.clamp, handle(a), handle(a), lo or -math.huge, hi or math.huge), 2)
  return a
end
-- a * scale + shift
function Tensor.affine(a, scale, shift) return new(C.dpl_unary, UNARY.affine, handle(a), scale, shift or 0) end

function M.where(cond, a, b)
  return new(C.dpl_where, handle(cond, "where condition"), handle(a, "where a"), handle(b, "where b"))
end
-- x * a + b in one pass, the three broadcast together
function M.muladd(x, a, b)
  return new(C.dpl_muladd, handle(x, "muladd x"), handle(a, "muladd a"), handle(b, "muladd b"))
end

-- ---- reductions ---------------------------------------------------------------------------------------------------
local REDUCE = {sum = 0, mean = 1, max = 2, min = 3, argmax = 4, argmin = 5, var = 6}
M.REDUCE = REDUCE

-- t:sum(), t:sum(2), t:sum({2, 3}, true); keepdim defaults to false as in PyTorch
local REDUCE_NAME = {}
for name, op in pairs(REDUCE) do REDUCE_NAME[op] = name end

local function reduce(op, t, dims, keepdim, unbiased)
  local c = handle(t)
  local list = type(dims) == "table" and dims or (dims and {dims} or {})
  local arr = int_array(#list > 0 and #list or 1)
  local n, seen = C.dpl_tensor_ndim(c), {}
  for i = 1, #list do
    local cd = cdim(list[i], c, REDUCE_NAME[op])
    local pos = cd < 0 and cd + n or cd
    if seen[pos] then
      error(("%s: dim %d is repeated in the dims given for a tensor of shape %s"):format(REDUCE_NAME[op], pos + 1,
            shape_str(c)), 3)
    end
    seen[pos] = true
    arr[i - 1] = cd
  end
  return new(C.dpl_reduce, op, c, #list, arr, keepdim and 1 or 0, unbiased and 1 or 0)
end

for name, op in pairs(REDUCE) do
  if name ~= "var" then
    Tensor[name] = function(t, dims, keepdim) return reduce(op, t, dims, keepdim, false) end
  end
end
-- unbiased by default, as torch.var
function Tensor.var(t, dims, keepdim, unbiased)
  if unbiased == nil then unbiased = true end
  return reduce(REDUCE.var, t, dims, keepdim, unbiased)
end
function Tensor.std(t, dims, keepdim, unbiased) return Tensor.sqrt(Tensor.var(t, dims, keepdim, unbiased)) end

-- ---- linear algebra -----------------------------------------------------------------------------------------------
function Tensor.matmul(a, b) return new(C.dpl_matmul, handle(a), handle(b, "matmul right operand")) end
Tensor.mm = Tensor.matmul

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
  local flat = Tensor.reshape(t, -1)
  local buf = Tensor.float_data(Tensor.narrow(flat, 1, 1, preview_n))
  local parts = {}
  for i = 0, preview_n - 1 do parts[#parts + 1] = fmt(buf[i]) end
  if n > preview_n then parts[#parts + 1] = ("... (%d values)"):format(n) end
  return head .. "\n  " .. table.concat(parts, " ")
end

-- ---- operators ----------------------------------------------------------------------------------------------------
mt.__add = function(a, b) return binary(BINARY.add, a, b) end
mt.__sub = function(a, b) return binary(BINARY.sub, a, b) end
mt.__mul = function(a, b) return binary(BINARY.mul, a, b) end     -- elementwise, as PyTorch's *
mt.__div = function(a, b) return binary(BINARY.div, a, b) end
mt.__pow = function(a, b) return binary(BINARY.pow, a, b) end
mt.__unm = function(a) return Tensor.neg(a) end
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

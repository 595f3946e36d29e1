-- dpl.ops.shape: views (view, reshape, narrow, select, permute, transpose, expand, squeeze, unsqueeze), copies
-- (contiguous, clone, to, copy_, fill_), joining and splitting (cat, split, chunk), with their gradients. Views share
-- the storage of their input; dims and indices are 1-based, negative ones count from the end.
local ffi = require "ffi"
local dffi = require "dpl.ffi"
local T = require "dpl.tensor"
local A = require "dpl.autograd"
local C = dffi.C
local new, handle, cdim, cindex, shape_args, shape_str = T.new, T.handle, T.cdim, T.cindex, T.shape_args, T.shape_str

local M = {}
local int_array = ffi.typeof("int[?]")

-- A new tensor of zeros on t's device.
function M.new_zeros(t, shape)
  local n, arr = shape_args(shape)
  return new(C.dpl_tensor_full, C.dpl_tensor_device(handle(t)), n, arr, 0)
end

-- a view op: forward(x, ...) and grad(g, x, ...) -> dL/dx
local function view_op(name, forward, grad)
  M[name] = A.op {name = name, inputs = 1, forward = forward,
                  backward = function(c, g) return grad(g, unpack(c, 1, c.n)) end}
end

local function reshape_back(g, x) return g:reshape(x:size()) end

view_op("view", function(t, ...)
  local n, arr = shape_args(...)
  return new(C.dpl_tensor_view, handle(t), n, arr)
end, reshape_back)
view_op("reshape", function(t, ...)
  local n, arr = shape_args(...)
  return new(C.dpl_tensor_reshape, handle(t), n, arr)
end, reshape_back)
view_op("narrow", function(t, d, start, length)
  local c = handle(t)
  local cd = cdim(d, c, "narrow")
  -- start may be one past the end for an empty narrow
  local s0 = cindex(start, c, cd, "narrow", "start", 1)
  T.int_arg("narrow", "length", length)
  local size = tonumber(C.dpl_tensor_size(c, cd))
  local first = s0 < 0 and s0 + size or s0
  if length < 0 or first + length > size then
    error(("narrow: start %d and length %d are out of range for dim %d (size %d) of a tensor of shape %s"):format(
      start, length, d, size, shape_str(c)), 2)
  end
  return new(C.dpl_tensor_narrow, c, cd, s0, length)
end, function(g, x, d, start, length)
  local z = M.new_zeros(g, x:size())
  z:narrow(d, start, length):copy_(g)
  return z
end)
view_op("select", function(t, d, index)
  local c = handle(t)
  local cd = cdim(d, c, "select")
  return new(C.dpl_tensor_select, c, cd, cindex(index, c, cd, "select", "index"))
end, function(g, x, d, index)
  local z = M.new_zeros(g, x:size())
  z:select(d, index):copy_(g)
  return z
end)
view_op("permute", function(t, ...)
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
end, function(g, x, ...)
  local dims = type((...)) == "table" and (...) or {...}
  local nd, inv = #dims, {}
  for i, d in ipairs(dims) do inv[(d < 0 and nd + d + 1 or d)] = i end
  return g:permute(inv)
end)
view_op("transpose", function(t, d0, d1)
  local c = handle(t)
  return new(C.dpl_tensor_transpose, c, cdim(d0, c, "transpose"), cdim(d1, c, "transpose"))
end, function(g, x, d0, d1) return g:transpose(d0, d1) end)
view_op("expand", function(t, ...)
  local n, arr = shape_args(...)
  return new(C.dpl_tensor_expand, handle(t), n, arr)
end, function(g, x) return A.sum_to(g, x:size()) end)
view_op("squeeze", function(t, d)
  local c = handle(t)
  return new(C.dpl_tensor_squeeze, c, d and cdim(d, c, "squeeze") or C.DPL_ALL_DIMS)
end, reshape_back)
view_op("unsqueeze", function(t, d)
  local c = handle(t)
  -- unsqueeze(-1) appends a dim, as in torch
  return new(C.dpl_tensor_unsqueeze, c, cdim(d, c, "unsqueeze", 1))
end, reshape_back)
view_op("contiguous", function(t) return new(C.dpl_tensor_contiguous, handle(t)) end, function(g) return g end)
view_op("clone", function(t) return new(C.dpl_tensor_clone, handle(t)) end, function(g) return g end)
view_op("to", function(t, device) return new(C.dpl_tensor_to_device, handle(t), T.resolve_device(device)) end,
  function(g, x) return g:to(x) end)

function M.view_as(t, o) return M.view(t, o:size()) end
function M.expand_as(t, o) return M.expand(t, o:size()) end
function M.flatten(t) return M.reshape(t, -1) end
function M.cpu(t) return M.to(t, "cpu") end
function M.t(t)
  if t:dim() ~= 2 then error("t: needs a 2-d tensor, got " .. t:dim() .. "-d", 2) end
  return M.transpose(t, 1, 2)
end

-- ---- in place (no gradient) -----------------------------------------------------------------------------------------
function M.copy_(t, src)
  dffi.check(C.dpl_tensor_copy_(handle(t), handle(src, "copy_ source")), 2)
  return t
end
function M.fill_(t, v)
  dffi.check(C.dpl_tensor_fill_(handle(t), v), 2)
  return t
end
function M.zero_(t) return M.fill_(t, 0) end

-- ---- joining and splitting ------------------------------------------------------------------------------------------
local function norm(d, nd) return d < 0 and nd + d + 1 or d end

-- cat({a, b, ...}, dim): sizes must agree except along dim (Inception, DenseNet and Fire modules)
local cat = A.op {name = "cat", inputs = "list",
  forward = function(list, d, out_shape)
    return A.no_grad(function()
      local o = M.new_zeros(list[1], out_shape)
      local at = 1
      for _, t in ipairs(list) do
        local n = t:size(d)
        if n > 0 then o:narrow(d, at, n):copy_(t) end
        at = at + n
      end
      return o
    end)
  end,
  backward = function(c, g)
    local list, d = c[1], c[2]
    local grads, at = {}, 1
    for i, t in ipairs(list) do
      local n = t:size(d)
      grads[i] = t.requires_grad and g:narrow(d, at, n):contiguous() or nil
      at = at + n
    end
    return grads
  end}

function M.cat(list, dim)
  dim = dim or 1
  if type(list) ~= "table" or #list == 0 then error("cat: expected a non-empty list of tensors", 2) end
  local first = list[1]
  local nd = first:dim()
  local d = norm(dim, nd)
  if d < 1 or d > nd then error(("cat: dim %d out of range for %d-d tensors"):format(dim, nd), 2) end
  local shape = first:size()
  local total = 0
  for i, t in ipairs(list) do
    local s = t:size()
    if #s ~= nd then error(("cat: tensor %d has %d dims, tensor 1 has %d"):format(i, #s, nd), 2) end
    for k = 1, nd do
      if k ~= d and s[k] ~= shape[k] then
        error(("cat: tensor %d has shape %s, incompatible with %s outside dim %d"):format(i, tostring(s),
          tostring(shape), d), 2)
      end
    end
    if t:device() ~= first:device() then error(("cat: tensor %d is on %s, tensor 1 on %s"):format(i, t:device(),
      first:device()), 2) end
    total = total + s[d]
  end
  local out_shape = {}
  for k = 1, nd do out_shape[k] = shape[k] end
  out_shape[d] = total
  return cat(list, d, out_shape)
end

-- split(t, size_or_sizes, dim): views of `size` along dim (the last may be smaller), or of the listed sizes
function M.split(t, sizes, dim)
  dim = dim or 1
  local d = norm(dim, t:dim())
  if d < 1 or d > t:dim() then error(("split: dim %d out of range for a %d-d tensor"):format(dim, t:dim()), 2) end
  local n = t:size(d)
  local list = {}
  if type(sizes) == "number" then
    if sizes < 1 or sizes ~= math.floor(sizes) then
      error(("split: the split size must be a positive integer, got %s (shape %s)"):format(tostring(sizes),
        tostring(t:size())), 2)
    end
    local at = 1
    while at <= n do
      local len = math.min(sizes, n - at + 1)
      list[#list + 1] = t:narrow(d, at, len)
      at = at + len
    end
  else
    local at, sum = 1, 0
    for _, s in ipairs(sizes) do
      if type(s) ~= "number" or s < 0 or s ~= math.floor(s) then
        error(("split: sizes must be non-negative integers, got %s"):format(tostring(s)), 2)
      end
      sum = sum + s
    end
    if sum ~= n then error(("split: sizes add up to %d but dim %d has %d"):format(sum, d, n), 2) end
    for _, s in ipairs(sizes) do
      list[#list + 1] = t:narrow(d, at, s)
      at = at + s
    end
  end
  return list
end

function M.chunk(t, chunks, dim)
  dim = dim or 1
  if type(chunks) ~= "number" or chunks < 1 or chunks ~= math.floor(chunks) then
    error(("chunk: the number of chunks must be a positive integer, got %s"):format(tostring(chunks)), 2)
  end
  local n = t:size(norm(dim, t:dim()))
  return M.split(t, math.max(math.ceil(n / chunks), 1), dim)
end

return M

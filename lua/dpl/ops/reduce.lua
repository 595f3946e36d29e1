-- dpl.ops.reduce: reductions over dims (sum, mean, max, min, var, argmax, argmin) and matmul, with their gradients.
-- t:sum(), t:sum(2), t:sum({2, 3}, true): dims are 1-based (negative from the end); keepdim defaults to false as in
-- PyTorch.
local ffi = require "ffi"
local dffi = require "dpl.ffi"
local T = require "dpl.tensor"
local A = require "dpl.autograd"
local C = dffi.C
local new, handle, cdim, wants = T.new, T.handle, T.cdim, A.wants

local M = {}
M.REDUCE = dffi.enum("dpl_reduce_op")   -- {sum = 0, mean = 1, ...}
local REDUCE = M.REDUCE
local int_array = ffi.typeof("int[?]")

local function reduce(name, t, dims, keepdim, unbiased)
  local c = handle(t)
  local list = type(dims) == "table" and dims or (dims and {dims} or {})
  local arr = int_array(#list > 0 and #list or 1)
  local n, seen = C.dpl_tensor_ndim(c), {}
  for i = 1, #list do
    local cd = cdim(list[i], c, name)
    local pos = cd < 0 and cd + n or cd
    if seen[pos] then
      error(("%s: dim %d is repeated in the dims given for a tensor of shape %s"):format(name, pos + 1,
            T.shape_str(c)), 3)
    end
    seen[pos] = true
    arr[i - 1] = cd
  end
  return new(C.dpl_reduce, REDUCE[name], c, #list, arr, keepdim and 1 or 0, unbiased and 1 or 0)
end

-- the reduced dims of x as positive 1-based numbers (all of them for nil)
local function norm_dims(x, dims)
  local nd = x:dim()
  local list = type(dims) == "table" and dims or (dims and {dims} or nil)
  local out = {}
  if not list then for i = 1, nd do out[i] = i end return out end
  for i, d in ipairs(list) do out[i] = d < 0 and nd + d + 1 or d end
  return out
end

-- g (reduced, maybe without keepdim) -> broadcastable to x's shape
local function unreduce(g, x, dims, keepdim)
  if keepdim then return g end
  local shape, kshape, red = x:size(), {}, {}
  for _, d in ipairs(norm_dims(x, dims)) do red[d] = true end
  for i = 1, #shape do kshape[i] = red[i] and 1 or shape[i] end
  return g:reshape(kshape)
end

local function count(x, dims)
  local n, shape = 1, x:size()
  for _, d in ipairs(norm_dims(x, dims)) do n = n * shape[d] end
  return n
end

-- grad(g broadcastable to x, x, y, dims, keepdim, unbiased) -> dL/dx
local function reduce_op(name, grad)
  M[name] = A.op {name = name, inputs = 1,
    forward = function(x, dims, keepdim, unbiased) return reduce(name, x, dims, keepdim, unbiased) end,
    backward = function(c, g)
      local x, dims, keepdim = c[1], c[2], c[3]
      return grad(unreduce(g, x, dims, keepdim), x, c.y, dims, keepdim, c[4])
    end}
end

reduce_op("sum", function(g, x) return g:expand_as(x):contiguous() end)
reduce_op("mean", function(g, x, y, dims) return (g / count(x, dims)):expand_as(x):contiguous() end)
reduce_op("var", function(g, x, y, dims, keepdim, unbiased)
  local n = count(x, dims)
  return g * (x - M.mean(x, dims, true)) * (2 / (unbiased and (n - 1) or n))
end)
-- max/min over dims: the gradient is shared equally by the elements equal to the result (torch's amax/amin rule)
local function extreme_grad(g, x, y, dims, keepdim)
  local mask = x:eq(unreduce(y, x, dims, keepdim))
  return g * mask / M.sum(mask, dims, true)
end
reduce_op("max", extreme_grad)
reduce_op("min", extreme_grad)

-- indices as floats (0-based, as PyTorch), no gradient
function M.argmax(t, dim, keepdim) return reduce("argmax", t, dim, keepdim) end
function M.argmin(t, dim, keepdim) return reduce("argmin", t, dim, keepdim) end
for name in pairs(REDUCE) do
  if not M[name] then error("ops/reduce.lua: reduce op '" .. name .. "' of dpl.h has no Lua definition") end
end

-- unbiased by default, as torch.var / torch.std
local var = M.var
function M.var(t, dims, keepdim, unbiased)
  if unbiased == nil then unbiased = true end
  return var(t, dims, keepdim, unbiased)
end
function M.std(t, dims, keepdim, unbiased) return M.var(t, dims, keepdim, unbiased):sqrt() end

-- ---- matmul ---------------------------------------------------------------------------------------------------------
local function mT(x) return x:transpose(-1, -2) end
M.matmul = A.op {name = "matmul", inputs = 2,
  forward = function(a, b) return new(C.dpl_matmul, handle(a), handle(b, "matmul right operand")) end,
  backward = function(c, g)
    local a, b = c[1], c[2]
    local a2 = a:dim() == 1 and a:unsqueeze(1) or a
    local b2 = b:dim() == 1 and b:unsqueeze(-1) or b
    if a:dim() == 1 then g = g:unsqueeze(-2) end
    if b:dim() == 1 then g = g:unsqueeze(-1) end
    return wants(a) and A.sum_to(M.matmul(g, mT(b2)), a2:size()):reshape(a:size()),
           wants(b) and A.sum_to(M.matmul(mT(a2), g), b2:size()):reshape(b:size())
  end}
M.mm = M.matmul

return M

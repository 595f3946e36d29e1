-- dpl.ops: every op on tensors, and the one place where they become Tensor methods and operators.
--
--   ops/elementwise.lua   unary and binary ops (op codes from dpl.h's enums), where, muladd
--   ops/reduce.lua        sum, mean, max, min, var, std, argmax, argmin, matmul
--   ops/shape.lua         views, copies, cat / split / chunk
--   ops/conv.lua          conv2d, conv_transpose2d and their gradient kernels
--   ops/spatial.lua       pooling, padding, resizing
--   ops/norm.lua          batch normalization
--
-- Each differentiable op is declared there once with its gradient (dpl.autograd's registry). The type's own accessors
-- (size, dim, item, totable, ...) are in lua/dpl/tensor.lua; every other Tensor method is installed below.
local T = require "dpl.tensor"
local A = require "dpl.autograd"
local E = require "dpl.ops.elementwise"
local R = require "dpl.ops.reduce"
local S = require "dpl.ops.shape"

local Tensor, mt = T.Tensor, T.mt

local M = {
  elementwise = E, reduce = R, shape = S,
  conv = require "dpl.ops.conv",
  spatial = require "dpl.ops.spatial",
  norm = require "dpl.ops.norm",
}

-- In-place ops on tensors that take part in autograd would corrupt saved values: refuse them.
local function guard(name, fn)
  return function(t, ...)
    if A.enabled and t.requires_grad then
      error(name .. ": in-place op on a tensor that requires grad (use dpl.no_grad or an out-of-place op)", 2)
    end
    return fn(t, ...)
  end
end

-- ---- the Tensor methods -------------------------------------------------------------------------------------------
for name, op in pairs(E.BINARY) do
  Tensor[name] = E[name]
  Tensor[name .. "_"] = guard(name .. "_", function(a, b) return E.binary_(op, a, b) end)
end
for name, fn in pairs(E.unary) do
  local op = E.UNARY[name]
  Tensor[name] = fn
  Tensor[name .. "_"] = guard(name .. "_", function(x) return E.unary_(op, x) end)
end
Tensor.clamp, Tensor.clamp_, Tensor.affine = E.clamp, guard("clamp_", E.clamp_), E.affine

for _, name in ipairs {"sum", "mean", "max", "min", "var", "std", "argmax", "argmin", "matmul", "mm"} do
  Tensor[name] = R[name]
end

for _, name in ipairs {"view", "reshape", "view_as", "flatten", "narrow", "select", "permute", "transpose", "t",
                       "expand", "expand_as", "squeeze", "unsqueeze", "contiguous", "clone", "to", "cpu", "new_zeros",
                       "split", "chunk"} do
  Tensor[name] = S[name]
end
for _, name in ipairs {"copy_", "fill_", "zero_"} do Tensor[name] = guard(name, S[name]) end

for _, name in ipairs {"requires_grad_", "detach", "is_leaf", "retain_grad", "backward"} do Tensor[name] = A[name] end

-- ---- operators ------------------------------------------------------------------------------------------------------
mt.__add = E.add                 -- each takes a number on either side
mt.__sub = E.sub
mt.__mul = E.mul                 -- elementwise, as PyTorch's *
mt.__div = E.div
mt.__pow = E.pow
local neg = E.neg
mt.__unm = function(a) return neg(a) end    -- (LuaJIT passes the operand twice)

return M

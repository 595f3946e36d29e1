-- dpl.ops.elementwise: unary and binary elementwise ops, where and muladd, each with its gradient.
--
-- The op codes come from the enums of runtime/include/dpl.h (dpl_unary_op, dpl_binary_op): every unary op of the
-- header becomes a function (and, through lua/dpl/ops/init.lua, a Tensor method and its in-place `_` form) as soon as
-- UNARY_GRAD below states its gradient; loading fails with a clear message while one is missing.
local dffi = require "dpl.ffi"
local T = require "dpl.tensor"
local A = require "dpl.autograd"
local C = dffi.C
local new, handle, is_tensor, wants = T.new, T.handle, T.is_tensor, A.wants

local M = {}
M.BINARY = dffi.enum("dpl_binary_op")   -- {add = 0, sub = 1, ...}
M.UNARY = dffi.enum("dpl_unary_op")     -- {neg = 0, exp = 1, ...}
local BINARY, UNARY = M.BINARY, M.UNARY
local BINARY_NAME = {}
for name, op in pairs(BINARY) do BINARY_NAME[op] = name end

-- ---- binary ---------------------------------------------------------------------------------------------------------
-- op(a, b) where either may be a number
local function binary(op, a, b)
  if is_tensor(a) then
    if is_tensor(b) then return new(C.dpl_binary, op, handle(a), handle(b)) end
    if type(b) ~= "number" then error(BINARY_NAME[op] .. ": expected a tensor or a number, got " .. type(b), 3) end
    return new(C.dpl_binary_scalar, op, handle(a), b, 0)
  end
  if type(a) ~= "number" then error(BINARY_NAME[op] .. ": expected a tensor or a number, got " .. type(a), 3) end
  return new(C.dpl_binary_scalar, op, handle(b), a, 1)
end

-- a:op_(b): in place into a
function M.binary_(op, a, b)
  if is_tensor(b) then dffi.check(C.dpl_binary_into(op, handle(a), handle(a), handle(b)), 3)
  elseif type(b) == "number" then dffi.check(C.dpl_binary_scalar_into(op, handle(a), handle(a), b, 0), 3)
  else error(BINARY_NAME[op] .. "_: expected a tensor or a number, got " .. type(b), 3) end
  return a
end

local function binary_op(name, backward)
  local op = BINARY[name]
  M[name] = A.op {name = name, inputs = 2, broadcast = true, backward = backward,
                  forward = function(a, b) return binary(op, a, b) end}
end

binary_op("add", function(c, g) return wants(c[1]) and g, wants(c[2]) and g end)
binary_op("sub", function(c, g) return wants(c[1]) and g, wants(c[2]) and -g end)
binary_op("mul", function(c, g) return wants(c[1]) and g * c[2], wants(c[2]) and g * c[1] end)
binary_op("div", function(c, g)
  local a, b = c[1], c[2]
  return wants(a) and g / b, wants(b) and -(g * a) / (b * b)
end)
binary_op("pow", function(c, g)
  local a, b, y = c[1], c[2], c.y
  local ga, gb
  if wants(a) then ga = g * b * M.pow(a, type(b) == "number" and b - 1 or M.sub(b, 1)) end
  if wants(b) then
    -- d/db a^b = a^b ln a (0 where a == 0 and b > 0, as torch)
    if type(a) == "number" then gb = g * y * math.log(a)
    else
      local lna = M.log(a)
      gb = g * y * M.where(M.eq(a, 0), lna * 0, lna)
    end
  end
  return ga, gb
end)
-- ties share the gradient equally, as torch.maximum / torch.minimum
local function minmax_grad(cmp)
  return function(c, g)
    local a, b = c[1], c[2]
    local wa = M[cmp](a, b) + M.eq(a, b) * 0.5
    return wants(a) and g * wa, wants(b) and g * M.sub(1, wa)
  end
end
binary_op("maximum", minmax_grad("gt"))
binary_op("minimum", minmax_grad("lt"))

-- comparisons: 1 or 0, no gradient
for _, name in ipairs {"eq", "ne", "lt", "le", "gt", "ge"} do
  local op = BINARY[name]
  M[name] = function(a, b) return binary(op, a, b) end
end
-- relu_grad(g, x): g where x > 0, else 0 (ReLU's gradient in one pass, as torch's threshold_backward); no gradient
M.relu_grad = function(g, x) return binary(BINARY.relu_grad, g, x) end
for name in pairs(BINARY) do
  if not M[name] then error("ops/elementwise.lua: binary op '" .. name .. "' of dpl.h has no Lua definition") end
end

-- ---- unary ----------------------------------------------------------------------------------------------------------
-- The gradient of each unary op of dpl.h: (g, x, y, p0, p1) -> dL/dx, with y = op(x) and p0, p1 the op's parameters.
local UNARY_GRAD = {
  neg = function(g) return -g end,
  exp = function(g, x, y) return g * y end,
  log = function(g, x) return g / x end,
  sqrt = function(g, x, y) return g / (y * 2) end,
  abs = function(g, x) return g * M.sign(x) end,
  square = function(g, x) return g * x * 2 end,
  rsqrt = function(g, x, y) return g * y * y * y * -0.5 end,
  sign = function(g) return g * 0 end,
  relu = function(g, x) return M.relu_grad(g, x) end,
  sigmoid = function(g, x, y) return g * y * M.sub(1, y) end,
  tanh = function(g, x, y) return g * M.sub(1, y * y) end,
  -- silu'(x) = s (1 + x (1 - s)) with s = sigmoid(x)
  silu = function(g, x)
    local s = M.sigmoid(x)
    return g * (s * (x * M.sub(1, s) + 1))
  end,
  -- the gradient passes where lo <= x <= hi, as torch.clamp
  clamp = function(g, x, y, lo, hi) return g * (M.ge(x, lo) * M.le(x, hi)) end,
  affine = function(g, x, y, scale) return g * scale end,
}

-- unary(op, x, p0, p1) -> y, differentiable through UNARY_GRAD
local function unary_op(name)
  local op, grad = UNARY[name], UNARY_GRAD[name]
  if not grad then
    error(("ops/elementwise.lua: unary op '%s' of dpl.h has no gradient rule in UNARY_GRAD"):format(name))
  end
  return A.op {name = name, inputs = 1,
    forward = function(x, p0, p1) return new(C.dpl_unary, op, handle(x), p0 or 0, p1 or 0) end,
    backward = function(c, g) return grad(g, c[1], c.y, c[2], c[3]) end}
end

-- x:op_(p0, p1): in place
function M.unary_(op, x, p0, p1)
  dffi.check(C.dpl_unary_into(op, handle(x), handle(x), p0 or 0, p1 or 0), 3)
  return x
end

M.unary = {}      -- name -> function(x) for the parameterless unary ops (installed as methods)
for name in pairs(UNARY) do
  local f = unary_op(name)
  if name ~= "clamp" and name ~= "affine" then M.unary[name] = f end
  M["_unary_" .. name] = f
end
for name, f in pairs(M.unary) do M[name] = f end

local clamp, affine = M._unary_clamp, M._unary_affine
function M.clamp(x, lo, hi) return clamp(x, lo or -math.huge, hi or math.huge) end
function M.clamp_(x, lo, hi) return M.unary_(UNARY.clamp, x, lo or -math.huge, hi or math.huge) end
-- x * scale + shift
function M.affine(x, scale, shift) return affine(x, scale, shift or 0) end

-- ---- three operands -------------------------------------------------------------------------------------------------
-- where(cond, a, b): cond != 0 ? a : b, broadcast
M.where = A.op {name = "where", inputs = 3, broadcast = true,
  forward = function(cond, a, b)
    return new(C.dpl_where, handle(cond, "where condition"), handle(a, "where a"), handle(b, "where b"))
  end,
  backward = function(c, g)
    local cond, a, b = c[1], c[2], c[3]
    local zero = g * 0
    return nil, wants(a) and M.where(cond, g, zero), wants(b) and M.where(cond, zero, g)
  end}

-- muladd(x, a, b) = x * a + b in one pass, the three broadcast together
M.muladd = A.op {name = "muladd", inputs = 3, broadcast = true,
  forward = function(x, a, b)
    return new(C.dpl_muladd, handle(x, "muladd x"), handle(a, "muladd a"), handle(b, "muladd b"))
  end,
  backward = function(c, g)
    local x, a, b = c[1], c[2], c[3]
    return wants(x) and g * a, wants(a) and g * x, wants(b) and g
  end}

return M

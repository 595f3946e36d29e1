-- dpl.autograd: reverse-mode automatic differentiation over dpl tensors.
--
--   local x = dpl.randn(3, 4):requires_grad_()
--   local y = (x * x):sum()
--   y:backward()            -- x.grad == 2x
--
-- Every differentiable op records, when grad mode is on and an input requires grad, a node holding its inputs and a
-- function from the output's gradient to the inputs' gradients. backward() walks the nodes in reverse topological
-- order, accumulating gradients; leaves (tensors created by the user with requires_grad) receive `.grad`. The graph's
-- saved tensors are released after backward unless retain_graph is set, so a second backward is a clear error.
-- Gradients are themselves computed with dpl ops, so they run on the tensors' device (Vulkan or CPU).
local T = require "dpl.tensor"
local Tensor = T.Tensor

local A = {enabled = true}

-- ---- grad mode ------------------------------------------------------------------------------------------------------
-- Runs fn(...) with gradient recording off (as torch.no_grad), restoring the mode even on error.
function A.no_grad(fn, ...)
  local prev = A.enabled
  A.enabled = false
  local function finish(ok, ...)
    A.enabled = prev
    if not ok then error((...), 0) end
    return ...
  end
  return finish(pcall(fn, ...))
end

function A.set_enabled(on)
  local prev = A.enabled
  A.enabled = on and true or false
  return prev
end

-- ---- tensor fields ------------------------------------------------------------------------------------------------
function Tensor.requires_grad_(t, on)
  if on == nil then on = true end
  if on and t.grad_fn then error("requires_grad_: only leaf tensors can be made to require grad", 2) end
  t.requires_grad = on and true or nil
  return t
end

-- A tensor sharing data with t but cut from the graph.
function Tensor.detach(t)
  return T.new(T.C.dpl_tensor_ref, T.handle(t))
end

function Tensor.is_leaf(t) return t.grad_fn == nil end

local function needs_grad(...)
  if not A.enabled then return false end
  for i = 1, select("#", ...) do
    local x = select(i, ...)
    if T.is_tensor(x) and x.requires_grad then return true end
  end
  return false
end
A.needs_grad = needs_grad

-- Node: op name, inputs (tensors or nils), backward(g) -> gradients for each input (nil where not needed)
local function record(name, out, inputs, backward)
  out.requires_grad = true
  out.grad_fn = {name = name, inputs = inputs, backward = backward}
  return out
end
A.record = record

-- ---- helpers ------------------------------------------------------------------------------------------------------
-- Sums g down to `shape` (undoing broadcasting): leading extra dims and dims where shape has size 1.
local function sum_to(g, shape)
  local gs = g:size()
  if gs == shape then return g end
  local lead = #gs - #shape
  local dims = {}
  for i = 1, #gs do
    if i <= lead or (shape[i - lead] == 1 and gs[i] ~= 1) then dims[#dims + 1] = i end
  end
  local r = #dims > 0 and g:sum(dims, true) or g
  return r:reshape(shape)
end
A.sum_to = sum_to

local function raw(name) return Tensor[name] end

-- ---- elementwise binary ops -----------------------------------------------------------------------------------------
local raw_add, raw_sub, raw_mul, raw_div, raw_pow = raw("add"), raw("sub"), raw("mul"), raw("div"), raw("pow")
local raw_max, raw_min = raw("maximum"), raw("minimum")

local function shape_of(x) return T.is_tensor(x) and x:size() or nil end

local function binary_op(name, rawfn, grads)
  Tensor[name] = function(a, b)
    local y = rawfn(a, b)
    if needs_grad(a, b) then
      local sa, sb = shape_of(a), shape_of(b)
      record(name, y, {T.is_tensor(a) and a or false, T.is_tensor(b) and b or false}, function(g)
        local ga, gb = grads(g, a, b, y)
        return {ga and sa and sum_to(ga, sa) or nil, gb and sb and sum_to(gb, sb) or nil}
      end)
    end
    return y
  end
end

local function ta(x) return T.is_tensor(x) end

binary_op("add", raw_add, function(g, a, b)
  return ta(a) and a.requires_grad and g or nil, ta(b) and b.requires_grad and g or nil
end)
binary_op("sub", raw_sub, function(g, a, b)
  return ta(a) and a.requires_grad and g or nil, ta(b) and b.requires_grad and -g or nil
end)
binary_op("mul", raw_mul, function(g, a, b)
  return ta(a) and a.requires_grad and g * b or nil, ta(b) and b.requires_grad and g * a or nil
end)
binary_op("div", raw_div, function(g, a, b)
  local ga = ta(a) and a.requires_grad and g / b or nil
  local gb = nil
  if ta(b) and b.requires_grad then gb = -(g * a) / (b * b) end
  return ga, gb
end)
binary_op("pow", raw_pow, function(g, a, b, y)
  local ga, gb
  if ta(a) and a.requires_grad then
    ga = g * b * raw_pow(a, type(b) == "number" and b - 1 or raw_sub(b, 1))
  end
  if ta(b) and b.requires_grad then
    -- d/db a^b = a^b ln a (0 where a == 0 and b > 0, as torch)
    local lna = raw("log")(a)
    gb = g * y * T.where(raw("eq")(a, 0) , raw_mul(lna, 0), lna)
  end
  return ga, gb
end)
-- ties share the gradient equally, as torch.maximum / torch.minimum
local function minmax_grads(cmp)
  return function(g, a, b)
    local wa = raw_add(raw(cmp)(a, b), raw_mul(raw("eq")(a, b), 0.5))
    local ga = ta(a) and a.requires_grad and g * wa or nil
    local gb = ta(b) and b.requires_grad and g * raw_sub(1, wa) or nil
    return ga, gb
  end
end
binary_op("maximum", raw_max, minmax_grads("gt"))
binary_op("minimum", raw_min, minmax_grads("lt"))

-- ---- unary ops ------------------------------------------------------------------------------------------------------
local function unary_op(name, grad)
  local rawfn = raw(name)
  Tensor[name] = function(x, p0, p1)
    local y = rawfn(x, p0, p1)
    if needs_grad(x) then
      record(name, y, {x}, function(g) return {grad(g, x, y, p0, p1)} end)
    end
    return y
  end
end

unary_op("neg", function(g) return -g end)
unary_op("exp", function(g, x, y) return g * y end)
unary_op("log", function(g, x) return g / x end)
unary_op("sqrt", function(g, x, y) return g / (y * 2) end)
unary_op("abs", function(g, x) return g * x:sign() end)
unary_op("square", function(g, x) return g * x * 2 end)
unary_op("rsqrt", function(g, x, y) return g * y * y * y * -0.5 end)
unary_op("sign", function(g) return raw_mul(g, 0) end)
unary_op("relu", function(g, x) return g * raw("gt")(x, 0) end)
unary_op("sigmoid", function(g, x, y) return g * y * raw_sub(1, y) end)
unary_op("tanh", function(g, x, y) return g * raw_sub(1, y * y) end)
-- silu'(x) = s (1 + x (1 - s)) with s = sigmoid(x)
unary_op("silu", function(g, x)
  local s = raw("sigmoid")(x)
  return g * (s * raw_add(raw_mul(x, raw_sub(1, s)), 1))
end)
unary_op("clamp", function(g, x, y, lo, hi)
  -- gradient passes where lo <= x <= hi, as torch.clamp
  local m = raw("ge")(x, lo or -math.huge) * raw("le")(x, hi or math.huge)
  return g * m
end)
unary_op("affine", function(g, x, y, scale) return g * scale end)

-- muladd(x, a, b) = x * a + b
local raw_muladd = T.muladd
T.muladd = function(x, a, b)
  local y = raw_muladd(x, a, b)
  if needs_grad(x, a, b) then
    local sx, sa, sb = x:size(), a:size(), b:size()
    record("muladd", y, {x, a, b}, function(g)
      return {x.requires_grad and sum_to(raw_mul(g, a), sx) or nil, a.requires_grad and sum_to(raw_mul(g, x), sa) or nil,
              b.requires_grad and sum_to(g, sb) or nil}
    end)
  end
  return y
end

-- where(cond, a, b)
local raw_where = T.where
T.where = function(c, a, b)
  local y = raw_where(c, a, b)
  if needs_grad(a, b) then
    local sa, sb = a:size(), b:size()
    record("where", y, {false, a, b}, function(g)
      local zero = raw_mul(g, 0)
      return {nil, a.requires_grad and sum_to(raw_where(c, g, zero), sa) or nil,
              b.requires_grad and sum_to(raw_where(c, zero, g), sb) or nil}
    end)
  end
  return y
end

-- ---- reductions -----------------------------------------------------------------------------------------------------
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
  local shape = x:size()
  local kshape = {}
  local red = {}
  for _, d in ipairs(norm_dims(x, dims)) do red[d] = true end
  for i = 1, #shape do kshape[i] = red[i] and 1 or shape[i] end
  return g:reshape(kshape)
end

local function reduce_op(name, grad)
  local rawfn = raw(name)
  Tensor[name] = function(x, dims, keepdim, extra)
    local y = rawfn(x, dims, keepdim, extra)
    if needs_grad(x) then
      record(name, y, {x}, function(g) return {grad(unreduce(g, x, dims, keepdim), x, y, dims, keepdim, extra)} end)
    end
    return y
  end
end

local function count(x, dims)
  local n, shape = 1, x:size()
  for _, d in ipairs(norm_dims(x, dims)) do n = n * shape[d] end
  return n
end

reduce_op("sum", function(g, x) return g:expand_as(x):contiguous() end)
reduce_op("mean", function(g, x, y, dims) return (g / count(x, dims)):expand_as(x):contiguous() end)
reduce_op("var", function(g, x, y, dims, keepdim, unbiased)
  if unbiased == nil then unbiased = true end
  local n = count(x, dims)
  local mean = raw("mean")(x, dims, true)
  return g * (x - mean) * (2 / (unbiased and (n - 1) or n))
end)
-- max/min over dims: the gradient is shared equally by the elements equal to the result (torch's amax/amin rule)
local function extreme_grad(g, x, y, dims, keepdim)
  local mask = raw("eq")(x, unreduce(y, x, dims, keepdim))
  local ties = raw("sum")(mask, dims, true)
  return g * mask / ties
end
reduce_op("max", extreme_grad)
reduce_op("min", extreme_grad)

-- ---- matmul ---------------------------------------------------------------------------------------------------------
local raw_matmul = raw("matmul")
local function mT(x) return x:transpose(-1, -2) end
Tensor.matmul = function(a, b)
  local y = raw_matmul(a, b)
  if needs_grad(a, b) then
    record("matmul", y, {a, b}, function(g)
      local A2 = a:dim() == 1 and a:unsqueeze(1) or a
      local B2 = b:dim() == 1 and b:unsqueeze(-1) or b
      local g2 = g
      if a:dim() == 1 then g2 = g2:unsqueeze(-2) end
      if b:dim() == 1 then g2 = g2:unsqueeze(-1) end
      local ga, gb
      if a.requires_grad then ga = sum_to(raw_matmul(g2, mT(B2)), A2:size()):reshape(a:size()) end
      if b.requires_grad then gb = sum_to(raw_matmul(mT(A2), g2), B2:size()):reshape(b:size()) end
      return {ga, gb}
    end)
  end
  return y
end
Tensor.mm = Tensor.matmul

-- ---- views and copies -----------------------------------------------------------------------------------------------
local function view_op(name, grad)
  local rawfn = raw(name)
  Tensor[name] = function(x, ...)
    local y = rawfn(x, ...)
    if needs_grad(x) then
      local args = {...}
      local n = select("#", ...)
      local shape = x:size()
      record(name, y, {x}, function(g) return {grad(g, shape, x, unpack(args, 1, n))} end)
    end
    return y
  end
end

view_op("view", function(g, shape) return g:reshape(shape) end)
view_op("reshape", function(g, shape) return g:reshape(shape) end)
view_op("squeeze", function(g, shape) return g:reshape(shape) end)
view_op("unsqueeze", function(g, shape) return g:reshape(shape) end)
view_op("contiguous", function(g) return g end)
view_op("clone", function(g) return g end)
view_op("expand", function(g, shape) return sum_to(g, shape) end)
view_op("transpose", function(g, shape, x, d0, d1) return g:transpose(d0, d1) end)
view_op("permute", function(g, shape, x, ...)
  local dims = type((...)) == "table" and (...) or {...}
  local nd = #dims
  local inv = {}
  for i, d in ipairs(dims) do inv[(d < 0 and nd + d + 1 or d)] = i end
  return g:permute(inv)
end)
view_op("narrow", function(g, shape, x, d, start, length)
  local z = g:new_zeros(shape)
  z:narrow(d, start, length):copy_(g)
  return z
end)
view_op("select", function(g, shape, x, d, index)
  local z = g:new_zeros(shape)
  z:select(d, index):copy_(g)
  return z
end)
view_op("to", function(g, shape, x) return raw("to")(g, x) end)

Tensor.view_as = function(t, o) return Tensor.view(t, o:size()) end
Tensor.expand_as = function(t, o) return Tensor.expand(t, o:size()) end
Tensor.t = function(t)
  if t:dim() ~= 2 then error("t: needs a 2-d tensor, got " .. t:dim() .. "-d", 2) end
  return Tensor.transpose(t, 1, 2)
end
Tensor.flatten = function(t) return Tensor.reshape(t, -1) end
Tensor.cpu = function(t) return Tensor.to(t, "cpu") end
Tensor.std = function(t, dims, keepdim, unbiased) return Tensor.sqrt(Tensor.var(t, dims, keepdim, unbiased)) end

function Tensor.new_zeros(t, shape)
  local n, arr = T.shape_args(shape)
  return T.new(T.C.dpl_tensor_full, T.C.dpl_tensor_device(T.handle(t)), n, arr, 0)
end

-- In-place ops on tensors that take part in autograd would corrupt saved values: refuse them.
for _, name in ipairs {"add_", "sub_", "mul_", "div_", "pow_", "maximum_", "minimum_", "neg_", "exp_", "log_",
                       "sqrt_", "abs_", "square_", "rsqrt_", "sign_", "relu_", "sigmoid_", "tanh_", "silu_", "clamp_",
                       "copy_", "fill_", "zero_"} do
  local rawfn = Tensor[name]
  if rawfn then
    Tensor[name] = function(t, ...)
      if A.enabled and t.requires_grad then
        error(name .. ": in-place op on a tensor that requires grad (use dpl.no_grad or an out-of-place op)", 2)
      end
      return rawfn(t, ...)
    end
  end
end

-- ---- backward -------------------------------------------------------------------------------------------------------
-- Computes gradients of t (a one-element tensor, or any tensor with an explicit `grad`) w.r.t. every leaf that
-- requires grad, accumulating into leaf.grad.
function Tensor.backward(t, grad, retain_graph)
  if not t.requires_grad then error("backward: the tensor does not require grad (no input required grad)", 2) end
  if grad == nil then
    if t:numel() ~= 1 then error("backward: grad can be omitted only for a one-element tensor (shape " ..
      tostring(t:size()) .. ")", 2) end
    grad = T.new(T.C.dpl_tensor_full, T.C.dpl_tensor_device(T.handle(t)), t:dim(), select(2, T.shape_args(t:size())), 1)
  end
  -- topological order of the nodes reachable from t
  local order, seen = {}, {}
  local function visit(x)
    local node = x.grad_fn
    if not node or seen[node] then return end
    seen[node] = true
    if node.freed then
      error("backward: trying to go through the graph a second time (its saved tensors were freed after the first "
        .. "backward; pass retain_graph = true to keep them)", 3)
    end
    for _, inp in ipairs(node.inputs) do
      if inp and inp.requires_grad then visit(inp) end
    end
    order[#order + 1] = x
  end
  visit(t)
  local grads = {[t] = grad}
  local prev = A.set_enabled(false)
  local ok, err = pcall(function()
    if not t.grad_fn then
      t.grad = t.grad and raw_add(t.grad, grad) or grad
      return
    end
    for i = #order, 1, -1 do
      local x = order[i]
      local g = grads[x]
      grads[x] = nil
      if g then
        local node = x.grad_fn
        local gin = node.backward(g)
        for k, inp in ipairs(node.inputs) do
          local gi = gin[k]
          if inp and inp.requires_grad and gi then
            if inp.grad_fn then
              grads[inp] = grads[inp] and raw_add(grads[inp], gi) or gi
            else
              inp.grad = inp.grad and raw_add(inp.grad, gi) or gi
            end
          end
        end
        if x.retains_grad then x.grad = x.grad and raw_add(x.grad, g) or g end
      end
    end
  end)
  A.set_enabled(prev)
  if not ok then error(err, 0) end
  if not retain_graph then
    for _, x in ipairs(order) do
      local node = x.grad_fn
      node.freed = true
      node.backward = nil
      node.inputs = {}
    end
  end
end

function Tensor.retain_grad(t) t.retains_grad = true; return t end

-- the metamethods route through the (now differentiable) methods
local mt = T.mt
mt.__add = function(a, b) if T.is_tensor(a) then return Tensor.add(a, b) end return Tensor.add(b, a) end
mt.__sub = function(a, b)
  if T.is_tensor(a) then return Tensor.sub(a, b) end
  return Tensor.add(Tensor.neg(b), a)
end
mt.__mul = function(a, b) if T.is_tensor(a) then return Tensor.mul(a, b) end return Tensor.mul(b, a) end
mt.__div = function(a, b)
  if T.is_tensor(a) then return Tensor.div(a, b) end
  -- s / b
  local y = T.binary(3, a, b)
  if needs_grad(b) then
    record("rdiv", y, {false, b}, function(g) return {nil, -(g * y) / b} end)
  end
  return y
end
mt.__pow = function(a, b)
  if T.is_tensor(a) then return Tensor.pow(a, b) end
  local y = T.binary(4, a, b)
  if needs_grad(b) then
    record("rpow", y, {false, b}, function(g) return {nil, g * y * math.log(a)} end)
  end
  return y
end
mt.__unm = function(a) return Tensor.neg(a) end

return A

-- Reverse-mode autograd: every differentiable op's gradient against central finite differences on the CPU (float32:
-- step 1e-2 on values of order 1, tolerance 2e-2 absolute + 2e-2 relative, points kept away from kinks), the same
-- gradients computed on Vulkan against the CPU, and the graph rules (accumulation, no_grad, freed graphs, leaves).
local dpl = require "dpl"
local test = require "dpl.test"
local S = test.suite("autograd")

local function leaf(shape, seed, device, lo, hi)
  local x = dpl.uniform(lo or -1, hi or 1, shape, {seed = seed, device = device or "cpu"})
  return x:requires_grad_()
end

-- numeric gradient of scalar f(inputs) w.r.t. inputs[k]
local function numeric_grad(f, inputs, k, eps)
  return test.numeric_grad(function(...)
    local args = {...}
    return dpl.no_grad(function() return f(unpack(args, 1, #inputs)):item() end)
  end, inputs, k, eps)
end

local function check_grads(t, name, f, inputs, opts)
  opts = opts or {}
  local y = f(unpack(inputs))
  y:backward()
  for k, x in ipairs(inputs) do
    if x.requires_grad then
      local num = numeric_grad(f, inputs, k, opts.eps or 1e-2)
      t:ok(x.grad ~= nil, name .. ": input " .. k .. " got no gradient")
      t:close(x.grad:reshape(-1), num, {atol = opts.atol or 2e-2, rtol = opts.rtol or 2e-2}, name .. " input " .. k)
    end
  end
  -- the same on Vulkan
  if dpl.vulkan_available() then
    local vin = {}
    for k, x in ipairs(inputs) do
      vin[k] = x:detach():to("vulkan")
      if x.requires_grad then vin[k]:requires_grad_() end
    end
    f(unpack(vin)):backward()
    for k, x in ipairs(inputs) do
      if x.requires_grad then
        t:close(vin[k].grad:cpu(), x.grad, {atol = 1e-4, rtol = 1e-4}, name .. " vulkan vs cpu, input " .. k)
      end
    end
  end
end

-- a scalar loss with fixed random weights of y's shape (the same numbers on every device)
local function wsum(y) return (y * dpl.uniform(-1, 1, y:size(), {seed = 99, device = y:device()})):sum() end

-- values 0.1 apart (no ties within the finite-difference step), for max/min
local function spaced(shape, seed)
  local n = 1
  for _, d in ipairs(shape) do n = n * d end
  local vals = {}
  for i = 1, n do vals[i] = ((i * 7 + seed) % n) * 0.1 - 1 end
  return dpl.tensor(vals):reshape(shape):requires_grad_()
end

S:add("binary ops with broadcasting", function(t)
  check_grads(t, "add", function(a, b) return wsum(a + b) end, {leaf({2, 3}, 1), leaf({3}, 2)})
  check_grads(t, "sub", function(a, b) return wsum(a - b) end, {leaf({2, 3}, 3), leaf({2, 1}, 4)})
  check_grads(t, "mul", function(a, b) return wsum(a * b) end, {leaf({2, 3}, 5), leaf({1, 3}, 6)})
  check_grads(t, "div", function(a, b) return wsum(a / b) end, {leaf({2, 3}, 7), leaf({2, 3}, 8, nil, 1, 2)})
  check_grads(t, "pow", function(a, b) return wsum(a ^ b) end, {leaf({2, 3}, 9, nil, 0.5, 2), leaf({2, 3}, 10)})
  check_grads(t, "maximum", function(a, b) return wsum(a:maximum(b)) end, {leaf({2, 3}, 11), leaf({2, 3}, 12)})
  check_grads(t, "minimum", function(a, b) return wsum(a:minimum(b)) end, {leaf({2, 3}, 13), leaf({2, 3}, 14)})
end)

S:add("scalar operands", function(t)
  check_grads(t, "x*2+1", function(a) return wsum(a * 2 + 1) end, {leaf({2, 3}, 15)})
  check_grads(t, "3-x", function(a) return wsum(3 - a) end, {leaf({2, 3}, 16)})
  check_grads(t, "2/x", function(a) return wsum(2 / a) end, {leaf({2, 3}, 17, nil, 1, 2)})
  check_grads(t, "x^3", function(a) return wsum(a ^ 3) end, {leaf({2, 3}, 18)})
  check_grads(t, "2^x", function(a) return wsum(2 ^ a) end, {leaf({2, 3}, 19)})
end)

S:add("unary ops", function(t)
  local pos = function(s) return leaf({2, 3}, s, nil, 0.5, 2) end
  for _, case in ipairs {
    {"neg", function(a) return wsum(-a) end, leaf({2, 3}, 20)},
    {"exp", function(a) return wsum(a:exp()) end, leaf({2, 3}, 21)},
    {"log", function(a) return wsum(a:log()) end, pos(22)},
    {"sqrt", function(a) return wsum(a:sqrt()) end, pos(23)},
    {"abs", function(a) return wsum(a:abs()) end, pos(24)},
    {"square", function(a) return wsum(a:square()) end, leaf({2, 3}, 25)},
    {"rsqrt", function(a) return wsum(a:rsqrt()) end, pos(26)},
    {"relu", function(a) return wsum(a:relu()) end, pos(27)},
    {"sigmoid", function(a) return wsum(a:sigmoid()) end, leaf({2, 3}, 28)},
    {"tanh", function(a) return wsum(a:tanh()) end, leaf({2, 3}, 29)},
    {"clamp", function(a) return wsum(a:clamp(-0.5, 0.5)) end, dpl.tensor({{-0.9, -0.2, 0.1}, {0.3, 0.8, -0.7}}):requires_grad_()},
    {"affine", function(a) return wsum(a:affine(3, 1)) end, leaf({2, 3}, 30)},
  } do
    check_grads(t, case[1], case[2], {case[3]})
  end
end)

S:add("muladd (x * a + b, broadcast as batch norm's scale and shift)", function(t)
  check_grads(t, "muladd", function(x, a, b) return wsum(dpl.muladd(x, a, b)) end,
              {leaf({2, 3, 4, 5}, 41), leaf({1, 3, 1, 1}, 42), leaf({3, 1, 1}, 43)})
  check_grads(t, "muladd same shapes", function(x, a, b) return wsum(dpl.muladd(x, a, b)) end,
              {leaf({3, 4}, 44), leaf({3, 4}, 45), leaf({4}, 46)})
end)

S:add("where", function(t)
  local c = dpl.tensor({{1, 0, 1}, {0, 0, 1}})
  check_grads(t, "where", function(a, b) return wsum(dpl.where(c:to(a), a, b)) end, {leaf({2, 3}, 31), leaf({3}, 32)})
end)

S:add("reductions", function(t)
  local x = function(s) return leaf({2, 3, 4}, s) end
  check_grads(t, "sum all", function(a) return a:sum() * 2 end, {x(33)})
  check_grads(t, "sum dim", function(a) return wsum(a:sum(3)) end, {x(34)})
  check_grads(t, "mean dims keepdim", function(a) return (a:mean({1, 3}, true) * dpl.tensor({{{1}, {2}, {3}}}):to(a)):sum() end, {x(35)})
  check_grads(t, "var", function(a) return wsum(a:var(3)) end, {x(36)})
  check_grads(t, "var biased", function(a) return wsum(a:var(3, false, false)) end, {x(37)})
  check_grads(t, "max dim", function(a) return wsum(a:max(3)) end, {spaced({2, 3, 4}, 38)})
  check_grads(t, "min all", function(a) return a:min() end, {spaced({2, 3, 4}, 39)})
end)

S:add("matmul 2-D, 1-D and batched", function(t)
  check_grads(t, "mm", function(a, b) return wsum(a:matmul(b)) end, {leaf({2, 4}, 40), leaf({4, 3}, 41)})
  check_grads(t, "vec-mat", function(a, b) return (a:matmul(b) * dpl.tensor({1, 2, 3}):to(a)):sum() end,
              {leaf({4}, 42), leaf({4, 3}, 43)})
  check_grads(t, "mat-vec", function(a, b) return (a:matmul(b) * dpl.tensor({1, -1}):to(a)):sum() end,
              {leaf({2, 4}, 44), leaf({4}, 45)})
  check_grads(t, "batched broadcast", function(a, b) return wsum(a:matmul(b):sum(1)) end,
              {leaf({3, 2, 4}, 46), leaf({4, 3}, 47)})
end)

S:add("views", function(t)
  local x = function(s) return leaf({2, 3, 4}, s) end
  check_grads(t, "reshape", function(a) return wsum(a:reshape(2, 12):narrow(2, 1, 3)) end, {x(48)})
  check_grads(t, "transpose", function(a) return wsum(a:transpose(1, 3):sum(1)) end, {x(49)})
  check_grads(t, "permute", function(a) return wsum(a:permute(3, 1, 2):sum(1)) end, {x(50)})
  check_grads(t, "narrow", function(a) return wsum(a:narrow(3, 2, 3):sum(3)) end, {x(51)})
  check_grads(t, "select", function(a) return wsum(a:select(3, 2)) end, {x(52)})
  check_grads(t, "expand", function(a) return wsum(a:expand(2, 3)) end, {leaf({3}, 53)})
  check_grads(t, "unsqueeze/squeeze", function(a) return wsum(a:unsqueeze(1):squeeze(1)) end, {leaf({2, 3}, 54)})
end)

S:add("cat and split", function(t)
  check_grads(t, "cat dim 2", function(a, b) return wsum(dpl.cat({a, b, a}, 2)) end, {leaf({2, 3}, 61), leaf({2, 2}, 62)})
  check_grads(t, "split", function(a)
    local parts = a:split({1, 3}, 2)
    return wsum(parts[2]) + parts[1]:sum() * 3
  end, {leaf({2, 4}, 63)})
  local x = dpl.arange(10):reshape(2, 5)
  t:close(dpl.cat(x:chunk(2, 2), 2), x)
  t:eq(#x:chunk(2, 2), 2)
  t:raises(function() dpl.cat({dpl.zeros(2, 3), dpl.zeros(3, 3)}, 2) end, "incompatible")
  t:raises(function() x:split({1, 1}, 2) end, "add up to")
end)

S:add("gradients accumulate, and only leaves that require grad get them", function(t)
  local a = leaf({3}, 55)
  local b = dpl.ones(3)
  local y = (a * b):sum()
  y:backward()
  y = (a * 2):sum()
  y:backward()
  t:close(a.grad, {3, 3, 3})
  t:ok(b.grad == nil, "b does not require grad")
  -- a tensor used twice in one expression
  local c = leaf({2}, 56)
  local z = (c * c + c):sum()
  z:backward()
  t:close(c.grad, ((c:detach() * 2) + 1):tolist(), {atol = 1e-6})
end)

S:add("no_grad records nothing; detach cuts the graph", function(t)
  local a = leaf({3}, 57)
  local y = dpl.no_grad(function() return a * 2 end)
  t:ok(not y.requires_grad and y.grad_fn == nil, "no graph inside no_grad")
  local d = (a * 2):detach()
  t:ok(not d.requires_grad, "detached")
  t:raises(function() d:sum():backward() end, "does not require grad")
end)

S:add("backward twice through a freed graph is a clear error; retain_graph allows it", function(t)
  local a = leaf({3}, 58)
  local y = (a:exp() * 2):sum()
  y:backward()
  t:raises(function() y:backward() end, "second time")
  local z = (a:exp() * 2):sum()
  z:backward(nil, true)
  z:backward()
  t:ok(a.grad ~= nil)
end)

S:add("in-place ops on tensors that require grad are refused", function(t)
  local a = leaf({3}, 59)
  t:raises(function() a:add_(1) end, "in-place")
  dpl.no_grad(function() a:add_(1) end)   -- allowed outside grad mode (optimizer updates)
end)

S:add("backward without a scalar needs an explicit gradient", function(t)
  local a = leaf({3}, 60)
  local y = a * 2
  t:raises(function() y:backward() end, "one-element")
  y:backward(dpl.tensor({1, 2, 3}))
  t:close(a.grad, {2, 4, 6})
end)

return S

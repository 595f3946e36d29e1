-- test_errors.lua: bad input gives a clear Lua error that names the op and the shapes involved (dims as the Lua user
-- wrote them, 1-based), never a crash, and leaves the runtime usable. Runs on the CPU and on Vulkan when available.
local dpl = require "dpl"
local ffi = require "ffi"
local test = require "dpl.test"
local S = test.suite("errors")

local HAVE_VK = dpl.vulkan_available()
local DEVICES = test.devices()
local each_device = test.each_device

-- fn must raise an error mentioning every string in `parts`
local function raises_all(t, fn, parts, what)
  local msg = t:raises(fn, parts[1], what)
  for i = 2, #parts do
    if not msg:find(parts[i], 1, true) then
      error({msg = ("%s: expected the error to mention '%s', got: %s"):format(what or "error", parts[i], msg)}, 0)
    end
  end
  return msg
end

S:add("mismatched shapes in binary ops", function(t)
  each_device(t, function(t, dev)
    local o = {device = dev}
    local a, b = dpl.zeros(2, 3, o), dpl.zeros(4, o)
    raises_all(t, function() return a + b end, {"add", "[2, 3]", "[4]", "broadcast"})
    for _, name in ipairs {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "lt", "le", "gt",
                           "ge"} do
      raises_all(t, function() return a[name](a, b) end, {name .. ":", "[2, 3]", "[4]"}, name)
      raises_all(t, function() return a[name .. "_"](a, b) end, {name .. ":", "[2, 3]", "[4]"}, name .. "_")
    end
    raises_all(t, function() return dpl.zeros(3, 1, o) - dpl.zeros(2, 4, o) end, {"sub", "[3, 1]", "[2, 4]"})
    -- in place: the result must have the shape of the tensor written
    raises_all(t, function() return dpl.zeros(3, o):add_(dpl.zeros(2, 3, o)) end, {"add", "[3]", "[2, 3]"})
    raises_all(t, function() return dpl.zeros(3, o):mul_(dpl.zeros(4, o)) end, {"mul", "[3]", "[4]"})
    -- not a tensor or a number
    raises_all(t, function() return a + "x" end, {"add", "string"})
    raises_all(t, function() return a * nil end, {"mul", "nil"})
    raises_all(t, function() return a:add_({}) end, {"add_", "table"})
    raises_all(t, function() return a:maximum(true) end, {"maximum", "boolean"})
  end)
end)

S:add("mismatched shapes in matmul", function(t)
  each_device(t, function(t, dev)
    local o = {device = dev}
    raises_all(t, function() return dpl.zeros(2, 3, o):matmul(dpl.zeros(4, 5, o)) end,
               {"matmul", "[2, 3]", "[4, 5]"})
    raises_all(t, function() return dpl.zeros(3, o):matmul(dpl.zeros(4, o)) end, {"matmul", "[3]", "[4]"})
    raises_all(t, function() return dpl.zeros(2, 3, 4, o):matmul(dpl.zeros(3, 4, 5, o)) end,
               {"matmul", "[2, 3, 4]", "[3, 4, 5]"}, "batch dims")
    raises_all(t, function() return dpl.zeros(2, 3, o):matmul(dpl.zeros(3, o):sum()) end, {"matmul", "dimension"})
    raises_all(t, function() return dpl.zeros(2, 3, o):matmul(5) end, {"matmul", "number"})
    raises_all(t, function() return dpl.zeros(7, 2, 3, o):mm(dpl.zeros(5, 4, o)) end, {"matmul", "[7, 2, 3]", "[5, 4]"})
  end)
end)

S:add("bad dims: 0 and out of range", function(t)
  each_device(t, function(t, dev)
    local x = dpl.zeros(2, 3, {device = dev})
    raises_all(t, function() return x:sum(0) end, {"sum", "1-based"})
    raises_all(t, function() return x:sum(3) end, {"sum", "dim 3", "[2, 3]"})
    raises_all(t, function() return x:sum(-3) end, {"sum", "dim -3", "[2, 3]"})
    raises_all(t, function() return x:mean({1, 4}) end, {"mean", "dim 4", "[2, 3]"})
    raises_all(t, function() return x:sum({2, 2}) end, {"sum", "repeated"})
    raises_all(t, function() return x:sum({1, -2}) end, {"sum", "repeated"})
    raises_all(t, function() return x:var(1.5) end, {"var", "integer"})
    raises_all(t, function() return x:narrow(0, 1, 1) end, {"narrow", "1-based"})
    raises_all(t, function() return x:narrow(3, 1, 1) end, {"narrow", "dim 3", "[2, 3]"})
    raises_all(t, function() return x:select(3, 1) end, {"select", "dim 3", "[2, 3]"})
    raises_all(t, function() return x:select(0, 1) end, {"select", "1-based"})
    raises_all(t, function() return x:transpose(1, 3) end, {"transpose", "dim 3", "[2, 3]"})
    raises_all(t, function() return x:transpose(0, 1) end, {"transpose", "1-based"})
    raises_all(t, function() return x:permute(1, 1) end, {"permute", "[2, 3]"})
    raises_all(t, function() return x:permute(1) end, {"permute", "1 dims", "2-d"})
    raises_all(t, function() return x:permute(1, 3) end, {"permute", "[2, 3]"})
    raises_all(t, function() return x:squeeze(3) end, {"squeeze", "dim 3", "[2, 3]"})
    raises_all(t, function() return x:squeeze(0) end, {"squeeze", "1-based"})
    raises_all(t, function() return x:unsqueeze(0) end, {"unsqueeze", "1-based"})
    raises_all(t, function() return x:unsqueeze(4) end, {"unsqueeze", "dim 4", "[2, 3]"})
    raises_all(t, function() return x:unsqueeze(-4) end, {"unsqueeze", "dim -4", "[2, 3]"})
    raises_all(t, function() return x:size(3) end, {"size", "dim 3"})
    raises_all(t, function() return x:size(0) end, {"size", "1-based"})
    raises_all(t, function() return x:stride(5) end, {"stride", "dim 5"})
    raises_all(t, function() return x:sum("a") end, {"sum", "string"})
    raises_all(t, function() return dpl.zeros(1, 1, 1, 1, 1, 1, 1, 1, {device = dev}):unsqueeze(1) end,
               {"unsqueeze", "8"})
    -- the valid extremes still work
    t:shape(x:unsqueeze(3), {2, 3, 1})
    t:shape(x:unsqueeze(-3), {1, 2, 3})
    t:shape(x:sum(-2), {3})
  end)
end)

S:add("argmax and argmin over several dims; reductions over empty dims", function(t)
  each_device(t, function(t, dev)
    local x = dpl.zeros(2, 3, 4, {device = dev})
    raises_all(t, function() return x:argmax({1, 2}) end, {"argmax", "one dim", "[2, 3, 4]"})
    raises_all(t, function() return x:argmin({2, 3}) end, {"argmin", "one dim", "[2, 3, 4]"})
    local e = dpl.zeros(3, 0, {device = dev})
    raises_all(t, function() return e:max(2) end, {"max", "empty", "[3, 0]"})
    raises_all(t, function() return e:argmin() end, {"argmin", "empty", "[3, 0]"})
    raises_all(t, function() return e:var(2) end, {"var", "empty", "[3, 0]"})
  end)
end)

S:add("bad view shapes and negative sizes", function(t)
  each_device(t, function(t, dev)
    local o = {device = dev}
    local x = dpl.zeros(2, 3, o)
    raises_all(t, function() return x:view(4, 5) end, {"view", "[4, 5]", "[2, 3]"})
    raises_all(t, function() return x:view(-1, 4) end, {"view", "[-1, 4]", "[2, 3]"})
    raises_all(t, function() return x:view(-1, -1) end, {"view", "-1"})
    raises_all(t, function() return x:view(-2, 3) end, {"view", "-2"})
    raises_all(t, function() return x:t():view(6) end, {"view", "[3, 2]", "reshape"})
    raises_all(t, function() return x:reshape(7) end, {"reshape", "[7]", "[2, 3]"})
    raises_all(t, function() return x:view(1.5, 4) end, {"integers", "1.5"})
    raises_all(t, function() return x:expand(4, 3) end, {"expand", "[2, 3]", "[4, 3]"})
    raises_all(t, function() return x:expand(3) end, {"expand", "[2, 3]", "[3]"})
    raises_all(t, function() return x:expand(-2, 2, 3) end, {"expand", "[2, 3]"})
    raises_all(t, function() return dpl.zeros(-1, 3, o) end, {"negative", "[-1, 3]"})
    raises_all(t, function() return dpl.empty(2, -2, o) end, {"negative", "[2, -2]"})
    raises_all(t, function() return dpl.full({-1}, 1, o) end, {"negative", "[-1]"})
    raises_all(t, function() return dpl.rand(-5, o) end, {"negative", "[-5]"})
    raises_all(t, function() return dpl.randn({3, -1}, o) end, {"negative", "[3, -1]"})
    raises_all(t, function() return dpl.zeros(2 ^ 21, 2 ^ 21, o) end, {"too large"})
    raises_all(t, function() return dpl.zeros(1, 1, 1, 1, 1, 1, 1, 1, 1, o) end, {"9 dimensions"})
    raises_all(t, function() return dpl.arange(0, 5, 0, o) end, {"arange", "step"})
    raises_all(t, function() return dpl.arange(0, 1 / 0, 1, o) end, {"arange", "finite"})
    raises_all(t, function() return dpl.tensor({{1, 2}, {3}}, o) end, {"dpl.tensor", "ragged"})
    raises_all(t, function() return dpl.tensor({1, "a"}, o) end, {"dpl.tensor", "number"})
    raises_all(t, function() return dpl.from_pointer(nil, {2}, o) end, {"NULL"})
  end)
end)

S:add("narrow and select out of range", function(t)
  each_device(t, function(t, dev)
    local x = dpl.zeros(2, 3, {device = dev})
    raises_all(t, function() return x:narrow(2, 2, 3) end, {"narrow", "[2, 3]", "out of"})
    raises_all(t, function() return x:narrow(2, 4, 1) end, {"narrow", "[2, 3]"})
    raises_all(t, function() return x:narrow(2, 1, -1) end, {"narrow", "[2, 3]"})
    raises_all(t, function() return x:narrow(2, 0, 1) end, {"narrow", "1-based"})
    raises_all(t, function() return x:narrow(2, -4, 1) end, {"narrow", "[2, 3]"})
    raises_all(t, function() return x:narrow(1, nil, 1) end, {"narrow", "nil"})
    raises_all(t, function() return x:select(1, 3) end, {"select", "index 3", "[2, 3]"})
    raises_all(t, function() return x:select(2, -4) end, {"select", "index -4", "[2, 3]"})
    raises_all(t, function() return x:select(1, 0) end, {"select", "1-based"})
    -- the extremes are fine
    t:shape(x:narrow(2, 3, 1), {2, 1})
    t:shape(x:narrow(2, 4, 0), {2, 0})
    t:shape(x:narrow(2, -3, 3), {2, 3})
    t:shape(x:select(2, -3), {2})
  end)
end)

S:add("tensors on different devices", function(t)
  if not HAVE_VK then
    t:skip("no Vulkan device (" .. ffi.string(dpl.C.dpl_vulkan_unavailable_reason()) .. ")")
  end
  local c, v = dpl.ones(2, 3, {device = "cpu"}), dpl.ones(2, 3, {device = "vulkan"})
  raises_all(t, function() return c + v end, {"add", "different devices", "cpu", "vulkan"})
  raises_all(t, function() return v:lt(c) end, {"lt", "different devices"})
  raises_all(t, function() return v:add_(c) end, {"add", "different devices"})
  raises_all(t, function() return c:matmul(v:t()) end, {"matmul", "different devices"})
  raises_all(t, function() return dpl.where(c, v, v) end, {"where", "different devices"})
  raises_all(t, function() return dpl.where(v, v, c) end, {"where", "different devices"})
  -- copies across devices are allowed
  t:close(dpl.zeros(2, 3, {device = "cpu"}):copy_(v), c)
end)

S:add("item() needs exactly one element", function(t)
  each_device(t, function(t, dev)
    raises_all(t, function() return dpl.zeros(2, 3, {device = dev}):item() end, {"item", "[2, 3]", "6 elements"})
    raises_all(t, function() return dpl.zeros(0, {device = dev}):item() end, {"item", "[0]", "0 elements"})
    t:eq(dpl.ones(1, 1, 1, {device = dev}):item(), 1)
  end)
end)

S:add("where with shapes that do not broadcast", function(t)
  each_device(t, function(t, dev)
    local o = {device = dev}
    raises_all(t, function() return dpl.where(dpl.zeros(2, 3, o), dpl.zeros(4, o), dpl.zeros(1, o)) end,
               {"where", "[2, 3]", "[4]"})
    raises_all(t, function() return dpl.where(dpl.zeros(3, o), dpl.zeros(3, o), dpl.zeros(2, 1, 5, o)) end,
               {"where", "[3]", "[2, 1, 5]"})
    raises_all(t, function() return dpl.where(nil, dpl.zeros(3, o), dpl.zeros(3, o)) end, {"where", "nil"})
    raises_all(t, function() return dpl.where(dpl.zeros(3, o), 1, dpl.zeros(3, o)) end, {"where", "number"})
  end)
end)

S:add("unknown device names", function(t)
  local before = dpl.device()
  raises_all(t, function() return dpl.device("vulkan:99") end, {"Vulkan device", HAVE_VK and "99" or "Vulkan"})
  raises_all(t, function() return dpl.device("gpu") end, {"unknown device", "gpu"})
  raises_all(t, function() return dpl.device("vulkan:") end, {"unknown device", "vulkan:"})
  raises_all(t, function() return dpl.device("vulkan:1x") end, {"unknown device", "vulkan:1x"})
  raises_all(t, function() return dpl.device("vulkan:-1") end, {"Vulkan device"})
  raises_all(t, function() return dpl.device("CPU") end, {"unknown device", "CPU"})
  raises_all(t, function() return dpl.zeros(2, {device = "gpu"}) end, {"unknown device", "gpu"})
  raises_all(t, function() return dpl.zeros(2):to("tpu") end, {"unknown device", "tpu"})
  raises_all(t, function() return dpl.stat("bytes", "gpu") end, {"unknown device"})
  t:eq(dpl.device(), before, "a failed dpl.device() leaves the default device alone")
  if not HAVE_VK then
    raises_all(t, function() return dpl.zeros(2, {device = "vulkan"}) end, {"no Vulkan device"})
  end
end)

S:add("clamp with min greater than max", function(t)
  each_device(t, function(t, dev)
    local x = dpl.zeros(3, {device = dev})
    raises_all(t, function() return x:clamp(2, 1) end, {"clamp", "min 2", "max 1"})
    raises_all(t, function() return x:clamp_(0.5, -0.5) end, {"clamp", "min 0.5", "max -0.5"})
    t:close(x:clamp(1, 1), {1, 1, 1}, {atol = 0, rtol = 0}, "min == max is fine")
  end)
end)

S:add("copies with mismatched shapes and freed or missing tensors", function(t)
  each_device(t, function(t, dev)
    local o = {device = dev}
    raises_all(t, function() return dpl.zeros(4, o):copy_(dpl.zeros(2, 4, o)) end, {"copy_", "[2, 4]", "[4]"})
    raises_all(t, function() return dpl.zeros(4, o):copy_(dpl.zeros(3, o)) end, {"copy_", "[3]", "[4]"})
    raises_all(t, function() return dpl.zeros(4, o):copy_(nil) end, {"copy_", "nil"})
    local f = dpl.zeros(4, o)
    f:free()
    raises_all(t, function() return f:clone() end, {"freed"})
    raises_all(t, function() return dpl.zeros(4, o) + f end, {"freed"})
    raises_all(t, function() return dpl.Tensor.sum(42) end, {"expected a dpl.Tensor", "number"})
  end)
end)

S:add("errors leave the runtime usable", function(t)
  each_device(t, function(t, dev)
    local o = {device = dev}
    for _ = 1, 3 do
      pcall(function() return dpl.zeros(2, 3, o) + dpl.zeros(4, o) end)
      pcall(function() return dpl.zeros(2, 3, o):view(7) end)
      pcall(function() return dpl.zeros(2, 3, o):sum(9) end)
    end
    t:eq(ffi.string(dpl.C.dpl_last_error()), "", "the error was cleared when it was raised")
    local x = dpl.arange(6, o):view(2, 3)
    t:eq((x + 1):sum():item(), 21)
    t:close(x:matmul(x:t()), {5, 14, 14, 50}, {atol = 0, rtol = 0})
  end)
end)

return S

-- 2-D transposed convolution (dpl.conv_transpose2d, runtime/src/ops/conv_transpose.c, nn.ConvTranspose2d):
--  * hand-computed 2x2 * 2x2 cases (stride 1 and 2);
--  * the CPU against PyTorch: references made at test time by tests/ref/conv_transpose_ref.py with Debian's
--    python3-torch (output and the gradients of sum(y * g) for a fixed random g, through dpl.autograd) on odd shapes:
--    9x7 planes, 13 channels, strides (also unequal), dilation 2 and 3, groups 3 and depthwise, output_padding 1 and 2
--    (also >= stride, which PyTorch allows when the dilation is larger), padding that crops; tolerance 1e-4 relative
--    + 1e-5 x sqrt(terms per output) absolute (float32 sums of N(0,1) products in another order);
--  * Vulkan against the CPU (same tolerance) and PyTorch on the same cases;
--  * CPU gradients against central finite differences of L = sum(conv_transpose2d(x, w, b) * R) for a fixed random
--    R: the op is linear in each operand, so with step eps = 1e-2 the quotient is exact up to the float32 rounding of
--    the forward (~|L| 2^-24 sqrt(#outputs) / (2 eps), ~1e-4 here); tolerance 2e-3 absolute + 2e-3 relative;
--  * strided (non-contiguous) operands give the contiguous results exactly, on each device;
--  * nn.ConvTranspose2d: PyTorch's parameter names, shapes and default initialisation bound, forward with an
--    output_size, and loading a PyTorch state_dict;
--  * argument errors.
local dpl = require "dpl"
local nn = require "dpl.nn"
local test = require "dpl.test"
local suite = test.suite("conv_transpose2d")

local vulkan = dpl.vulkan_available()

-- Every test ends with the Vulkan queue drained (work pending at os.exit trips the validation layer at shutdown).
local S = suite

local seed = 700
local function randn(shape, device)
  seed = seed + 1
  return dpl.randn(shape, {seed = seed, device = device or "cpu"})
end

local function dot(a, b)
  local s = 0
  for i = 1, #a do s = s + a[i] * b[i] end
  return s
end

-- ---- references -----------------------------------------------------------------------------------------------
local refs = test.torch_refs("conv_transpose_ref.py", "conv_transpose")
local have_torch, made, cases, ref = refs.have_torch, refs.made, refs.cases, refs.npy

-- runs case c on `device` through autograd: output and the gradients of sum(y * g)
local function run_case(c, device)
  local x = ref(c, "x", device):requires_grad_()
  local w = ref(c, "w", device):requires_grad_()
  local b = c.bias and ref(c, "b", device):requires_grad_() or nil
  local y = dpl.conv_transpose2d(x, w, b, c.opts)
  y:backward(ref(c, "g", device))
  return y, x.grad, w.grad, b and b.grad
end

-- tolerances from the number of products summed into one element of each result
local function tols(c)
  local groups = c.opts.groups
  local kk = c.w[3] * c.w[4]
  local function tol(terms) return {atol = 1e-5 * math.sqrt(terms), rtol = 1e-4} end
  return {
    y = tol(c.w[1] / groups * kk),                          -- input channels per group x taps (an upper bound)
    gx = tol(c.w[2] * kk),                                  -- output channels per group x taps
    gw = tol(c.x[1] * c.x[3] * c.x[4]),                     -- batch x input pixels
    gb = tol(c.y[1] * c.y[3] * c.y[4]),                     -- batch x output pixels
  }
end

S:add("reference generation with python3-torch", function(t)
  if not have_torch then t:skip("/usr/bin/python3 cannot import torch (install python3-torch)") end
  t:ok(made, "tests/ref/conv_transpose_ref.py failed")
  t:ok(#cases >= 9, "expected the reference cases, got " .. #cases)
end)

S:add("cpu matches PyTorch: output, grad input, grad weight, grad bias", function(t)
  if not have_torch then t:skip("/usr/bin/python3 cannot import torch") end
  t:ok(#cases > 0, "no reference cases")
  for _, c in ipairs(cases) do
    local y, gx, gw, gb = run_case(c, "cpu")
    local tl = tols(c)
    t:shape(y, c.y, c.id)
    t:close(y, ref(c, "y"), tl.y, c.id .. " output")
    t:close(gx, ref(c, "gx"), tl.gx, c.id .. " grad input")
    t:close(gw, ref(c, "gw"), tl.gw, c.id .. " grad weight")
    if c.bias then t:close(gb, ref(c, "gb"), tl.gb, c.id .. " grad bias") end
  end
end)

S:add("vulkan matches the CPU and PyTorch", function(t)
  if not vulkan then t:skip("no Vulkan device") end
  if not have_torch then t:skip("/usr/bin/python3 cannot import torch") end
  for _, c in ipairs(cases) do
    local yc, gxc, gwc, gbc = run_case(c, "cpu")
    local y, gx, gw, gb = run_case(c, "vulkan")
    t:eq(y:device():sub(1, 6), "vulkan")
    local tl = tols(c)
    t:close(y:cpu(), yc, tl.y, c.id .. " output vs cpu")
    t:close(gx:cpu(), gxc, tl.gx, c.id .. " grad input vs cpu")
    t:close(gw:cpu(), gwc, tl.gw, c.id .. " grad weight vs cpu")
    if c.bias then t:close(gb:cpu(), gbc, tl.gb, c.id .. " grad bias vs cpu") end
    t:close(y:cpu(), ref(c, "y"), tl.y, c.id .. " output vs PyTorch")
    t:close(gx:cpu(), ref(c, "gx"), tl.gx, c.id .. " grad input vs PyTorch")
    t:close(gw:cpu(), ref(c, "gw"), tl.gw, c.id .. " grad weight vs PyTorch")
  end
end)

-- ---- hand-computed --------------------------------------------------------------------------------------------
S:add("hand-computed 2x2 input, 2x2 kernel: each input scatters w times itself", function(t)
  for _, dev in ipairs(dpl.devices()) do
    local x = dpl.tensor({{{{1, 2}, {3, 4}}}}, {device = dev})
    local w = dpl.tensor({{{{1, 2}, {3, 4}}}}, {device = dev})
    local E = {atol = 0, rtol = 0}
    local y = dpl.conv_transpose2d(x, w)
    t:shape(y, {1, 1, 3, 3})
    t:close(y, {1, 4, 4, 6, 20, 16, 9, 24, 16}, E, dev .. " stride 1")
    -- stride 2: the 2x2 blocks x[i][j] * w do not overlap
    t:close(dpl.conv_transpose2d(x, w, {stride = 2}), {1, 2, 2, 4, 3, 4, 6, 8, 3, 6, 4, 8, 9, 12, 12, 16}, E,
            dev .. " stride 2")
    -- padding 1 crops one row and column on each side of the 4x4 stride-2 result; output_padding 1 gives back the
    -- last row and column, so the output is rows and columns 2..4 of it, plus the bias
    local b = dpl.tensor({10}, {device = dev})
    t:close(dpl.conv_transpose2d(x, w, b, {stride = 2, padding = 1, output_padding = 1}),
            {14, 16, 18, 16, 14, 18, 22, 22, 26}, E, dev .. " padding 1, output_padding 1, bias")
  end
end)

S:add("non-contiguous operands give the same results as contiguous ones", function(t)
  local opts = {stride = 2, padding = 1, output_padding = 1, groups = 2}
  for _, dev in ipairs(dpl.devices()) do
    local x = randn({2, 7, 5, 4}, dev):narrow(2, 2, 4)                 -- 2 x 4 x 5 x 4, strided
    local w = randn({4, 3, 3, 3}, dev):transpose(3, 4)                 -- 4 x 3 x 3 x 3, transposed
    local b = randn({12}, dev):narrow(1, 3, 6)
    local y = dpl.conv_transpose2d(x, w, b, opts)
    local yc = dpl.conv_transpose2d(x:contiguous(), w:contiguous(), b:contiguous(), opts)
    t:close(y:cpu(), yc:cpu(), {atol = 0, rtol = 0}, dev .. " forward")
    local gy = randn(y:size(), dev):transpose(3, 4):contiguous():transpose(3, 4)
    t:close(dpl.conv_transpose2d_backward_input(gy, w, x:size(), opts):cpu(),
            dpl.conv_transpose2d_backward_input(gy:contiguous(), w:contiguous(), x:size(), opts):cpu(),
            {atol = 0, rtol = 0}, dev .. " grad input")
    t:close(dpl.conv_transpose2d_backward_weight(x, gy, w:size(), opts):cpu(),
            dpl.conv_transpose2d_backward_weight(x:contiguous(), gy:contiguous(), w:size(), opts):cpu(),
            {atol = 0, rtol = 0}, dev .. " grad weight")
  end
end)

-- ---- finite differences ------------------------------------------------------------------------------------------
local function fd_check(t, name, xs, ws, opts)
  local groups = opts.groups or 1
  local x, w, b = randn(xs), randn(ws), randn({ws[2] * groups})
  local y = dpl.conv_transpose2d(x, w, b, opts)
  local R = randn(y:size())
  local rl = R:tolist()
  local function loss(xt, wt, bt) return dot(dpl.conv_transpose2d(xt, wt, bt, opts):tolist(), rl) end
  local eps = 1e-2
  local function numeric(k) return test.numeric_grad(loss, {x, w, b}, k, eps) end
  local tol = {atol = 2e-3, rtol = 2e-3}
  t:close(dpl.conv_transpose2d_backward_input(R, w, x:size(), opts), numeric(1), tol, name .. ": grad input")
  t:close(dpl.conv_transpose2d_backward_weight(x, R, w:size(), opts), numeric(2), tol, name .. ": grad weight")
  t:close(dpl.conv2d_backward_bias(R), numeric(3), tol, name .. ": grad bias")
end

S:add("cpu gradients vs finite differences: stride 2, padding 1, output_padding 1, groups 2", function(t)
  fd_check(t, "s2 p1 op1 g2", {2, 4, 4, 3}, {4, 2, 3, 3}, {stride = 2, padding = 1, output_padding = 1, groups = 2})
end)

S:add("cpu gradients vs finite differences: dilation 3, output_padding 2 >= stride, 2x3 kernel", function(t)
  fd_check(t, "d3 op2", {1, 3, 4, 5}, {3, 2, 2, 3}, {dilation = 3, output_padding = {2, 1}, padding = {1, 0}})
end)

-- ---- nn.ConvTranspose2d ------------------------------------------------------------------------------------------
S:add("nn.ConvTranspose2d: PyTorch names, shapes, default init and output_size", function(t)
  dpl.manual_seed(5)
  local m = nn.ConvTranspose2d(6, 9, {3, 2}, {stride = 2, padding = 1, groups = 3})
  local _, order = m:state_dict()
  t:eq(table.concat(order, " "), "weight bias")
  t:shape(m.weight, {6, 3, 3, 2})
  t:shape(m.bias, {9})
  -- kaiming_uniform(a = sqrt(5)) on a (6, 3, 3, 2) weight: fan_in = 3 * 3 * 2 = 18, bound 1/sqrt(18)
  local bound = 1 / math.sqrt(18)
  for _, p in ipairs {m.weight, m.bias} do
    t:ok(p:abs():max():item() <= bound, "values within the bound")
    t:ok(p:abs():max():item() > 0.75 * bound, "values spread over the bound")
  end
  local x = randn({2, 6, 5, 4})
  local y = m(x)
  t:shape(y, {2, 9, 9, 6})
  t:close(y, dpl.conv_transpose2d(x, m.weight, m.bias, {stride = 2, padding = 1, groups = 3}), {atol = 0, rtol = 0})
  local y2 = m(x, {10, 7})          -- output_size picks output_padding 1
  t:shape(y2, {2, 9, 10, 7})
  t:close(y2:narrow(3, 1, 9):narrow(4, 1, 6), y, {atol = 0, rtol = 0}, "output_padding only adds rows and columns")
  t:shape(m(x), {2, 9, 9, 6}, "output_size applies to one call only")
  t:raises(function() m(x, {11, 7}) end, "requested output size 11x7 is not reachable")
  t:raises(function() nn.ConvTranspose2d(6, 8, 3, {groups = 3}) end, "groups 3 must divide in_channels 6 and out_channels 8")
  local nb = nn.ConvTranspose2d(2, 3, 2, {bias = false})
  t:ok(nb.bias == nil)
  t:eq(#nb:parameters(), 1)
  -- trains: gradients reach the weight and bias through the module
  local loss = (m(x) * m(x)):sum()
  loss:backward()
  t:shape(m.weight.grad, {6, 3, 3, 2})
  t:shape(m.bias.grad, {9})
end)

S:add("nn.ConvTranspose2d loads a PyTorch state_dict and matches PyTorch's module", function(t)
  if not have_torch then t:skip("/usr/bin/python3 cannot import torch") end
  local c = cases[1]
  local m = nn.Sequential(nn.ConvTranspose2d(c.w[1], c.w[2], {c.w[3], c.w[4]}, c.opts))
  m:load_state_dict({["0.weight"] = ref(c, "w"), ["0.bias"] = ref(c, "b")})
  t:close(m(ref(c, "x")), ref(c, "y"), tols(c).y)
  t:raises(function() m:load_state_dict({["0.weight"] = ref(c, "w"):transpose(1, 2), ["0.bias"] = ref(c, "b")}) end,
           "0.weight has shape")
end)

-- ---- errors ---------------------------------------------------------------------------------------------------
S:add("argument errors name the op and the shapes", function(t)
  local x = randn({1, 4, 5, 5})
  local w = randn({4, 2, 3, 3})
  local ct = dpl.conv_transpose2d
  t:raises(function() return ct(x, randn({3, 2, 3, 3})) end,
           "conv_transpose2d: input [1, 4, 5, 5] has 4 channels but weight [3, 2, 3, 3]")
  t:raises(function() return ct(x, w, nil, {groups = 3}) end, "groups=3 must divide the input channels")
  t:raises(function() return ct(x, w, nil, {groups = 0}) end, "groups must be positive")
  t:raises(function() return ct(x, w, nil, {stride = 0}) end, "stride and dilation must be positive")
  t:raises(function() return ct(x, w, nil, {dilation = {1, -2}}) end, "stride and dilation must be positive")
  t:raises(function() return ct(x, w, nil, {padding = -1}) end, "padding and output_padding must be non-negative")
  t:raises(function() return ct(x, w, nil, {output_padding = {0, -1}}) end, "must be non-negative")
  t:raises(function() return ct(x, w, nil, {stride = 2, output_padding = 2}) end,
           "output_padding must be smaller than either stride or dilation")
  t:raises(function() return ct(x, w, nil, {padding = 6}) end, "the output size -5x-5 is not positive")
  t:raises(function() return ct(randn({1, 4, 0, 5}), w) end, "zero-size channel or spatial dim")
  t:raises(function() return ct(x, randn({4, 0, 3, 3})) end, "zero-size dim")
  t:raises(function() return ct(randn({4, 5, 5}), w) end, "conv_transpose2d: input must be 4-D")
  t:raises(function() return ct(x, randn({4, 2, 3})) end, "conv_transpose2d: weight must be 4-D")
  t:raises(function() return ct(x, w, randn({4})) end, "bias must have shape [2] (out_channels)")
  t:raises(function() return ct(x, w, nil, {strides = 2}) end, "unknown option 'strides'")
  t:raises(function() return ct(x, w, nil, {output_padding = 0.5}) end, "output_padding must be an integer")
  -- gradients: grad_output must match the geometry
  t:raises(function() return dpl.conv_transpose2d_backward_input(randn({1, 2, 6, 7}), w, x:size()) end,
           "conv_transpose2d_backward_input: grad_output is [1, 2, 6, 7] but the transposed convolution's output is "
           .. "[1, 2, 7, 7]")
  t:raises(function() return dpl.conv_transpose2d_backward_weight(x, randn({1, 3, 7, 7}), w:size()) end,
           "conv_transpose2d_backward_weight: grad_output is [1, 3, 7, 7]")
  t:raises(function() return dpl.conv_transpose2d_backward_input(randn({1, 2, 7, 7}), w, {1, 4, 5}) end,
           "input_size must be 4 sizes")
  if vulkan then
    t:raises(function() return ct(x, w:to("vulkan")) end, "conv_transpose2d: input is on cpu but weight is on vulkan:0")
    t:raises(function() return ct(x, w, randn({2}, "vulkan")) end, "bias is on vulkan:0")
  end
  -- an empty batch gives an empty output and zero weight gradient
  local e = ct(randn({0, 4, 5, 5}), w, randn({2}))
  t:shape(e, {0, 2, 7, 7})
  t:close(dpl.conv_transpose2d_backward_weight(randn({0, 4, 5, 5}), e, w:size()), dpl.zeros(4, 2, 3, 3), {}, "empty")
  t:shape(dpl.conv_transpose2d_backward_input(e, w, {0, 4, 5, 5}), {0, 4, 5, 5})
  t:eq(select(1, dpl.conv_transpose2d_output_size(5, 4, 3, 3, {stride = 2, padding = 1, output_padding = 1})), 10)
end)

suite.teardown = refs.remove
return suite

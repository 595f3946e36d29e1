-- conv2d against PyTorch (the CPU and Vulkan conv2d kernels, runtime/src/ops/conv.c, through dpl.autograd):
-- references made at test time by tests/ref/conv2d_ref.py with Debian's python3-torch (output and the gradients of
-- sum(y * g) for a fixed random g with respect to input, weight and bias) on odd shapes: 9x7 planes, 13 channels,
-- stride 2 (also unequal), dilation 2, groups 3, depthwise, ResNeXt's 32 groups, 1x1, AlexNet's 11x11 stride 4 and a
-- kernel as large as the padded input. Tolerance 1e-4 relative + 1e-5 x sqrt(terms per result element) absolute
-- (float32 sums of N(0,1) products in another order). test_conv2d.lua has the other checks (naive loop, adjoint
-- identity, finite differences, Vulkan vs CPU, errors).
local dpl = require "dpl"
local test = require "dpl.test"
local suite = test.suite("conv2d vs PyTorch")

local vulkan = dpl.vulkan_available()

local S = suite
S.after_each = function()
  if vulkan then dpl.synchronize("vulkan") end
end

local refs = test.torch_refs("conv2d_ref.py", "conv2d")
local have_torch, made, cases, ref = refs.have_torch, refs.made, refs.cases, refs.npy

local function run_case(c, device)
  local x = ref(c, "x", device):requires_grad_()
  local w = ref(c, "w", device):requires_grad_()
  local b = c.bias and ref(c, "b", device):requires_grad_() or nil
  local y = dpl.conv2d(x, w, b, c.opts)
  y:backward(ref(c, "g", device))
  return y, x.grad, w.grad, b and b.grad
end

local function tols(c)
  local kk = c.w[3] * c.w[4]
  local function tol(terms) return {atol = 1e-5 * math.sqrt(terms), rtol = 1e-4} end
  return {
    y = tol(c.w[2] * kk),                                   -- input channels per group x taps
    gx = tol(c.w[1] / c.opts.groups * kk),                  -- output channels per group x taps (an upper bound)
    gw = tol(c.y[1] * c.y[3] * c.y[4]),                     -- batch x output pixels
    gb = tol(c.y[1] * c.y[3] * c.y[4]),
  }
end

S:add("reference generation with python3-torch", function(t)
  if not have_torch then t:skip("/usr/bin/python3 cannot import torch (install python3-torch)") end
  t:ok(made, "tests/ref/conv2d_ref.py failed")
  t:ok(#cases >= 14, "expected the reference cases, got " .. #cases)
end)

for _, dev in ipairs {"cpu", "vulkan"} do
  S:add(dev .. " matches PyTorch: output, grad input, grad weight, grad bias", function(t)
    if dev == "vulkan" and not vulkan then t:skip("no Vulkan device") end
    if not have_torch then t:skip("/usr/bin/python3 cannot import torch") end
    t:ok(#cases > 0, "no reference cases")
    for _, c in ipairs(cases) do
      local y, gx, gw, gb = run_case(c, dev)
      t:eq(y:device():sub(1, #dev), dev)
      local tl = tols(c)
      t:shape(y, c.y, c.id)
      t:close(y:cpu(), ref(c, "y"), tl.y, c.id .. " output")
      t:close(gx:cpu(), ref(c, "gx"), tl.gx, c.id .. " grad input")
      t:close(gw:cpu(), ref(c, "gw"), tl.gw, c.id .. " grad weight")
      if c.bias then t:close(gb:cpu(), ref(c, "gb"), tl.gb, c.id .. " grad bias") end
    end
  end)
end

suite.teardown = refs.remove
return suite

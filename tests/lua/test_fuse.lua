-- Fused forwards (lua/dpl/nn/fuse.lua, applied by lossnet.new): BatchNorm folded into the convolution before it, ReLU
-- fused into the convolution.
--  * Every architecture with BatchNorm (vgg16_bn, resnet18, resnet50, resnext50_32x4d, googlenet, inception_v3,
--    efficientnet_b0, efficientnet_b7, densenet121) and the ReLU-only ones (alexnet, vgg16, squeezenet1_1), on the CPU
--    and on Vulkan, with seeded random weights and BatchNorm statistics and affine parameters randomised (folding the
--    default statistics would test little): the features of a frozen, evaluating loss network at its deepest layer L
--    equal those of the unfused network (fuse = false) up to float rounding (1e-4 x the largest |value|: the folded
--    weights round differently from a separate BatchNorm pass), and the input gradient at layer E (relative L2 error
--    1e-4). Gradients through a deep ReLU network are not comparable at rounding level: moving the input by 1e-6 of
--    itself changes resnet50's input gradient at L by 1.3% on the CPU alone (one max-pool or ReLU decision flips), so
--    the gradient is checked where the first folded BatchNorm and fused ReLU are. On Vulkan the fused network runs
--    fewer dispatches.
--  * The fold holds only while exact: in training mode (batch statistics, running statistics updated) and with
--    unfrozen parameters the network computes as without fusion; BatchNorm statistics changed in place are seen.
local dpl = require "dpl"
local test = require "dpl.test"
local lossnet = require "dpl.models.lossnet"
local fuse = require "dpl.nn.fuse"
-- default only: it checks the fused forwards itself on both devices
local S = test.suite("fuse", {configurations = {"default"}})

local vulkan = dpl.vulkan_available()
local DEVICES = {"cpu", vulkan and "vulkan" or nil}
S.after_each = function()
  collectgarbage()
  if vulkan then dpl.synchronize("vulkan") end
end

local WITH_BN = {"vgg16_bn", "resnet18", "resnet50", "resnext50_32x4d", "googlenet", "inception_v3", "efficientnet_b0",
                 "efficientnet_b7", "densenet121"}
local RELU_ONLY = {"alexnet", "vgg16", "squeezenet1_1"}

-- every BatchNorm2d of a module tree
local function batchnorms(m, out)
  out = out or {}
  if m.__typename == "nn.BatchNorm2d" then out[#out + 1] = m end
  for _, e in ipairs(rawget(m, "_children") or {}) do batchnorms(e[2], out) end
  return out
end

-- statistics and affine parameters away from their defaults (seeded: both networks get the same)
local function randomise_bn(net, seed)
  dpl.no_grad(function()
    for i, bn in ipairs(batchnorms(net)) do
      local c, d = bn.num_features, {seed = seed + 4 * i, device = bn.running_mean:device()}
      bn.running_mean:copy_(dpl.randn({c}, d) * 0.2)
      d.seed = d.seed + 1
      bn.running_var:copy_(dpl.rand({c}, d) + 0.5)
      if bn.weight then
        d.seed = d.seed + 1
        bn.weight:copy_(dpl.randn({c}, d) * 0.3 + 1)
        d.seed = d.seed + 1
        bn.bias:copy_(dpl.randn({c}, d) * 0.2)
      end
    end
  end)
end

local function build(arch, dev, fused, opts, layer)
  local o = {weights = "random:3", device = dev, fuse = fused}
  for k, v in pairs(opts or {}) do o[k] = v end
  local net = lossnet.new(arch, layer or "L", o)
  randomise_bn(net, 500)
  return net
end

-- features and the gradient of sum(features * R) with respect to the input
local function run(net, x, dev)
  local xv = x:to(dev):requires_grad_()
  local f = net:forward(xv)
  local R = dpl.randn(f:size(), {seed = 9, device = dev})
  ;(f * R):sum():backward()
  return f:cpu(), xv.grad:cpu()
end

local function max_abs(t) return t:abs():max():item() end
local function rel_l2(a, b) return ((a - b) * (a - b)):sum():sqrt():item() / (b * b):sum():sqrt():item() end

local function check_arch(t, arch)
  local x = dpl.rand({1, 3, 64, 64}, {seed = 21})
  for _, dev in ipairs(DEVICES) do
    local plain, fused = build(arch, dev, false), build(arch, dev, true)
    local d0 = dev == "vulkan" and dpl.stat("dispatches", dev)
    local f1 = run(plain, x, dev)
    local d1 = dev == "vulkan" and dpl.stat("dispatches", dev)
    local f2 = run(fused, x, dev)
    local d2 = dev == "vulkan" and dpl.stat("dispatches", dev)
    t:close(f2, f1, {atol = 1e-4 * max_abs(f1), rtol = 0}, arch .. " on " .. dev .. ": features at L")
    if dev == "vulkan" then t:ok(d2 - d1 < d1 - d0, ("%s: %d dispatches fused, %d not"):format(arch, d2 - d1, d1 - d0)) end
    local _, g1 = run(build(arch, dev, false, nil, "E"), x, dev)
    local _, g2 = run(build(arch, dev, true, nil, "E"), x, dev)
    t:ok(rel_l2(g2, g1) < 1e-4, ("%s on %s: input gradient at E, relative L2 error %.2g"):format(arch, dev,
         rel_l2(g2, g1)))
  end
end

for _, arch in ipairs(WITH_BN) do
  S:add(arch .. ": BatchNorm folded and ReLU fused, same features and input gradient (CPU, Vulkan)", function(t)
    check_arch(t, arch)
  end)
end

S:add("alexnet, vgg16, squeezenet1_1: ReLU fused, same features and input gradient (CPU, Vulkan)", function(t)
  for _, arch in ipairs(RELU_ONLY) do check_arch(t, arch) end
end)

S:add("what is fused: resnet18 folds every BatchNorm, fuses the stem's ReLU only (the blocks' ReLU runs twice)", function(t)
  local net = lossnet.new("resnet18", "L", {weights = "random:3", fuse = false})
  t:eq(fuse.apply(net.net, net.net.extract_list), 20 + 1, "20 BatchNorms folded (16 in blocks, 3 downsample, stem) and 1 ReLU")
  fuse.remove(net.net)
  t:eq(fuse.apply(net.net, net.net.extract_list), 21, "removed, then applied again")
end)

S:add("the fold holds only while exact: training mode, unfrozen parameters, statistics changed in place", function(t)
  local x = dpl.rand({2, 3, 64, 64}, {seed = 22})
  for _, dev in ipairs(DEVICES) do
    -- training mode: batch statistics, running statistics updated as without fusion
    local plain = build("resnet18", dev, false, {mode = "train"})
    local fused = build("resnet18", dev, true, {mode = "train"})
    local f1, g1 = run(plain, x, dev)
    local f2, g2 = run(fused, x, dev)
    t:close(f2, f1, {atol = 1e-5 * max_abs(f1), rtol = 0}, dev .. ": training mode features")
    t:ok(rel_l2(g2, g1) < 1e-5, dev .. ": training mode input gradient, the same ops")
    local bp, bf = batchnorms(plain)[1], batchnorms(fused)[1]
    t:close(bf.running_mean:cpu(), bp.running_mean:cpu(), {atol = 1e-6, rtol = 1e-5}, dev .. ": running mean updated")
    -- unfrozen parameters (fine-tuning in eval mode): gradients reach the BatchNorm's parameters
    local open = build("vgg16_bn", dev, true, {frozen = false})
    local open_plain = build("vgg16_bn", dev, false, {frozen = false})
    run(open, x, dev)
    run(open_plain, x, dev)
    local bo, bop = batchnorms(open)[1], batchnorms(open_plain)[1]
    t:ok(bo.weight.grad ~= nil, dev .. ": BatchNorm weight gradient with unfrozen parameters")
    t:close(bo.weight.grad:cpu(), bop.weight.grad:cpu(), {atol = 1e-4 * max_abs(bop.weight.grad:cpu()), rtol = 0},
            dev .. ": the same BatchNorm gradient as unfused")
    -- statistics changed in place: the folded weights follow
    local a, b = build("vgg16_bn", dev, true), build("vgg16_bn", dev, false)
    run(a, x, dev)
    dpl.no_grad(function()
      for _, net in ipairs {a, b} do
        local bn = batchnorms(net)[2]
        bn.running_var:mul_(3)
        bn.running_mean:add_(0.5)
      end
    end)
    local fa, fb = run(a, x, dev), run(b, x, dev)
    t:close(fa, fb, {atol = 1e-4 * max_abs(fb), rtol = 0}, dev .. ": statistics changed in place")
  end
end)

return S

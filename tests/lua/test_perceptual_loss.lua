-- The deep perceptual loss as a training criterion: require("dpl.perceptual").loss{...} (lua/dpl/perceptual.lua).
--  * tests/ref/perceptual_loss_ref.py (python3-torch) saves seeded random torchvision weights (torch.save) and, for
--    vgg16 E and resnet18 L in eval mode and resnet18 E and vgg16_bn M in train mode, F.mse_loss of the features of
--    an output and a target image (2 x 3 x 48 x 48, drawn so that PyTorch's float32 and float64 gradients agree: no
--    ReLU decision at a rounding knife-edge) and its gradient with respect to the output; in train mode also the
--    running statistics every BatchNorm holds after the two forwards. The loss must agree within 2e-4 relative and
--    every gradient element within 2e-4 of the largest one, on the CPU and on Vulkan (3e-3 for Vulkan in train mode,
--    whose batch statistics come from float32 reductions).
--  * The loss network's parameters never receive a gradient; the model in front of the loss does.
--  * Every one of the 56 loss networks (random weights, 1 x 3 x 64 x 64, CPU) gives a finite loss and a nonzero
--    gradient of the input's shape.
local dpl = require "dpl"
local test = require "dpl.test"
local nn = require "dpl.nn"
local perceptual = require "dpl.perceptual"
local lossnet = require "dpl.models.lossnet"
local S = test.suite("perceptual loss", {configurations = {"default"}})   -- compares both devices itself

local vulkan = dpl.vulkan_available()
S.after_each = function()
  collectgarbage()
  if vulkan then dpl.synchronize("vulkan") end
end

local refs = test.torch_refs("perceptual_loss_ref.py", "ploss")
local need_refs, ref, refdir = refs.need, refs.ref, refs.dir
S.teardown = refs.remove

local function devices()
  return vulkan and {"cpu", "vulkan"} or {"cpu"}
end

local CASES = {{"vgg16", "E", "eval"}, {"resnet18", "L", "eval"}, {"resnet18", "E", "train"}, {"vgg16_bn", "M", "train"}}

for _, c in ipairs(CASES) do
  local arch, layer, mode = c[1], c[2], c[3]
  local case = ("%s_%s_%s"):format(arch, layer, mode)
  S:add(("%s %s (%s mode): loss and gradient as PyTorch's, no gradient in the loss network"):format(arch, layer, mode),
    function(t)
      need_refs(t)
      for _, dev in ipairs(devices()) do
        local crit = perceptual.loss{arch = arch, layer = layer, weights = refdir .. "/" .. case .. ".pth",
                                     normalize = false, mode = mode, device = dev}
        local out = ref(case .. "_output", dev):requires_grad_()
        local loss = crit(out, ref(case .. "_target", dev))
        loss:backward()
        t:near(loss:item(), ref(case .. "_loss"):item(), 2e-4, dev .. " loss")
        -- every element within tol x the gradient's largest element (2e-4; Vulkan's float32 reductions, which set the
        -- batch statistics of train mode, 3e-3 there)
        local want = ref(case .. "_grad")
        local tol = (dev ~= "cpu" and mode == "train") and 3e-3 or 2e-4
        local err = out.grad:to("cpu"):sub(want):abs():max():item() / want:abs():max():item()
        t:ok(err <= tol, ("%s gradient: largest difference %.3g of the largest element (allowed %g)"):format(dev, err, tol))
        for _, p in ipairs(crit.net:named_parameters()) do
          t:ok(p[2].grad == nil and not p[2].requires_grad, dev .. ": loss-network parameter " .. p[1] .. " got a gradient")
        end
        if mode == "train" then
          local sd, order = crit.net.net:state_dict()
          local k = 0
          for _, name in ipairs(order) do
            if name:match("running_mean$") then
              local var = name:gsub("running_mean$", "running_var")
              t:close(sd[name], ref(("%s_running_mean_%d"):format(case, k)), {atol = 1e-6, rtol = 1e-4}, dev .. " " .. name)
              t:close(sd[var], ref(("%s_running_var_%d"):format(case, k)), {atol = 1e-6, rtol = 1e-4}, dev .. " " .. var)
              k = k + 1
            end
          end
          t:ok(k > 0, "no BatchNorm in " .. case)
        end
      end
    end)
end

S:add("backward(input, target) as a torch/nn criterion; gradients reach the model in front, not the loss network",
  function(t)
    for _, dev in ipairs(devices()) do
      local crit = perceptual.loss{arch = "vgg16", layer = "E", weights = "random:3", device = dev}
      local x = dpl.rand({1, 3, 20, 20}, {seed = 1, device = dev})
      local y = dpl.rand({1, 3, 20, 20}, {seed = 2, device = dev})
      crit:forward(x, y)
      local g = crit:backward(x, y)
      t:shape(g, {1, 3, 20, 20}, dev)
      -- the same through autograd from a model's parameters
      local conv = nn.Conv2d(3, 3, 3, {padding = 1}):to(dev)
      local loss = crit(conv(x), y)
      loss:backward()
      t:ok(conv.weight.grad ~= nil and conv.bias.grad ~= nil, dev .. ": the model's parameters got no gradient")
      t:ok(conv.weight.grad:abs():sum():item() > 0, dev .. ": zero gradient for the model")
      for _, p in ipairs(crit.net:named_parameters()) do t:ok(p[2].grad == nil, dev .. ": " .. p[1] .. " got a gradient") end
      -- no graph in evaluation
      local v = dpl.no_grad(function() return crit(conv(x), y) end)
      t:ok(not v.requires_grad, "a loss computed under no_grad requires grad")
    end
  end)

S:add("train-mode criterion follows training()/evaluate(); an eval-mode criterion stays in eval", function(t)
  local tr = perceptual.loss{arch = "resnet18", layer = "E", weights = "random:1", mode = "train", device = "cpu"}
  local ev = perceptual.loss{arch = "resnet18", layer = "E", weights = "random:1", device = "cpu"}
  t:eq(tr.net.net.bn1.train, true)
  t:eq(ev.net.net.bn1.train, false)
  tr:evaluate(); ev:training()
  t:eq(tr.net.net.bn1.train, false)
  t:eq(ev.net.net.bn1.train, false)
  tr:training()
  t:eq(tr.net.net.bn1.train, true)
  -- normalize = true standardises with ImageNet's statistics
  local n = perceptual.loss{arch = "vgg16", layer = "E", weights = "random:1", normalize = true, device = "cpu"}
  t:eq(n.normalize, "imagenet")
end)

S:add("bad options are one-line errors", function(t)
  local function msg(opts)
    local ok, err = pcall(perceptual.loss, opts)
    t:ok(not ok, "accepted " .. require("dpl.json").encode(opts))
    return tostring(err)
  end
  t:ok(msg({arch = "vgg16"}):find("layer", 1, true), "missing layer")
  t:ok(msg({arch = "vgg16", layer = "E", mode = "training"}):find("mode", 1, true), "bad mode")
  t:ok(msg({arch = "vgg16", layer = "E", normalise = true}):find("unknown option 'normalise'", 1, true), "typo")
  t:ok(msg({arch = "vgg16", layer = "E", normalize = "yes"}):find("normalize", 1, true), "bad normalize")
  t:ok(msg({arch = "nope", layer = "E"}):find("unknown architecture", 1, true), "bad arch")
  local crit = perceptual.loss{arch = "vgg16", layer = "E", weights = "random:1", device = "cpu"}
  local ok, err = pcall(crit.forward, crit, dpl.rand({1, 3, 8, 8}), dpl.rand({1, 3, 9, 8}))
  t:ok(not ok and tostring(err):find("one shape", 1, true), "shape mismatch: " .. tostring(err))
end)

S:add("all 56 loss networks: finite loss, nonzero input gradient (CPU, random weights, 1 x 3 x 64 x 64)", function(t)
  local x0 = dpl.rand({1, 3, 64, 64}, {seed = 11, device = "cpu"})
  local y = dpl.rand({1, 3, 64, 64}, {seed = 12, device = "cpu"})
  for _, arch in ipairs(lossnet.ORDER) do
    for _, layer in ipairs(lossnet.LAYER_NAMES) do
      local crit = perceptual.loss{arch = arch, layer = layer, weights = "random:1", device = "cpu"}
      local x = x0:clone():requires_grad_()
      local loss = crit(x, y)
      loss:backward()
      local v = loss:item()
      t:ok(v == v and v > 0 and v < math.huge, ("%s %s: loss %s"):format(arch, layer, tostring(v)))
      t:shape(x.grad, {1, 3, 64, 64}, arch .. " " .. layer)
      local g = x.grad:abs():sum():item()
      t:ok(g == g and g > 0, ("%s %s: input gradient sum %s"):format(arch, layer, tostring(g)))
      crit, x, loss = nil, nil, nil
      collectgarbage()
    end
  end
end)

return S

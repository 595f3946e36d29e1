-- dpl.attributes: the loss-network attributes the paper analyses (section V, Tables I and II) for an architecture
-- and its extraction layers, measured on dpl's own module tree (which mirrors torchvision's).
--
--   local attributes = require "dpl.models.attributes"
--   local a = attributes.compute("resnet50", {size = 224})
--   print(a.params, a.depth, a.mflops, a.flags.skip)          -- a.flops: the exact count          -- the whole classification model
--   print(a.layers.M.params, a.layers.M.depth, a.layers.M.mflops, a.layers.M.channels, a.layers.M.features)
--
-- Definitions:
--  * params: parameters (not buffers) of the children up to the layer (the reference's truncation,
--    docs/benchmarks/lossnets.md), and of the whole classification model. GoogLeNet and Inception v3 are counted
--    without their auxiliary classifiers (they are training-only heads that neither a loss network nor inference runs).
--  * depth: the paper's "maximum number of non-linearly separated matrix multiplications up to the layer (if the
--    architecture branches and rejoins only the longest branch is counted)", measured as the longest chain of
--    convolutions and matrix products (Linear) on any path from the input to the layer's output in the autograd
--    graph of a forward pass. Every conv counts (also depthwise, grouped and squeeze-and-excitation convs). This
--    gives the paper's Table I depths for VGG, ResNet, GoogLeNet, AlexNet, DenseNet and SqueezeNet; Inception v3
--    comes out 48 (paper 49), EfficientNet-B0 82 (paper 81) and B7 274 (paper 271).
--  * mflops: forward cost in millions at a size x size RGB input, batch 1, counted per module as ptflops does:
--    convolutions and Linear layers their multiply-adds (one per weight use) plus one per output element for the
--    bias, BatchNorm 2 per element (affine) or 1, ReLU / SiLU / Sigmoid / Tanh 1 per output element, pooling 1 per
--    input element; additions, products and concatenations between modules are free. At 224 this is within 1.2% of
--    every Table I value (SqueezeNet 1.1 1.1% low, the others within 0.9%; Inception v3 2848.5 against 2850, so the paper
--    measured it at 224, not 299).
--  * channels, height, width, features (C x H x W) of the layer's output at the size.
--  * flags (per layer: in the children up to it; per architecture: in the whole model):
--    skip      residual or dense connections (ResNet blocks, DenseNet blocks, EfficientNet MBConv with residual)
--    branch    parallel convolution paths within a module that are joined again (Inception modules, SqueezeNet's
--              Fire expand 1x1 / 3x3, ResNeXt's grouped convolutions: groups > 1 that are not depthwise)
--    conv1x1   any 1 x 1 convolution
--    batchnorm any BatchNorm layer
local dpl = require "dpl"
local T = require "dpl.tensor"
local lossnet = require "dpl.models.lossnet"

local M = {}

local ACTIVATIONS = {["nn.ReLU"] = true, ["nn.SiLU"] = true, ["nn.Sigmoid"] = true, ["nn.Tanh"] = true,
                     ["nn.LeakyReLU"] = true}
local POOLS = {["nn.MaxPool2d"] = true, ["nn.AvgPool2d"] = true, ["nn.AdaptiveAvgPool2d"] = true}
local SKIP_MODULES = {["models.BasicBlock"] = true, ["models.Bottleneck"] = true, ["models.DenseBlock"] = true}
local BRANCH_MODULES = {["models.googlenet.Inception"] = true, ["models.Fire"] = true,
                        ["models.inception.InceptionA"] = true, ["models.inception.InceptionB"] = true,
                        ["models.inception.InceptionC"] = true, ["models.inception.InceptionD"] = true,
                        ["models.inception.InceptionE"] = true}
-- autograd nodes that are matrix multiplications
local MATMUL_NODES = {conv2d = true, matmul = true}

-- forward cost of one call of a leaf module (ptflops's convention, see the header)
local function leaf_flops(m, x, y)
  local t = m.__typename
  if t == "nn.Conv2d" then
    local w = m.weight:size()
    return y:numel() * w[2] * w[3] * w[4] + (m.bias and y:numel() or 0)
  elseif t == "nn.Linear" then
    return y:numel() * m.in_features + (m.bias and y:numel() or 0)
  elseif t == "nn.BatchNorm2d" then
    return x:numel() * (m.weight and 2 or 1)
  elseif ACTIVATIONS[t] then
    return y:numel()
  elseif POOLS[t] then
    return x:numel()
  end
  return 0
end

-- Every module of a tree once (modules can be shared, e.g. ResNet's BasicBlock calls its ReLU twice).
local function each_module(root, fn, seen)
  seen = seen or {}
  if seen[root] then return end
  seen[root] = true
  fn(root)
  for _, c in ipairs(root:children()) do each_module(c, fn, seen) end
end

-- Wraps every leaf module's updateOutput (on the instance) to add its cost to acc.flops on each call.
local function instrument(model, acc)
  each_module(model, function(m)
    if #m:children() == 0 then
      local f = m.updateOutput
      m.updateOutput = function(self, x)
        local y = f(self, x)
        acc.flops = acc.flops + leaf_flops(self, x, y)
        return y
      end
    end
  end)
end

-- the flags of a list of modules (see the header)
local function flags_of(modules)
  local fl = {skip = false, branch = false, conv1x1 = false, batchnorm = false}
  local seen = {}
  for _, root in ipairs(modules) do
    each_module(root, function(m)
      local t = m.__typename
      if SKIP_MODULES[t] or (t == "models.MBConv" and m.use_res_connect) then fl.skip = true end
      if BRANCH_MODULES[t] then fl.branch = true end
      if t == "nn.Conv2d" then
        if m.kh == 1 and m.kw == 1 then fl.conv1x1 = true end
        if m.groups > 1 and m.groups < m.in_channels then fl.branch = true end
      end
      if t == "nn.BatchNorm2d" then fl.batchnorm = true end
    end, seen)
  end
  return fl
end

local function count_params(modules)
  local n = 0
  for _, root in ipairs(modules) do
    for _, p in ipairs(root:parameters()) do n = n + p:numel() end
  end
  return n
end

-- Longest chain of MATMUL_NODES from any leaf to t in the autograd graph (iterative: graphs are thousands deep).
local function chain_depth(t, memo)
  if not t.grad_fn then return 0 end
  local stack = {t.grad_fn}
  while #stack > 0 do
    local node = stack[#stack]
    if memo[node] then
      stack[#stack] = nil
    else
      local ready, best = true, 0
      for i = 1, table.maxn(node.inputs) do
        local u = node.inputs[i]
        if T.is_tensor(u) and u.grad_fn then
          local d = memo[u.grad_fn]
          if d == nil then
            ready = false
            stack[#stack + 1] = u.grad_fn
          elseif d > best then
            best = d
          end
        end
      end
      if ready then
        memo[node] = best + (MATMUL_NODES[node.name] and 1 or 0)
        stack[#stack] = nil
      end
    end
  end
  return memo[t.grad_fn]
end

local function build_full(arch)
  local a = lossnet.ARCHS[arch]
  if not a then error(("unknown architecture '%s' (known: %s)"):format(tostring(arch), table.concat(lossnet.ORDER, ", ")), 3) end
  -- init = false: the values do not matter here, and torchvision's initialisation of the classifiers is slow
  return require(a.module)[arch]({device = "cpu", init = false})
end

-- The smallest input side the whole model runs at (Inception v3's Mixed_7a needs more than 64).
local DEPTH_SIDE = 96

-- the layers asked for: {name =, index =} in order, and the largest index
local function resolve_layers(arch, list, layers)
  local want, maxidx = {}, 0
  for _, l in ipairs(layers or lossnet.LAYER_NAMES) do
    local idx = lossnet.layer_index(arch, l)
    if idx + 1 > #list then
      error(("%s has %d children; layer %s (child %d) does not exist"):format(arch, #list, tostring(l), idx), 3)
    end
    want[#want + 1] = {name = tostring(l), index = idx}
    if idx > maxidx then maxidx = idx end
  end
  return want, maxidx
end

-- The attributes that need no forward pass: parameters and flags, of the whole model and up to each layer.
-- opts.layers: layer names or child indices (default E, S, M, L). Also returns the model it built.
function M.static(arch, opts)
  opts = opts or {}
  local model = build_full(arch)
  local list = model.extract_list
  local want = resolve_layers(arch, list, opts.layers)
  local out = {arch = arch, layers = {}, order = {}, params = count_params({model}), flags = flags_of({model}),
               accuracy = require("dpl.weights_store").manifest()[arch].top1}
  for _, w in ipairs(want) do
    local upto = {}
    for i = 1, w.index + 1 do upto[i] = list[i] end
    out.layers[w.name] = {name = w.name, index = w.index, params = count_params(upto), flags = flags_of(upto)}
    out.order[#out.order + 1] = w.name
  end
  return out, model
end

-- Every attribute of an architecture and of the given layers (default E, S, M, L; names or child indices).
-- opts.size: input side for mflops and the feature shapes (default 224); opts.layers.
function M.compute(arch, opts)
  opts = opts or {}
  local size = opts.size or 224
  local out, model = M.static(arch, opts)
  out.size = size
  model:evaluate()
  local list = model.extract_list
  local _, maxidx = resolve_layers(arch, list, opts.layers)
  local acc = {flops = 0}
  instrument(model, acc)

  -- the forward cost of the children up to each index, and the feature shapes, at size x size
  local cum, shapes = {}, {}
  dpl.no_grad(function()
    local h = dpl.zeros({1, 3, size, size}, {device = "cpu"})
    for i = 1, maxidx + 1 do
      h = list[i]:updateOutput(h)
      cum[i - 1] = acc.flops
      shapes[i - 1] = h:size()
    end
    acc.flops = 0
    model:updateOutput(dpl.zeros({1, 3, size, size}, {device = "cpu"}))
  end)
  out.flops, out.mflops = acc.flops, acc.flops / 1e6

  -- depth: the autograd graph of a forward at DEPTH_SIDE with an input that requires grad
  local memo, depth_at = {}, {}
  local x = dpl.rand({1, 3, DEPTH_SIDE, DEPTH_SIDE}, {device = "cpu", seed = 1}):requires_grad_()
  local h = x
  for i = 1, maxidx + 1 do
    h = list[i]:updateOutput(h)
    depth_at[i - 1] = chain_depth(h, memo)
  end
  out.depth = chain_depth(model:updateOutput(x), memo)

  for _, name in ipairs(out.order) do
    local r = out.layers[name]
    local s = shapes[r.index]
    r.depth, r.flops, r.mflops = depth_at[r.index], cum[r.index], cum[r.index] / 1e6
    if #s == 4 then
      r.channels, r.height, r.width = s[2], s[3], s[4]
      r.features = s[2] * s[3] * s[4]
    end
  end
  memo, h, x = nil, nil, nil
  collectgarbage()
  return out
end

return M

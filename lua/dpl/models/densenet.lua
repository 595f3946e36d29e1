-- DenseNet as torchvision 0.14's models.densenet121 / densenet161 / densenet169 / densenet201: the same module tree
-- and state_dict names (features.conv0, features.norm0, features.denseblock1.denselayer1.norm1, ...,
-- features.transition1.conv, features.norm5, classifier), the same forward (features, ReLU, global average pool,
-- flatten, classifier) and torchvision's initialisation (kaiming-normal convs, BN 1/0, Linear bias 0). Eval only in
-- spirit: drop_rate is 0 as in every torchvision DenseNet, and memory_efficient checkpointing does not apply.
--
--   local densenet = require "dpl.models.densenet"
--   local m = densenet.densenet121({upto = 6})  -- features.conv0 .. features.denseblock2 only
-- (docs/benchmarks/lossnets.md)
--
-- opts: upto (0-based index into `features`; nothing after it is built), device, num_classes.
local dpl = require "dpl"
local F = require "dpl.nn.functional"
local autograd = require "dpl.autograd"
local T = require "dpl.tensor"
local class = require "dpl.class"
local Module = require "dpl.nn.Module"
local nn = require "dpl.nn"
local common = require "dpl.models.common"

local M = {}

-- bias-free conv with kaiming_normal_ (fan_in, gain sqrt(2))
local function conv(cin, cout, k, opts, d)
  opts = opts or {}
  local c = nn.Conv2d(cin, cout, k, {stride = opts.stride, padding = opts.padding, bias = false, device = d})
  autograd.no_grad(function()
    c.weight:copy_(dpl.normal(0, math.sqrt(2 / (cin * k * k)), c.weight:size(), {device = d}))
  end)
  return c
end
local function bn(c, d) return nn.BatchNorm2d(c, {device = d}) end

-- _DenseLayer: BN-ReLU-conv1x1 (to bn_size * growth) on the concatenation of all earlier features, then
-- BN-ReLU-conv3x3 (to growth)
local DenseLayer = class("models.DenseLayer", Module)
M.DenseLayer = DenseLayer

function DenseLayer:__init(cin, growth, bn_size, d)
  Module.__init(self)
  self.norm1 = self:add_module("norm1", bn(cin, d))
  self.relu1 = self:add_module("relu1", nn.ReLU())
  self.conv1 = self:add_module("conv1", conv(cin, bn_size * growth, 1, nil, d))
  self.norm2 = self:add_module("norm2", bn(bn_size * growth, d))
  self.relu2 = self:add_module("relu2", nn.ReLU())
  self.conv2 = self:add_module("conv2", conv(bn_size * growth, growth, 3, {padding = 1}, d))
end

-- input: a tensor or a list of tensors (concatenated along channels first)
function DenseLayer:updateOutput(input)
  local x = input
  -- a copy of the list goes to cat: the block appends to its list after this call
  if not T.is_tensor(input) then x = #input == 1 and input[1] or dpl.cat({unpack(input)}, 2) end
  local h = self.relu1:updateOutput(self.norm1:updateOutput(x))
  h = self.relu2:updateOutput(self.norm2:updateOutput(self.conv1:updateOutput(h)))
  return self.conv2:updateOutput(h)
end

-- _DenseBlock: denselayer1..n, each fed every earlier output; returns the concatenation of the input and all outputs
local DenseBlock = class("models.DenseBlock", Module)
M.DenseBlock = DenseBlock

function DenseBlock:__init(num_layers, cin, bn_size, growth, d)
  Module.__init(self)
  self.layers = {}
  for i = 1, num_layers do
    self.layers[i] = self:add_module("denselayer" .. i, DenseLayer(cin + (i - 1) * growth, growth, bn_size, d))
  end
end

function DenseBlock:updateOutput(x)
  local feats = {x}
  for i, layer in ipairs(self.layers) do feats[i + 1] = layer:updateOutput(feats) end
  return dpl.cat(feats, 2)
end

-- _Transition: norm, relu, conv (1x1, halves the channels), pool (2x2 average)
local function transition(cin, cout, d)
  local t = nn.Sequential()
  t:add("norm", bn(cin, d))
  t:add("relu", nn.ReLU())
  t:add("conv", conv(cin, cout, 1, nil, d))
  t:add("pool", nn.AvgPool2d(2, {stride = 2}))
  return t
end

local DenseNet = class("models.DenseNet", Module)
M.DenseNet = DenseNet

local function children_of(blocks)
  local list = {"conv0", "norm0", "relu0", "pool0"}
  for i = 1, #blocks do
    list[#list + 1] = "denseblock" .. i
    if i ~= #blocks then list[#list + 1] = "transition" .. i end
  end
  list[#list + 1] = "norm5"
  return list
end

function DenseNet:__init(name, growth, blocks, init_features, opts)
  Module.__init(self)
  opts = opts or {}
  local names = children_of(blocks)
  local n = common.children_upto(name, "features", #names, opts.upto, 4)
  local d = opts.device
  local bn_size = 4
  self.arch = name
  -- constructors in order; the channel count is threaded through
  local ctors = {
    function() return conv(3, init_features, 7, {stride = 2, padding = 3}, d) end,
    function() return bn(init_features, d) end,
    function() return nn.ReLU() end,
    function() return nn.MaxPool2d(3, {stride = 2, padding = 1}) end,
  }
  local c = init_features
  for i, num_layers in ipairs(blocks) do
    local cin = c
    ctors[#ctors + 1] = function() return DenseBlock(num_layers, cin, bn_size, growth, d) end
    c = c + num_layers * growth
    if i ~= #blocks then
      local tin = c
      ctors[#ctors + 1] = function() return transition(tin, math.floor(tin / 2), d) end
      c = math.floor(c / 2)
    end
  end
  local final = c
  ctors[#ctors + 1] = function() return bn(final, d) end
  local features = nn.Sequential()
  self.extract_list = {}
  for i = 1, n do
    local m = ctors[i]()
    features:add(names[i], m)
    self.extract_list[i] = m
  end
  self.features = self:add_module("features", features)
  self.truncated = opts.upto ~= nil
  if not self.truncated then
    local fc = nn.Linear(final, opts.num_classes or 1000, {device = d})
    autograd.no_grad(function() fc.bias:zero_() end)
    self.classifier = self:add_module("classifier", fc)
  end
end

function DenseNet:updateOutput(x)
  local h = self.features:updateOutput(x)
  if self.truncated then return h end
  h = F.adaptive_avg_pool2d(h:relu(), {1, 1})
  return self.classifier:updateOutput(h:reshape(h:size(1), -1))
end

M.info = {}
local ARCHS = {
  densenet121 = {32, {6, 12, 24, 16}, 64}, densenet161 = {48, {6, 12, 36, 24}, 96},
  densenet169 = {32, {6, 12, 32, 32}, 64}, densenet201 = {32, {6, 12, 48, 32}, 64},
}
for name, a in pairs(ARCHS) do
  M[name] = function(opts) return DenseNet(name, a[1], a[2], a[3], opts) end
  M.info[name] = {list = "features", children = children_of(a[2])}
end

return M

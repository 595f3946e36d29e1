-- ResNet and ResNeXt as torchvision 0.14's models.resnet18 / resnet34 / resnet50 / resnet101 / resnet152 /
-- resnext50_32x4d / resnext101_32x8d (v1.5: the stride sits on the 3x3 conv of a Bottleneck): the same module tree
-- and state_dict names (conv1, bn1, layer1.0.conv1, layer2.0.downsample.0, ..., fc), the same forward and
-- torchvision's initialisation (kaiming-normal fan-out convs, BN 1/0).
--
--   local resnet = require "dpl.models.resnet"
--   local m = resnet.resnet50({upto = 5})  -- conv1, bn1, relu, maxpool, layer1, layer2 only
--   (docs/benchmarks/lossnets.md) for _, child in ipairs(m.extract_list) do x = child:forward(x) end
--
-- The list for truncation is the model's own children: conv1, bn1, relu, maxpool, layer1..layer4, avgpool, fc.
-- opts: upto (0-based index into that list; nothing after it is built), device, num_classes.
local dpl = require "dpl"
local autograd = require "dpl.autograd"
local class = require "dpl.class"
local Module = require "dpl.nn.Module"
local nn = require "dpl.nn"
local common = require "dpl.models.common"

local M = {}

-- bias-free conv with kaiming_normal_(mode="fan_out", nonlinearity="relu")
local function conv(cin, cout, k, opts, d)
  opts = opts or {}
  local c = nn.Conv2d(cin, cout, k, {stride = opts.stride, padding = opts.padding, groups = opts.groups, bias = false,
                                     device = d})
  autograd.no_grad(function()
    c.weight:copy_(dpl.normal(0, math.sqrt(2 / (cout * k * k)), c.weight:size(), {device = d}))
  end)
  return c
end
local function bn(c, d) return nn.BatchNorm2d(c, {device = d}) end

-- BasicBlock (expansion 1): conv3x3 (stride) bn relu conv3x3 bn, plus the (downsampled) input, relu
local BasicBlock = class("models.BasicBlock", Module)
M.BasicBlock = BasicBlock
BasicBlock.expansion = 1

function BasicBlock:__init(inplanes, planes, stride, downsample, groups, base_width, d)
  Module.__init(self)
  if groups ~= 1 or base_width ~= 64 then error("BasicBlock only supports groups=1 and base_width=64", 3) end
  self.conv1 = self:add_module("conv1", conv(inplanes, planes, 3, {stride = stride, padding = 1}, d))
  self.bn1 = self:add_module("bn1", bn(planes, d))
  self.relu = self:add_module("relu", nn.ReLU())
  self.conv2 = self:add_module("conv2", conv(planes, planes, 3, {padding = 1}, d))
  self.bn2 = self:add_module("bn2", bn(planes, d))
  if downsample then self.downsample = self:add_module("downsample", downsample) end
end

function BasicBlock:updateOutput(x)
  local out = self.relu:updateOutput(self.bn1:updateOutput(self.conv1:updateOutput(x)))
  out = self.bn2:updateOutput(self.conv2:updateOutput(out))
  local identity = self.downsample and self.downsample:updateOutput(x) or x
  return self.relu:updateOutput(out + identity)   -- the module, as torchvision (so per-module counts match)
end

-- Bottleneck (expansion 4): conv1x1 bn relu, conv3x3 (stride, groups) bn relu, conv1x1 bn, plus the input, relu
local Bottleneck = class("models.Bottleneck", Module)
M.Bottleneck = Bottleneck
Bottleneck.expansion = 4

function Bottleneck:__init(inplanes, planes, stride, downsample, groups, base_width, d)
  Module.__init(self)
  local width = math.floor(planes * (base_width / 64)) * groups
  self.conv1 = self:add_module("conv1", conv(inplanes, width, 1, nil, d))
  self.bn1 = self:add_module("bn1", bn(width, d))
  self.conv2 = self:add_module("conv2", conv(width, width, 3, {stride = stride, padding = 1, groups = groups}, d))
  self.bn2 = self:add_module("bn2", bn(width, d))
  self.conv3 = self:add_module("conv3", conv(width, planes * 4, 1, nil, d))
  self.bn3 = self:add_module("bn3", bn(planes * 4, d))
  self.relu = self:add_module("relu", nn.ReLU())
  if downsample then self.downsample = self:add_module("downsample", downsample) end
end

function Bottleneck:updateOutput(x)
  local out = self.relu:updateOutput(self.bn1:updateOutput(self.conv1:updateOutput(x)))
  out = self.relu:updateOutput(self.bn2:updateOutput(self.conv2:updateOutput(out)))
  out = self.bn3:updateOutput(self.conv3:updateOutput(out))
  local identity = self.downsample and self.downsample:updateOutput(x) or x
  return self.relu:updateOutput(out + identity)   -- the module, as torchvision (so per-module counts match)
end

local CHILDREN = {"conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"}

local ResNet = class("models.ResNet", Module)
M.ResNet = ResNet

-- block: BasicBlock or Bottleneck; layers: blocks per stage
function ResNet:__init(name, block, layers, opts)
  Module.__init(self)
  opts = opts or {}
  local n = common.children_upto(name, "the model", #CHILDREN, opts.upto, 4)
  local d = opts.device
  local groups, base_width = opts.groups or 1, opts.width_per_group or 64
  self.arch = name
  self.truncated = opts.upto ~= nil
  local inplanes = 64
  local function make_layer(planes, blocks, stride)
    local downsample
    if stride ~= 1 or inplanes ~= planes * block.expansion then
      downsample = nn.Sequential(conv(inplanes, planes * block.expansion, 1, {stride = stride}, d),
                                 bn(planes * block.expansion, d))
    end
    local layer = nn.Sequential(block(inplanes, planes, stride, downsample, groups, base_width, d))
    inplanes = planes * block.expansion
    for _ = 2, blocks do layer:add(block(inplanes, planes, 1, nil, groups, base_width, d)) end
    return layer
  end
  local ctors = {
    function() return conv(3, 64, 7, {stride = 2, padding = 3}, d) end,
    function() return bn(64, d) end,
    function() return nn.ReLU() end,
    function() return nn.MaxPool2d(3, {stride = 2, padding = 1}) end,
    function() return make_layer(64, layers[1], 1) end,
    function() return make_layer(128, layers[2], 2) end,
    function() return make_layer(256, layers[3], 2) end,
    function() return make_layer(512, layers[4], 2) end,
    function() return nn.AdaptiveAvgPool2d({1, 1}) end,
    function() return nn.Linear(512 * block.expansion, opts.num_classes or 1000, {device = d}) end,
  }
  self.extract_list = {}
  for i = 1, n do
    local m = ctors[i]()
    self[CHILDREN[i]] = self:add_module(CHILDREN[i], m)
    self.extract_list[i] = m
  end
end

function ResNet:updateOutput(x)
  local h = x
  for i, m in ipairs(self.extract_list) do
    if i == 10 then h = h:reshape(h:size(1), -1) end   -- torch.flatten(x, 1) before fc
    h = m:updateOutput(h)
  end
  return h
end

M.info = {}
local ARCHS = {
  resnet18 = {BasicBlock, {2, 2, 2, 2}}, resnet34 = {BasicBlock, {3, 4, 6, 3}},
  resnet50 = {Bottleneck, {3, 4, 6, 3}}, resnet101 = {Bottleneck, {3, 4, 23, 3}},
  resnet152 = {Bottleneck, {3, 8, 36, 3}},
  resnext50_32x4d = {Bottleneck, {3, 4, 6, 3}, 32, 4}, resnext101_32x8d = {Bottleneck, {3, 4, 23, 3}, 32, 8},
}
for name, a in pairs(ARCHS) do
  M[name] = function(opts)
    local o = {}
    for k, v in pairs(opts or {}) do o[k] = v end
    if a[3] then o.groups, o.width_per_group = a[3], a[4] end
    return ResNet(name, a[1], a[2], o)
  end
  M.info[name] = {list = "model", children = CHILDREN}
end

return M

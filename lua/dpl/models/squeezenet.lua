-- SqueezeNet 1.1 (and 1.0) as torchvision 0.14's models.squeezenet1_1 / squeezenet1_0: the same module tree and
-- state_dict names (features.N.squeeze / expand1x1 / expand3x3, classifier.1), ceil-mode max pools, the same forward
-- (features, classifier = dropout, 1x1 conv, ReLU, global average pool; flatten) and torchvision's initialisation
-- (kaiming-uniform convs, the final conv N(0, 0.01), zero biases).
--
--   local squeezenet = require "dpl.models.squeezenet"
--   local m = squeezenet.squeezenet1_1({upto = 7})   -- features.0 .. features.7 (fire5) only
--
-- opts: upto (0-based index into `features`; nothing after it is built), device, num_classes.
local dpl = require "dpl"
local autograd = require "dpl.autograd"
local class = require "dpl.class"
local Module = require "dpl.nn.Module"
local nn = require "dpl.nn"
local common = require "dpl.models.common"

local M = {}

-- kaiming_uniform_(w) with the default a = 0: U(-b, b), b = sqrt(6 / fan_in); bias 0
local function conv(cin, cout, k, opts, d)
  opts = opts or {}
  opts.device = d
  local c = nn.Conv2d(cin, cout, k, opts)
  autograd.no_grad(function()
    local b = math.sqrt(6 / (cin * k * k))
    c.weight:copy_(dpl.uniform(-b, b, c.weight:size(), {device = d}))
    c.bias:zero_()
  end)
  return c
end

-- Fire: squeeze 1x1 + ReLU, then the concatenation (along channels) of expand1x1 + ReLU and expand3x3 + ReLU
local Fire = class("models.Fire", Module)
M.Fire = Fire

function Fire:__init(inplanes, squeeze, e1, e3, d)
  Module.__init(self)
  self.inplanes = inplanes
  self.squeeze = self:add_module("squeeze", conv(inplanes, squeeze, 1, nil, d))
  self.squeeze_activation = self:add_module("squeeze_activation", nn.ReLU())
  self.expand1x1 = self:add_module("expand1x1", conv(squeeze, e1, 1, nil, d))
  self.expand1x1_activation = self:add_module("expand1x1_activation", nn.ReLU())
  self.expand3x3 = self:add_module("expand3x3", conv(squeeze, e3, 3, {padding = 1}, d))
  self.expand3x3_activation = self:add_module("expand3x3_activation", nn.ReLU())
end

function Fire:updateOutput(x)
  local s = self.squeeze_activation:updateOutput(self.squeeze:updateOutput(x))
  local a = self.expand1x1_activation:updateOutput(self.expand1x1:updateOutput(s))
  local b = self.expand3x3_activation:updateOutput(self.expand3x3:updateOutput(s))
  return dpl.cat({a, b}, 2)
end

function Fire:extra_repr()
  return ("%d -> squeeze %d -> %d + %d"):format(self.inplanes, self.squeeze.out_channels, self.expand1x1.out_channels,
    self.expand3x3.out_channels)
end

local function pool() return function() return nn.MaxPool2d(3, {stride = 2, ceil_mode = true}) end end
local function relu() return function() return nn.ReLU() end end
local function fire(...)
  local a = {...}
  return function(d) return Fire(a[1], a[2], a[3], a[4], d) end
end

local FEATURES = {
  ["1_1"] = {
    function(d) return conv(3, 64, 3, {stride = 2}, d) end, relu(), pool(),
    fire(64, 16, 64, 64), fire(128, 16, 64, 64), pool(),
    fire(128, 32, 128, 128), fire(256, 32, 128, 128), pool(),
    fire(256, 48, 192, 192), fire(384, 48, 192, 192), fire(384, 64, 256, 256), fire(512, 64, 256, 256),
  },
  ["1_0"] = {
    function(d) return conv(3, 96, 7, {stride = 2}, d) end, relu(), pool(),
    fire(96, 16, 64, 64), fire(128, 16, 64, 64), fire(128, 32, 128, 128), pool(),
    fire(256, 32, 128, 128), fire(256, 48, 192, 192), fire(384, 48, 192, 192), fire(384, 64, 256, 256), pool(),
    fire(512, 64, 256, 256),
  },
}

local SqueezeNet = class("models.SqueezeNet", Module)
M.SqueezeNet = SqueezeNet

function SqueezeNet:__init(version, opts)
  Module.__init(self)
  opts = opts or {}
  local name = "squeezenet" .. version
  local list = FEATURES[version]
  local n = common.children_upto(name, "features", #list, opts.upto, 4)
  local d = opts.device
  self.arch = name
  local features = nn.Sequential()
  for i = 1, n do features:add(list[i](d)) end
  self.features = self:add_module("features", features)
  self.truncated = opts.upto ~= nil
  self.extract_list = features:children()
  if not self.truncated then
    local final = nn.Conv2d(512, opts.num_classes or 1000, 1, {device = d})
    autograd.no_grad(function()
      final.weight:copy_(dpl.normal(0, 0.01, final.weight:size(), {device = d}))
      final.bias:zero_()
    end)
    self.classifier = self:add_module("classifier", nn.Sequential(nn.Dropout(0.5), final, nn.ReLU(),
      nn.AdaptiveAvgPool2d({1, 1})))
  end
end

function SqueezeNet:updateOutput(x)
  local h = self.features:updateOutput(x)
  if self.truncated then return h end
  h = self.classifier:updateOutput(h)
  return h:reshape(h:size(1), -1)
end

function M.squeezenet1_1(opts) return SqueezeNet("1_1", opts) end
function M.squeezenet1_0(opts) return SqueezeNet("1_0", opts) end

M.info = {}
for version, list in pairs(FEATURES) do
  local children = {}
  for i = 1, #list do children[i] = tostring(i - 1) end
  M.info["squeezenet" .. version] = {list = "features", children = children}
end

return M

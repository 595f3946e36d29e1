-- VGG as torchvision 0.14's models.vgg11 / vgg16 / vgg16_bn / vgg19 (and vgg11_bn, vgg13, vgg13_bn, vgg19_bn): the
-- same module tree and state_dict names (features.N.*, classifier.{0,3,6}.*), the same forward (features, avgpool to
-- 7x7, flatten, classifier) and torchvision's initialisation (kaiming-normal fan-out convs with zero bias, BN 1/0,
-- Linear N(0, 0.01) with zero bias).
--
--   local vgg = require "dpl.models.vgg"
--   local m = vgg.vgg16({upto = 15})     -- features.0 .. features.15 (relu3_3) only; m.extract_list holds them
--
-- opts: upto (0-based index into `features`; nothing after it is built), device, num_classes, init (false: skip the
-- random initialisation where it is costly, for weights that are loaded next: the Linear layers start at zero and the
-- convs keep nn.Conv2d's own init).
local dpl = require "dpl"
local autograd = require "dpl.autograd"
local class = require "dpl.class"
local Module = require "dpl.nn.Module"
local nn = require "dpl.nn"
local common = require "dpl.models.common"

local M = {}

local CFGS = {
  A = {64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"},
  B = {64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"},
  D = {64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"},
  E = {64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"},
}

-- the list of constructors of `features`' children for a configuration
local function feature_list(cfg, batch_norm, init)
  local list, c = {}, 3
  for _, v in ipairs(cfg) do
    if v == "M" then
      list[#list + 1] = function() return nn.MaxPool2d(2, {stride = 2}) end
    else
      local cin = c
      list[#list + 1] = function(d)
        local conv = nn.Conv2d(cin, v, 3, {padding = 1, device = d})
        -- kaiming_normal_(mode="fan_out", nonlinearity="relu"), bias 0
        if init then
          autograd.no_grad(function()
            conv.weight:copy_(dpl.normal(0, math.sqrt(2 / (v * 9)), conv.weight:size(), {device = d}))
            conv.bias:zero_()
          end)
        end
        return conv
      end
      if batch_norm then list[#list + 1] = function(d) return nn.BatchNorm2d(v, {device = d}) end end
      list[#list + 1] = function() return nn.ReLU() end
      c = v
    end
  end
  return list
end

-- nn.Linear with torchvision's VGG init, N(0, 0.01) and bias 0, drawn once (the first classifier layer has 102M
-- weights: built small, then given its parameters, so nn.Linear's own uniform init is not drawn too)
local function linear(cin, cout, d, init)
  local l = nn.Linear(1, 1, {device = d})
  l.in_features, l.out_features = cin, cout
  l:register_parameter("weight", init and dpl.normal(0, 0.01, {cout, cin}, {device = d})
                                 or dpl.zeros({cout, cin}, {device = d}))
  l:register_parameter("bias", dpl.zeros({cout}, {device = d}))
  return l
end

local VGG = class("models.VGG", Module)
M.VGG = VGG

function VGG:__init(name, cfg, batch_norm, opts)
  Module.__init(self)
  opts = opts or {}
  local init = opts.init ~= false
  local list = feature_list(CFGS[cfg], batch_norm, init)
  local n = common.children_upto(name, "features", #list, opts.upto, 4)
  local d = opts.device
  self.arch = name
  local features = nn.Sequential()
  for i = 1, n do features:add(list[i](d)) end
  self.features = self:add_module("features", features)
  self.truncated = opts.upto ~= nil
  self.extract_list = features:children()
  if not self.truncated then
    self.avgpool = self:add_module("avgpool", nn.AdaptiveAvgPool2d({7, 7}))
    self.classifier = self:add_module("classifier", nn.Sequential(
      linear(512 * 7 * 7, 4096, d, init), nn.ReLU(), nn.Dropout(0.5),
      linear(4096, 4096, d, init), nn.ReLU(), nn.Dropout(0.5),
      linear(4096, opts.num_classes or 1000, d, init)))
  end
end

function VGG:updateOutput(x)
  local h = self.features:updateOutput(x)
  if self.truncated then return h end
  h = self.avgpool:updateOutput(h)
  h = h:reshape(h:size(1), -1)
  return self.classifier:updateOutput(h)
end

M.info = {}
local ARCHS = {vgg11 = {"A", false}, vgg11_bn = {"A", true}, vgg13 = {"B", false}, vgg13_bn = {"B", true},
               vgg16 = {"D", false}, vgg16_bn = {"D", true}, vgg19 = {"E", false}, vgg19_bn = {"E", true}}
for name, a in pairs(ARCHS) do
  M[name] = function(opts) return VGG(name, a[1], a[2], opts) end
  local children = {}
  for i = 1, #feature_list(CFGS[a[1]], a[2]) do children[i] = tostring(i - 1) end
  M.info[name] = {list = "features", children = children}
end

return M

-- AlexNet as torchvision 0.14's models.alexnet: the same module tree and state_dict names (features.0.weight, ...,
-- classifier.6.bias), the same forward (features, avgpool to 6x6, flatten, classifier).
--
--   local alexnet = require "dpl.models.alexnet"
--   local m = alexnet.alexnet()                  -- the whole model (classification)
--   local t = alexnet.alexnet({upto = 11})       -- only features.0 .. features.11 are built
--   (docs/benchmarks/lossnets.md) for _, child in ipairs(t.extract_list) do x = child:forward(x) end
--
-- opts: upto (0-based index into `features`; nothing after it is built), device, num_classes, init (false: the
-- Linear layers start at zero instead of being drawn at random, for weights that are loaded next).
local dpl = require "dpl"
local class = require "dpl.class"
local Module = require "dpl.nn.Module"
local nn = require "dpl.nn"
local common = require "dpl.models.common"

local M = {}

-- nn.Linear; with init == false built small and given zero parameters (37M weights are not drawn for nothing)
local function linear(cin, cout, d, init)
  if init then return nn.Linear(cin, cout, {device = d}) end
  local l = nn.Linear(1, 1, {device = d})
  l.in_features, l.out_features = cin, cout
  l:register_parameter("weight", dpl.zeros({cout, cin}, {device = d}))
  l:register_parameter("bias", dpl.zeros({cout}, {device = d}))
  return l
end

-- the 13 children of `features`, in order
local FEATURES = {
  function(d) return nn.Conv2d(3, 64, 11, {stride = 4, padding = 2, device = d}) end,
  function() return nn.ReLU() end,
  function() return nn.MaxPool2d(3, {stride = 2}) end,
  function(d) return nn.Conv2d(64, 192, 5, {padding = 2, device = d}) end,
  function() return nn.ReLU() end,
  function() return nn.MaxPool2d(3, {stride = 2}) end,
  function(d) return nn.Conv2d(192, 384, 3, {padding = 1, device = d}) end,
  function() return nn.ReLU() end,
  function(d) return nn.Conv2d(384, 256, 3, {padding = 1, device = d}) end,
  function() return nn.ReLU() end,
  function(d) return nn.Conv2d(256, 256, 3, {padding = 1, device = d}) end,
  function() return nn.ReLU() end,
  function() return nn.MaxPool2d(3, {stride = 2}) end,
}

local AlexNet = class("models.AlexNet", Module)
M.AlexNet = AlexNet

function AlexNet:__init(opts)
  Module.__init(self)
  opts = opts or {}
  local n = common.children_upto("alexnet", "features", #FEATURES, opts.upto, 3)
  local d = opts.device
  local features = nn.Sequential()
  for i = 1, n do features:add(FEATURES[i](d)) end
  self:add_module("features", features)
  self.features = features
  self.truncated = opts.upto ~= nil
  self.extract_list = features:children()
  if not self.truncated then
    local init = opts.init ~= false
    self.avgpool = self:add_module("avgpool", nn.AdaptiveAvgPool2d({6, 6}))
    self.classifier = self:add_module("classifier", nn.Sequential(
      nn.Dropout(0.5), linear(256 * 6 * 6, 4096, d, init), nn.ReLU(),
      nn.Dropout(0.5), linear(4096, 4096, d, init), nn.ReLU(),
      linear(4096, opts.num_classes or 1000, d, init)))
  end
end

function AlexNet:updateOutput(x)
  local h = self.features:updateOutput(x)
  if self.truncated then return h end
  h = self.avgpool:updateOutput(h)
  h = h:reshape(h:size(1), -1)
  return self.classifier:updateOutput(h)
end

function M.alexnet(opts) return AlexNet(opts) end

M.info = {alexnet = {list = "features", children = {}}}
for i = 1, #FEATURES do M.info.alexnet.children[i] = tostring(i - 1) end

return M

-- GoogLeNet (Inception v1) as torchvision 0.14's models.googlenet, for loss networks (lua/dpl/models/README.md).
--
--   local googlenet = require "dpl.models.googlenet"
--   local m = googlenet.googlenet()                 -- whole model: conv1 ... inception5b, avgpool, dropout, fc
--   local m = googlenet.googlenet({upto = 8})       -- conv1 ... inception4a only (the reference's child index 8)
--
-- The module tree and parameter names are torchvision's (conv1.conv.weight, inception3a.branch2.1.bn.running_var,
-- fc.bias), so a torchvision state_dict loads without renaming. As the reference implementation
-- (docs/benchmarks/lossnets.md), transform_input is never applied and the auxiliary classifiers aux1/aux2 are not built
-- (their keys in a torchvision checkpoint are ignored by lossnet; a strict load of a full torchvision state_dict must
-- drop them first). m.extract_list holds the children in order (0-based child index i at extract_list[i + 1]).
local dpl = require "dpl"
local class = require "dpl.class"
local nn = require "dpl.nn"
local common = require "dpl.models.common"
local Module = nn.Module

local M = {}

-- torchvision initialises GoogLeNet's convs and linear layers with trunc_normal(std 0.01, a = -2, b = 2)
local function trunc_normal_(m, std)
  local w = m.weight
  m:register_parameter("weight", dpl.normal(0, std, w:size(), {device = w:device()}):clamp(-2, 2))
end

-- BasicConv2d: conv (no bias) -> BatchNorm (eps 1e-3) -> ReLU; children conv, bn. Shared with Inception v3.
local BasicConv2d = class("models.BasicConv2d", Module)
M.BasicConv2d = BasicConv2d

-- opts: kernel_size (number or {kh, kw}), stride, padding, device, std (init std, default 0.01)
function BasicConv2d:__init(in_channels, out_channels, opts)
  Module.__init(self)
  local dev = opts.device
  self.conv = self:add_module("conv", nn.Conv2d(in_channels, out_channels, opts.kernel_size,
    {stride = opts.stride, padding = opts.padding, bias = false, device = dev}))
  self.bn = self:add_module("bn", nn.BatchNorm2d(out_channels, {eps = 1e-3, device = dev}))
  trunc_normal_(self.conv, opts.std or 0.01)
end

function BasicConv2d:updateOutput(x)
  return self.bn:updateOutput(self.conv:updateOutput(x)):relu()
end

-- Inception: four branches concatenated on channels; children branch1 (BasicConv2d 1x1), branch2 and branch3
-- (Sequential: 1x1 reduce, 3x3; torchvision's "5x5" branch really uses a 3x3 kernel), branch4 (Sequential: 3x3
-- max-pool stride 1 pad 1 ceil_mode, 1x1 projection).
local Inception = class("models.googlenet.Inception", Module)
M.Inception = Inception

function Inception:__init(in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj, dev)
  Module.__init(self)
  local function conv(i, o, k, p) return BasicConv2d(i, o, {kernel_size = k, padding = p, device = dev}) end
  self.b1 = self:add_module("branch1", conv(in_channels, ch1x1, 1))
  self.b2 = self:add_module("branch2", nn.Sequential(conv(in_channels, ch3x3red, 1), conv(ch3x3red, ch3x3, 3, 1)))
  self.b3 = self:add_module("branch3", nn.Sequential(conv(in_channels, ch5x5red, 1), conv(ch5x5red, ch5x5, 3, 1)))
  self.b4 = self:add_module("branch4", nn.Sequential(nn.MaxPool2d(3, {stride = 1, padding = 1, ceil_mode = true}),
    conv(in_channels, pool_proj, 1)))
end

function Inception:updateOutput(x)
  return dpl.cat({self.b1:updateOutput(x), self.b2:updateOutput(x), self.b3:updateOutput(x), self.b4:updateOutput(x)}, 2)
end

-- the reference's child list (model.children() of torchvision's GoogLeNet without the aux classifiers, which come after
-- inception4a/4d in registration order but are never used: docs/benchmarks/lossnets.md)
local CHILDREN = {"conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
                  "inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4",
                  "inception5a", "inception5b", "avgpool", "dropout", "fc"}
M.info = {googlenet = {list = "model", children = CHILDREN}}

local function make_child(name, dev)
  local function conv(i, o, k, s, p) return BasicConv2d(i, o, {kernel_size = k, stride = s, padding = p, device = dev}) end
  local function inc(...) local a = {...}; a[#a + 1] = dev; return Inception(unpack(a)) end
  local pool = function(k) return nn.MaxPool2d(k, {stride = 2, ceil_mode = true}) end
  if name == "conv1" then return conv(3, 64, 7, 2, 3)
  elseif name == "maxpool1" then return pool(3)
  elseif name == "conv2" then return conv(64, 64, 1)
  elseif name == "conv3" then return conv(64, 192, 3, 1, 1)
  elseif name == "maxpool2" then return pool(3)
  elseif name == "inception3a" then return inc(192, 64, 96, 128, 16, 32, 32)
  elseif name == "inception3b" then return inc(256, 128, 128, 192, 32, 96, 64)
  elseif name == "maxpool3" then return pool(3)
  elseif name == "inception4a" then return inc(480, 192, 96, 208, 16, 48, 64)
  elseif name == "inception4b" then return inc(512, 160, 112, 224, 24, 64, 64)
  elseif name == "inception4c" then return inc(512, 128, 128, 256, 24, 64, 64)
  elseif name == "inception4d" then return inc(512, 112, 144, 288, 32, 64, 64)
  elseif name == "inception4e" then return inc(528, 256, 160, 320, 32, 128, 128)
  elseif name == "maxpool4" then return pool(2)
  elseif name == "inception5a" then return inc(832, 256, 160, 320, 32, 128, 128)
  elseif name == "inception5b" then return inc(832, 384, 192, 384, 48, 128, 128)
  elseif name == "avgpool" then return nn.AdaptiveAvgPool2d({1, 1})
  elseif name == "dropout" then return nn.Dropout(0.2)
  elseif name == "fc" then
    local fc = nn.Linear(1024, 1000, {device = dev})
    trunc_normal_(fc, 0.01)
    return fc
  end
  error("googlenet: unknown child " .. tostring(name))
end

local GoogLeNet = class("models.GoogLeNet", Module)
M.GoogLeNet = GoogLeNet

-- opts.upto: build only children 0..upto of CHILDREN; opts.device
function GoogLeNet:__init(opts)
  Module.__init(self)
  common.add_children(self, "googlenet", CHILDREN, make_child, opts or {})
end

-- The whole model: torchvision's forward without transform_input (eval: logits; no aux outputs). A truncated model
-- runs its children in order and returns the last one's output.
function GoogLeNet:updateOutput(x)
  local list = self.extract_list
  if self.upto == nil then
    for i = 1, 16 do x = list[i]:updateOutput(x) end         -- conv1 ... inception5b
    x = self.avgpool:updateOutput(x)
    x = x:reshape(x:size(1), -1)
    x = self.dropout:updateOutput(x)
    return self.fc:updateOutput(x)
  end
  for _, c in ipairs(list) do x = c:updateOutput(x) end
  return x
end

function M.googlenet(opts) return GoogLeNet(opts) end

return M

-- Inception v3 as torchvision 0.14's models.inception_v3, for loss networks (lua/dpl/models/README.md).
--
--   local inception = require "dpl.models.inception"
--   local m = inception.inception_v3()              -- whole model: Conv2d_1a_3x3 ... Mixed_7c, avgpool, dropout, fc
--   local m = inception.inception_v3({upto = 9})    -- Conv2d_1a_3x3 ... Mixed_5d only (the reference's child index 9)
--
-- Module tree and parameter names are torchvision's (Mixed_6b.branch7x7_2.conv.weight ...), so a torchvision
-- state_dict loads without renaming. As the reference implementation (docs/benchmarks/lossnets.md), transform_input is
-- never applied and AuxLogits is not built (its keys in a torchvision checkpoint must be dropped for a strict load).
-- The whole model needs inputs of at least 75x75 (Mixed_7a's stride-2 3x3 convs); the truncated ones work at 64.
-- m.extract_list holds the children in order (0-based child index i at extract_list[i + 1]).
local dpl = require "dpl"
local F = require "dpl.nn.functional"
local class = require "dpl.class"
local nn = require "dpl.nn"
local Module = nn.Module
local BasicConv2d = require("dpl.models.googlenet").BasicConv2d
local common = require "dpl.models.common"

local M = {}

-- torchvision initialises Inception v3's convs and linear layers with trunc_normal(std 0.1, a = -2, b = 2)
local STD = 0.1

-- a block whose children are BasicConv2d's named as torchvision's; conv(name, in, out, k, {stride, padding})
local function new_block(self, dev)
  Module.__init(self)
  return function(name, i, o, k, o2)
    o2 = o2 or {}
    local m = BasicConv2d(i, o, {kernel_size = k, stride = o2.stride, padding = o2.padding, device = dev, std = STD})
    self[name] = self:add_module(name, m)
    return m
  end
end

local function avg3(x) return F.avg_pool2d(x, 3, {stride = 1, padding = 1}) end    -- count_include_pad, as F.avg_pool2d
local function max3s2(x) return F.max_pool2d(x, 3, {stride = 2}) end

-- InceptionA(in, pool_features): 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | avgpool -> 1x1
local InceptionA = class("models.inception.InceptionA", Module)
function InceptionA:__init(in_channels, pool_features, dev)
  local conv = new_block(self, dev)
  conv("branch1x1", in_channels, 64, 1)
  conv("branch5x5_1", in_channels, 48, 1)
  conv("branch5x5_2", 48, 64, 5, {padding = 2})
  conv("branch3x3dbl_1", in_channels, 64, 1)
  conv("branch3x3dbl_2", 64, 96, 3, {padding = 1})
  conv("branch3x3dbl_3", 96, 96, 3, {padding = 1})
  conv("branch_pool", in_channels, pool_features, 1)
end
function InceptionA:updateOutput(x)
  local b1 = self.branch1x1:updateOutput(x)
  local b5 = self.branch5x5_2:updateOutput(self.branch5x5_1:updateOutput(x))
  local b3 = self.branch3x3dbl_3:updateOutput(self.branch3x3dbl_2:updateOutput(self.branch3x3dbl_1:updateOutput(x)))
  local bp = self.branch_pool:updateOutput(avg3(x))
  return dpl.cat({b1, b5, b3, bp}, 2)
end

-- InceptionB(in): 3x3 s2 | 1x1 -> 3x3 -> 3x3 s2 | maxpool 3x3 s2
local InceptionB = class("models.inception.InceptionB", Module)
function InceptionB:__init(in_channels, dev)
  local conv = new_block(self, dev)
  conv("branch3x3", in_channels, 384, 3, {stride = 2})
  conv("branch3x3dbl_1", in_channels, 64, 1)
  conv("branch3x3dbl_2", 64, 96, 3, {padding = 1})
  conv("branch3x3dbl_3", 96, 96, 3, {stride = 2})
end
function InceptionB:updateOutput(x)
  local b3 = self.branch3x3:updateOutput(x)
  local bd = self.branch3x3dbl_3:updateOutput(self.branch3x3dbl_2:updateOutput(self.branch3x3dbl_1:updateOutput(x)))
  return dpl.cat({b3, bd, max3s2(x)}, 2)
end

-- InceptionC(in, c7): 1x1 | 1x1 -> 1x7 -> 7x1 | 1x1 -> 7x1 -> 1x7 -> 7x1 -> 1x7 | avgpool -> 1x1
local InceptionC = class("models.inception.InceptionC", Module)
function InceptionC:__init(in_channels, c7, dev)
  local conv = new_block(self, dev)
  local p17, p71 = {padding = {0, 3}}, {padding = {3, 0}}
  conv("branch1x1", in_channels, 192, 1)
  conv("branch7x7_1", in_channels, c7, 1)
  conv("branch7x7_2", c7, c7, {1, 7}, p17)
  conv("branch7x7_3", c7, 192, {7, 1}, p71)
  conv("branch7x7dbl_1", in_channels, c7, 1)
  conv("branch7x7dbl_2", c7, c7, {7, 1}, p71)
  conv("branch7x7dbl_3", c7, c7, {1, 7}, p17)
  conv("branch7x7dbl_4", c7, c7, {7, 1}, p71)
  conv("branch7x7dbl_5", c7, 192, {1, 7}, p17)
  conv("branch_pool", in_channels, 192, 1)
end
function InceptionC:updateOutput(x)
  local b1 = self.branch1x1:updateOutput(x)
  local b7 = x
  for _, n in ipairs {"branch7x7_1", "branch7x7_2", "branch7x7_3"} do b7 = self[n]:updateOutput(b7) end
  local bd = x
  for k = 1, 5 do bd = self["branch7x7dbl_" .. k]:updateOutput(bd) end
  local bp = self.branch_pool:updateOutput(avg3(x))
  return dpl.cat({b1, b7, bd, bp}, 2)
end

-- InceptionD(in): 1x1 -> 3x3 s2 | 1x1 -> 1x7 -> 7x1 -> 3x3 s2 | maxpool 3x3 s2
local InceptionD = class("models.inception.InceptionD", Module)
function InceptionD:__init(in_channels, dev)
  local conv = new_block(self, dev)
  conv("branch3x3_1", in_channels, 192, 1)
  conv("branch3x3_2", 192, 320, 3, {stride = 2})
  conv("branch7x7x3_1", in_channels, 192, 1)
  conv("branch7x7x3_2", 192, 192, {1, 7}, {padding = {0, 3}})
  conv("branch7x7x3_3", 192, 192, {7, 1}, {padding = {3, 0}})
  conv("branch7x7x3_4", 192, 192, 3, {stride = 2})
end
function InceptionD:updateOutput(x)
  local b3 = self.branch3x3_2:updateOutput(self.branch3x3_1:updateOutput(x))
  local b7 = x
  for k = 1, 4 do b7 = self["branch7x7x3_" .. k]:updateOutput(b7) end
  return dpl.cat({b3, b7, max3s2(x)}, 2)
end

-- InceptionE(in): 1x1 | 1x1 -> (1x3 | 3x1) | 1x1 -> 3x3 -> (1x3 | 3x1) | avgpool -> 1x1
local InceptionE = class("models.inception.InceptionE", Module)
function InceptionE:__init(in_channels, dev)
  local conv = new_block(self, dev)
  local p13, p31 = {padding = {0, 1}}, {padding = {1, 0}}
  conv("branch1x1", in_channels, 320, 1)
  conv("branch3x3_1", in_channels, 384, 1)
  conv("branch3x3_2a", 384, 384, {1, 3}, p13)
  conv("branch3x3_2b", 384, 384, {3, 1}, p31)
  conv("branch3x3dbl_1", in_channels, 448, 1)
  conv("branch3x3dbl_2", 448, 384, 3, {padding = 1})
  conv("branch3x3dbl_3a", 384, 384, {1, 3}, p13)
  conv("branch3x3dbl_3b", 384, 384, {3, 1}, p31)
  conv("branch_pool", in_channels, 192, 1)
end
function InceptionE:updateOutput(x)
  local b1 = self.branch1x1:updateOutput(x)
  local t = self.branch3x3_1:updateOutput(x)
  local b3 = dpl.cat({self.branch3x3_2a:updateOutput(t), self.branch3x3_2b:updateOutput(t)}, 2)
  local d = self.branch3x3dbl_2:updateOutput(self.branch3x3dbl_1:updateOutput(x))
  local bd = dpl.cat({self.branch3x3dbl_3a:updateOutput(d), self.branch3x3dbl_3b:updateOutput(d)}, 2)
  local bp = self.branch_pool:updateOutput(avg3(x))
  return dpl.cat({b1, b3, bd, bp}, 2)
end

M.InceptionA, M.InceptionB, M.InceptionC, M.InceptionD, M.InceptionE =
  InceptionA, InceptionB, InceptionC, InceptionD, InceptionE

-- the reference's child list (torchvision's Inception3 children without AuxLogits, which sits between Mixed_6e and
-- Mixed_7a in registration order but is never used: docs/benchmarks/lossnets.md)
local CHILDREN = {"Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
                  "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                  "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "avgpool", "dropout", "fc"}
M.info = {inception_v3 = {list = "model", children = CHILDREN}}

local function make_child(name, dev)
  local function conv(i, o, k, s, p)
    return BasicConv2d(i, o, {kernel_size = k, stride = s, padding = p, device = dev, std = STD})
  end
  if name == "Conv2d_1a_3x3" then return conv(3, 32, 3, 2)
  elseif name == "Conv2d_2a_3x3" then return conv(32, 32, 3)
  elseif name == "Conv2d_2b_3x3" then return conv(32, 64, 3, 1, 1)
  elseif name == "maxpool1" or name == "maxpool2" then return nn.MaxPool2d(3, {stride = 2})
  elseif name == "Conv2d_3b_1x1" then return conv(64, 80, 1)
  elseif name == "Conv2d_4a_3x3" then return conv(80, 192, 3)
  elseif name == "Mixed_5b" then return InceptionA(192, 32, dev)
  elseif name == "Mixed_5c" then return InceptionA(256, 64, dev)
  elseif name == "Mixed_5d" then return InceptionA(288, 64, dev)
  elseif name == "Mixed_6a" then return InceptionB(288, dev)
  elseif name == "Mixed_6b" then return InceptionC(768, 128, dev)
  elseif name == "Mixed_6c" or name == "Mixed_6d" then return InceptionC(768, 160, dev)
  elseif name == "Mixed_6e" then return InceptionC(768, 192, dev)
  elseif name == "Mixed_7a" then return InceptionD(768, dev)
  elseif name == "Mixed_7b" then return InceptionE(1280, dev)
  elseif name == "Mixed_7c" then return InceptionE(2048, dev)
  elseif name == "avgpool" then return nn.AdaptiveAvgPool2d({1, 1})
  elseif name == "dropout" then return nn.Dropout(0.5)
  elseif name == "fc" then
    local fc = nn.Linear(2048, 1000, {device = dev})
    fc:register_parameter("weight", dpl.normal(0, STD, {1000, 2048}, {device = dev}):clamp(-2, 2))
    return fc
  end
  error("inception_v3: unknown child " .. tostring(name))
end

local Inception3 = class("models.Inception3", Module)
M.Inception3 = Inception3

-- opts.upto: build only children 0..upto of CHILDREN; opts.device
function Inception3:__init(opts)
  Module.__init(self)
  common.add_children(self, "inception_v3", CHILDREN, make_child, opts or {})
end

-- The whole model: torchvision's forward without transform_input (eval: logits; no aux output). A truncated model
-- runs its children in order and returns the last one's output.
function Inception3:updateOutput(x)
  local list = self.extract_list
  if self.upto == nil then
    for i = 1, 18 do x = list[i]:updateOutput(x) end         -- Conv2d_1a_3x3 ... Mixed_7c
    x = self.avgpool:updateOutput(x)
    x = self.dropout:updateOutput(x)
    x = x:reshape(x:size(1), -1)
    return self.fc:updateOutput(x)
  end
  for _, c in ipairs(list) do x = c:updateOutput(x) end
  return x
end

function M.inception_v3(opts) return Inception3(opts) end

return M

-- EfficientNet-B0 and -B7 as torchvision 0.14's models.efficientnet_b0 / efficientnet_b7, for loss networks
-- (lua/dpl/models/README.md).
--
--   local efficientnet = require "dpl.models.efficientnet"
--   local m = efficientnet.efficientnet_b0()             -- whole model: features, avgpool, classifier
--   local m = efficientnet.efficientnet_b7({upto = 4})   -- features.0 ... features.4 only (the reference's child index
-- 4)
--
-- Module tree and parameter names are torchvision's: features.0 is the stem Conv2dNormActivation (conv 3x3 s2, BN,
-- SiLU), features.1 ... features.7 are stages of MBConv blocks (features.2.1.block.3.1.running_mean ...), features.8
-- the last 1x1 Conv2dNormActivation, then avgpool and classifier (Dropout, Linear). An MBConv's `block` holds, in
-- order, the expansion Conv2dNormActivation (left out when the expand ratio is 1), the depthwise one, the
-- SqueezeExcitation (avgpool, fc1, fc2, activation, scale_activation) and the projection (conv, BN, no activation);
-- its stochastic_depth (row mode, probability 0.2 * block index / total blocks) acts in training only, and the
-- residual is added when the stride is 1 and the channels do not change.
-- m.extract_list holds the children of `features` in order (0-based index i at extract_list[i + 1]).
local dpl = require "dpl"
local class = require "dpl.class"
local nn = require "dpl.nn"
local common = require "dpl.models.common"
local Module = nn.Module

local M = {}

-- ---- initialisation as torchvision: convs kaiming_normal(fan_out), BN 1/0 (the default), linear U(+-1/sqrt(out)), 0
local function kaiming_conv_(conv)
  local w = conv.weight
  local s = w:size()
  local fan_out = s[1] * s[3] * s[4]
  conv:register_parameter("weight", dpl.normal(0, math.sqrt(2 / fan_out), s, {device = w:device()}))
  if conv.bias then conv:register_parameter("bias", dpl.zeros({s[1]}, {device = w:device()})) end
end

-- ---- building blocks ----------------------------------------------------------------------------------------------
-- torchvision's _make_divisible(v, 8): round to the nearest multiple of 8, never below 8 nor 10% below v
local function make_divisible(v, divisor)
  divisor = divisor or 8
  local new_v = math.max(divisor, math.floor((v + divisor / 2) / divisor) * divisor)
  if new_v < 0.9 * v then new_v = new_v + divisor end
  return new_v
end
M.make_divisible = make_divisible

-- Conv2dNormActivation: Sequential conv (no bias, padding (k-1)/2) -> BatchNorm -> activation (SiLU or none)
local function conv_norm_act(cin, cout, k, o)
  local seq = nn.Sequential()
  local conv = nn.Conv2d(cin, cout, k, {stride = o.stride or 1, padding = (k - 1) / 2, groups = o.groups or 1,
                                        bias = false, device = o.device})
  kaiming_conv_(conv)
  seq:add(conv)
  seq:add(nn.BatchNorm2d(cout, {eps = o.bn_eps, momentum = o.bn_momentum, device = o.device}))
  if o.activation ~= false then seq:add(nn.SiLU()) end
  return seq
end

-- SqueezeExcitation: x * sigmoid(fc2(silu(fc1(avgpool(x))))); children avgpool, fc1, fc2, activation,
-- scale_activation (torchvision.ops.SqueezeExcitation's names and order)
local SqueezeExcitation = class("models.SqueezeExcitation", Module)
M.SqueezeExcitation = SqueezeExcitation
function SqueezeExcitation:__init(input_channels, squeeze_channels, dev)
  Module.__init(self)
  self.avgpool = self:add_module("avgpool", nn.AdaptiveAvgPool2d(1))
  self.fc1 = self:add_module("fc1", nn.Conv2d(input_channels, squeeze_channels, 1, {device = dev}))
  self.fc2 = self:add_module("fc2", nn.Conv2d(squeeze_channels, input_channels, 1, {device = dev}))
  self.activation = self:add_module("activation", nn.SiLU())
  self.scale_activation = self:add_module("scale_activation", nn.Sigmoid())
  kaiming_conv_(self.fc1)
  kaiming_conv_(self.fc2)
end
function SqueezeExcitation:updateOutput(x)
  local s = self.avgpool:updateOutput(x)
  s = self.activation:updateOutput(self.fc1:updateOutput(s))
  s = self.scale_activation:updateOutput(self.fc2:updateOutput(s))
  return s * x
end

-- StochasticDepth(p, "row"), as torchvision.ops.StochasticDepth: in training each sample (row) of the batch is
-- zeroed with probability p and the others scaled by 1 / (1 - p); identity in evaluation or when p is 0. The mask
-- comes from dpl's counter-based stream (dpl.manual_seed), the same on every device.
local StochasticDepth = class("models.StochasticDepth", Module)
M.StochasticDepth = StochasticDepth
function StochasticDepth:__init(p, mode)
  Module.__init(self)
  self.p, self.mode = p, mode or "row"
  if p < 0 or p > 1 then error("StochasticDepth: p must be in [0, 1], got " .. tostring(p), 2) end
  if self.mode ~= "row" and self.mode ~= "batch" then error("StochasticDepth: mode must be 'row' or 'batch'", 2) end
end
function StochasticDepth:updateOutput(x)
  if not self.train or self.p == 0 then return x end
  local survival = 1 - self.p
  local shape = {}
  for i = 1, x:dim() do shape[i] = 1 end
  if self.mode == "row" then shape[1] = x:size(1) end
  local noise = dpl.rand(shape, {device = x:device()}):lt(survival)
  if survival > 0 then noise = noise * (1 / survival) end
  return x * noise
end
function StochasticDepth:extra_repr() return ("p=%g, mode=%s"):format(self.p, self.mode) end

-- MBConv: block (Sequential), stochastic_depth; result = block(x) (+ stochastic_depth(block(x)) ... + x when residual)
local MBConv = class("models.MBConv", Module)
M.MBConv = MBConv
-- cnf: expand_ratio, kernel, stride, input_channels, out_channels; bn = {eps, momentum}
function MBConv:__init(cnf, sd_prob, bn, dev)
  Module.__init(self)
  self.use_res_connect = cnf.stride == 1 and cnf.input_channels == cnf.out_channels
  local o = {bn_eps = bn.eps, bn_momentum = bn.momentum, device = dev}
  local function with(t) local r = {}; for k, v in pairs(o) do r[k] = v end; for k, v in pairs(t) do r[k] = v end; return r end
  local block = nn.Sequential()
  local expanded = make_divisible(cnf.input_channels * cnf.expand_ratio)
  if expanded ~= cnf.input_channels then
    block:add(conv_norm_act(cnf.input_channels, expanded, 1, o))
  end
  block:add(conv_norm_act(expanded, expanded, cnf.kernel, with {stride = cnf.stride, groups = expanded}))
  block:add(SqueezeExcitation(expanded, math.max(1, math.floor(cnf.input_channels / 4)), dev))
  block:add(conv_norm_act(expanded, cnf.out_channels, 1, with {activation = false}))
  self.block = self:add_module("block", block)
  self.stochastic_depth = self:add_module("stochastic_depth", StochasticDepth(sd_prob, "row"))
  self.out_channels = cnf.out_channels
end
function MBConv:updateOutput(x)
  local r = self.block:updateOutput(x)
  if self.use_res_connect then
    r = self.stochastic_depth:updateOutput(r) + x
  end
  return r
end

-- ---- the network --------------------------------------------------------------------------------------------------
-- torchvision's B0 stage table: expand ratio, kernel, stride, in, out, layers
local STAGES = {
  {1, 3, 1, 32, 16, 1}, {6, 3, 2, 16, 24, 2}, {6, 5, 2, 24, 40, 2}, {6, 3, 2, 40, 80, 3},
  {6, 5, 1, 80, 112, 3}, {6, 5, 2, 112, 192, 4}, {6, 3, 1, 192, 320, 1},
}

local VARIANTS = {
  efficientnet_b0 = {width = 1.0, depth = 1.0, dropout = 0.2, bn = {eps = 1e-5, momentum = 0.1}},
  efficientnet_b7 = {width = 2.0, depth = 3.1, dropout = 0.5, bn = {eps = 1e-3, momentum = 0.01}},
}

-- features' children: 0 the stem, 1..7 the MBConv stages, 8 the last 1x1 Conv2dNormActivation
local CHILDREN = {"0", "1", "2", "3", "4", "5", "6", "7", "8"}
M.info = {
  efficientnet_b0 = {list = "features", children = CHILDREN},
  efficientnet_b7 = {list = "features", children = CHILDREN},
}

-- The stage configurations after the width and depth multipliers (torchvision's MBConvConfig).
function M.config(arch)
  local v = VARIANTS[arch]
  if not v then error("efficientnet: unknown variant " .. tostring(arch), 2) end
  local stages = {}
  for i, s in ipairs(STAGES) do
    stages[i] = {expand_ratio = s[1], kernel = s[2], stride = s[3], input_channels = make_divisible(s[4] * v.width),
                 out_channels = make_divisible(s[5] * v.width), num_layers = math.ceil(s[6] * v.depth)}
  end
  return stages, v
end

local EfficientNet = class("models.EfficientNet", Module)
M.EfficientNet = EfficientNet

-- opts.upto: build only features.0 .. features.<upto> (and no avgpool / classifier); opts.device
function EfficientNet:__init(arch, opts)
  Module.__init(self)
  opts = opts or {}
  local dev = opts.device
  local stages, v = M.config(arch)
  local n = common.children_upto(arch, "the model", 9, opts.upto, 3)
  self.arch, self.upto = arch, opts.upto
  local bn = v.bn
  local features = nn.Sequential()
  features:add(conv_norm_act(3, stages[1].input_channels, 3,
    {stride = 2, bn_eps = bn.eps, bn_momentum = bn.momentum, device = dev}))
  local total = 0
  for _, s in ipairs(stages) do total = total + s.num_layers end
  local block_id = 0
  for si = 1, math.min(#stages, n - 1) do
    local s = stages[si]
    local stage = nn.Sequential()
    for li = 1, s.num_layers do
      local cnf = {expand_ratio = s.expand_ratio, kernel = s.kernel, stride = s.stride,
                   input_channels = s.input_channels, out_channels = s.out_channels}
      if li > 1 then cnf.input_channels, cnf.stride = s.out_channels, 1 end
      stage:add(MBConv(cnf, 0.2 * block_id / total, bn, dev))
      block_id = block_id + 1
    end
    features:add(stage)
  end
  local last_in = stages[#stages].out_channels
  local last_out = 4 * last_in
  if n == 9 then
    features:add(conv_norm_act(last_in, last_out, 1, {bn_eps = bn.eps, bn_momentum = bn.momentum, device = dev}))
  end
  self.features = self:add_module("features", features)
  self.extract_list = features:children()
  if opts.upto == nil then
    self.avgpool = self:add_module("avgpool", nn.AdaptiveAvgPool2d(1))
    local linear = nn.Linear(last_out, 1000, {device = dev})
    local r = 1 / math.sqrt(1000)
    linear:register_parameter("weight", dpl.uniform(-r, r, {1000, last_out}, {device = dev}))
    linear:register_parameter("bias", dpl.zeros({1000}, {device = dev}))
    self.classifier = self:add_module("classifier", nn.Sequential(nn.Dropout(v.dropout), linear))
  end
end

-- The whole model: features -> avgpool -> flatten -> classifier; a truncated one returns the last feature stage.
function EfficientNet:updateOutput(x)
  x = self.features:updateOutput(x)
  if self.upto == nil then
    x = self.avgpool:updateOutput(x)
    x = x:reshape(x:size(1), -1)
    x = self.classifier:updateOutput(x)
  end
  return x
end

function EfficientNet:extra_repr() return self.arch .. (self.upto and (", upto " .. self.upto) or "") end

function M.efficientnet_b0(opts) return EfficientNet("efficientnet_b0", opts) end
function M.efficientnet_b7(opts) return EfficientNet("efficientnet_b7", opts) end

return M

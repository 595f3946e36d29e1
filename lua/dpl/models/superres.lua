-- dpl.models.superres: the image transformation network of the super-resolution benchmark (docs/benchmarks/superres.md,
-- "The network"), after the style-transfer networks of Johnson et al. with batch norm:
--
--   ConvLayer(3 -> 64, 9x9)                     reflection pad 4, conv, BatchNorm2d, ReLU
--   4 x ResidualLayer(64)                       ConvLayer(3x3, ReLU) -> ConvLayer(3x3, no activation), + input
--   2 (x4) or 3 (x8) x DeconvLayer(64 -> 64)    nearest x2 upsample, reflection pad 1, conv 3x3, BatchNorm2d, ReLU
--   ConvLayer(64 -> 3, 9x9, tanh)               reflection pad 4, conv, BatchNorm2d, tanh
--   output = (tanh + 1) / 2                     in [0, 1]
--
--   local superres = require "dpl.models.superres"
--   local net = superres.new({scale = 4, device = "cpu"})   -- PyTorch's default initialisation from dpl's seeded stream
--   local y = net:forward(lr)                                -- N x 3 x h x w in [0,1] -> N x 3 x 4h x 4w in [0,1]
--
-- Module names follow the PyTorch module this mirrors (tests/ref/superres_ref.py defines it), so that state_dict keys
-- are the same on both sides: layers.0.conv_layer.weight, layers.0.normalization.running_mean, layers.1.conv1.conv_layer.
-- weight, ..., layers.5.conv.weight (a DeconvLayer's conv), layers.7.normalization.bias. A checkpoint saved by one
-- loads in the other (dpl reads PyTorch's .pth files; dpl.checkpoint / safetensors files load in PyTorch with
-- safetensors or with tests/ref/superres_ref.py's reader).
local dpl = require "dpl"
local class = require "dpl.class"
local nn = require "dpl.nn"
local Module = nn.Module

local M = {}

-- ConvLayer: reflect pad k//2 -> conv k x k (stride s) -> BatchNorm2d -> activation ("relu", "tanh" or "linear").
-- Children in PyTorch's registration order: pad, conv_layer, activation (a module only for relu/tanh), normalization.
local ConvLayer = class("superres.ConvLayer", Module)
M.ConvLayer = ConvLayer

function ConvLayer:__init(cin, cout, k, stride, activation)
  Module.__init(self)
  self.act = activation or "relu"
  self.pad = self:add_module("pad", nn.ReflectionPad2d(math.floor(k / 2)))
  self.conv_layer = self:add_module("conv_layer", nn.Conv2d(cin, cout, k, {stride = stride}))
  if self.act == "relu" then self:add_module("activation", nn.ReLU())
  elseif self.act == "tanh" then self:add_module("activation", nn.Tanh())
  elseif self.act ~= "linear" then error("superres ConvLayer: activation must be relu, tanh or linear", 2) end
  self.normalization = self:add_module("normalization", nn.BatchNorm2d(cout))
end

function ConvLayer:updateOutput(x)
  local h = self.normalization:updateOutput(self.conv_layer:updateOutput(self.pad:updateOutput(x)))
  if self.act == "relu" then return h:relu() end
  if self.act == "tanh" then return h:tanh() end
  return h
end

-- ResidualLayer: conv1 (ConvLayer, ReLU) -> conv2 (ConvLayer, linear), + input; nothing after the sum.
local ResidualLayer = class("superres.ResidualLayer", Module)
M.ResidualLayer = ResidualLayer

function ResidualLayer:__init(c)
  Module.__init(self)
  self.conv1 = self:add_module("conv1", ConvLayer(c, c, 3, 1, "relu"))
  self.conv2 = self:add_module("conv2", ConvLayer(c, c, 3, 1, "linear"))
end

function ResidualLayer:updateOutput(x)
  return self.conv2:updateOutput(self.conv1:updateOutput(x)) + x
end

-- DeconvLayer: nearest-neighbour x2 upsample -> reflect pad 1 -> conv 3x3 -> BatchNorm2d -> ReLU (not a transposed
-- convolution). Children: pad, conv, activation, normalization.
local DeconvLayer = class("superres.DeconvLayer", Module)
M.DeconvLayer = DeconvLayer

function DeconvLayer:__init(cin, cout)
  Module.__init(self)
  self.pad = self:add_module("pad", nn.ReflectionPad2d(1))
  self.conv = self:add_module("conv", nn.Conv2d(cin, cout, 3))
  self:add_module("activation", nn.ReLU())
  self.normalization = self:add_module("normalization", nn.BatchNorm2d(cout))
end

function DeconvLayer:updateOutput(x)
  local up = dpl.upsample2d(x, 2, "nearest")
  return self.normalization:updateOutput(self.conv:updateOutput(self.pad:updateOutput(up))):relu()
end

-- The network: children "layers" (a Sequential of the blocks above); forward gives (tanh + 1) / 2.
local SuperResNet = class("superres.SuperResNet", Module)
M.SuperResNet = SuperResNet

M.SCALES = {[4] = 2, [8] = 3}   -- scale -> number of DeconvLayers

function SuperResNet:__init(opts)
  Module.__init(self)
  opts = opts or {}
  local scale = opts.scale or 4
  local ups = M.SCALES[scale]
  if not ups then error(("superres: scale must be 4 or 8, got %s"):format(tostring(scale)), 3) end
  self.scale = scale
  local width = opts.width or 64
  local blocks = {ConvLayer(3, width, 9, 1, "relu")}
  for _ = 1, opts.residual or 4 do blocks[#blocks + 1] = ResidualLayer(width) end
  for _ = 1, ups do blocks[#blocks + 1] = DeconvLayer(width, width) end
  blocks[#blocks + 1] = ConvLayer(width, 3, 9, 1, "tanh")
  self.layers = self:add_module("layers", nn.Sequential(unpack(blocks)))
end

function SuperResNet:updateOutput(x)
  if x:dim() ~= 4 or x:size(2) ~= 3 then
    error(("superres x%d: expected N x 3 x H x W images, got %s"):format(self.scale, tostring(x:size())), 2)
  end
  return (self.layers:updateOutput(x) + 1) * 0.5
end

function SuperResNet:extra_repr() return ("x%d"):format(self.scale) end

-- superres.new({scale = 4 | 8, device = ..., seed = S}): a fresh network with PyTorch's default initialisation
-- (conv weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)), BN weight 1, bias 0) drawn from dpl's global seeded
-- stream; with opts.seed the stream is reseeded first, so a seed gives the same weights on every device.
function M.new(opts)
  opts = opts or {}
  if opts.seed then dpl.manual_seed(opts.seed) end
  local net = SuperResNet(opts)
  if opts.device then net:to(opts.device) end
  return net
end

return M

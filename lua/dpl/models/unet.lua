-- dpl.models.unet: the 4-level pix2pix-style U-Net of the road delineation benchmark (docs/benchmarks/delineation.md,
-- "Network"), and its K-iteration refinement.
--
--   d1  ReLU -> conv 4x4 s2 p1 (no bias) -> BatchNorm      4 -> 8 channels,    224 -> 112
--   d2  ReLU -> conv -> BatchNorm                           8 -> 16,            112 -> 56
--   d3  ReLU -> conv -> BatchNorm                          16 -> 32,             56 -> 28
--   d4  ReLU -> conv -> BatchNorm                          32 -> 32,             28 -> 14
--   u1  ReLU -> transposed conv 4x4 s2 p1 (no bias) -> BN  32 -> 32,             14 -> 28
--   u2  ReLU(cat(u1, d3)) -> tconv -> BatchNorm            64 -> 16,             28 -> 56
--   u3  ReLU(cat(u2, d2)) -> tconv -> BatchNorm            32 -> 8,              56 -> 112
--   u4  ReLU(cat(u3, d1)) -> tconv -> BatchNorm            16 -> 1,             112 -> 224, then sigmoid
--
-- Every activation is a ReLU (the reference's inverted condition) and comes before its convolution; the reference's
-- ReLUs work in place on the stored block outputs, so the skip connections carry the activated tensors: ReLU(cat(u,
-- d)) = cat(ReLU(u), ReLU(d)) here. The input is RGB plus the previous map (4 channels); the output a 1-channel map
-- in (0, 1).
--
--   local unet = require "dpl.models.unet"
--   local net = unet.new({seed = 1, device = "cpu"})      -- PyTorch's default initialisation from dpl's seeded stream
--   local maps = unet.refine(net, rgb, 3)                 -- N x 3 x H x W -> {map_1, map_2, map_3}, each N x 1 x H x W
--
-- Module and state_dict names are those of the reference code's U-Net (itself Tong Zhao's topology-aware delineation
-- code), so that its checkpoints load: d1.layer.down_1_conv.weight, d1.layer.down_1_bn.running_mean, ...,
-- u1.layer.up_4_tconv.weight, ..., u4.layer.up_1_bn.bias (tests/ref/delineation_ref.py defines the PyTorch module).
local dpl = require "dpl"
local class = require "dpl.class"
local nn = require "dpl.nn"
local Module = nn.Module

local M = {}

-- One block: children "layer" (a Sequential of <name>_relu, <name>_conv or <name>_tconv, <name>_bn), PyTorch's names.
local Block = class("unet.Block", Module)
M.Block = Block

function Block:__init(cin, cout, name, transposed)
  Module.__init(self)
  local layer = nn.Sequential()
  layer:add(name .. "_relu", nn.ReLU())
  if transposed then
    self.conv = nn.ConvTranspose2d(cin, cout, 4, {stride = 2, padding = 1, bias = false})
    layer:add(name .. "_tconv", self.conv)
  else
    self.conv = nn.Conv2d(cin, cout, 4, {stride = 2, padding = 1, bias = false})
    layer:add(name .. "_conv", self.conv)
  end
  self.bn = nn.BatchNorm2d(cout)
  layer:add(name .. "_bn", self.bn)
  self.layer = self:add_module("layer", layer)
end

-- x is already activated (see the top of the file): conv -> batch norm
function Block:updateOutput(x)
  return self.bn:updateOutput(self.conv:updateOutput(x))
end

local UNet = class("unet.UNet", Module)
M.UNet = UNet

-- opts.channels: input channels (4: RGB + the previous map); opts.width: d1's output channels (8 = 2 x channels, as
-- the reference's nf * 2).
function UNet:__init(opts)
  Module.__init(self)
  opts = opts or {}
  local nf = opts.channels or 4
  self.channels = nf
  local function blk(name, cin, cout, label, tr) self[name] = self:add_module(name, Block(cin, cout, label, tr)) end
  blk("d1", nf, nf * 2, "down_1")
  blk("d2", nf * 2, nf * 4, "down_2")
  blk("d3", nf * 4, nf * 8, "down_3")
  blk("d4", nf * 8, nf * 8, "down_4")
  blk("u1", nf * 8, nf * 8, "up_4", true)
  blk("u2", nf * 16, nf * 4, "up_3", true)
  blk("u3", nf * 8, nf * 2, "up_2", true)
  blk("u4", nf * 4, 1, "up_1", true)
end

function UNet:updateOutput(x)
  if not dpl.is_tensor(x) or x:dim() ~= 4 or x:size(2) ~= self.channels or x:size(3) % 16 ~= 0 or x:size(4) % 16 ~= 0 then
    error(("unet: expected N x %d x H x W with H and W multiples of 16, got %s"):format(self.channels,
      dpl.is_tensor(x) and tostring(x:size()) or type(x)), 2)
  end
  local a1 = self.d1:updateOutput(x:relu()):relu()
  local a2 = self.d2:updateOutput(a1):relu()
  local a3 = self.d3:updateOutput(a2):relu()
  local a4 = self.d4:updateOutput(a3):relu()
  local u = self.u1:updateOutput(a4):relu()
  u = self.u2:updateOutput(dpl.cat({u, a3}, 2)):relu()
  u = self.u3:updateOutput(dpl.cat({u, a2}, 2)):relu()
  return self.u4:updateOutput(dpl.cat({u, a1}, 2)):sigmoid()
end

-- unet.new({device =, seed =, channels =}): a fresh network with PyTorch's default initialisation (conv weights
-- U(-1/sqrt(fan_in), 1/sqrt(fan_in)), BN weight 1, bias 0) drawn from dpl's global seeded stream; with opts.seed the
-- stream is reseeded first, so a seed gives the same weights on every device.
function M.new(opts)
  opts = opts or {}
  if opts.seed then dpl.manual_seed(opts.seed) end
  local net = UNet({channels = opts.channels})
  if opts.device then net:to(opts.device) end
  return net
end

-- The K-iteration refinement: map_0 = zeros, map_k = net(cat(rgb, map_{k-1})). The maps are not detached, so the
-- gradient of a loss on map_k reaches every iteration (as the reference trains). Returns the list {map_1 .. map_K}.
function M.refine(net, rgb, K)
  if not dpl.is_tensor(rgb) or rgb:dim() ~= 4 or rgb:size(2) ~= net.channels - 1 then
    error(("unet.refine: expected images N x %d x H x W, got %s"):format(net.channels - 1,
      dpl.is_tensor(rgb) and tostring(rgb:size()) or type(rgb)), 2)
  end
  local n, h, w = rgb:size(1), rgb:size(3), rgb:size(4)
  local map = dpl.zeros({n, 1, h, w}, {device = rgb:device()})
  local maps = {}
  for k = 1, K do
    map = net:updateOutput(dpl.cat({rgb, map}, 2))
    maps[k] = map
  end
  return maps
end

return M

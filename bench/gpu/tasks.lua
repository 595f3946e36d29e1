-- bench/gpu/tasks.lua - one training step of benchmarks 2, 3 and 4 with a loss network, dpl's side of the GPU
-- benchmark (bench/gpu/torch_gpu.py is PyTorch's, with the same definitions). Loaded by bench/gpu/gpu.lua.
--
--   local tasks = dofile("bench/gpu/tasks.lua")
--   local step, label = tasks.step("superres", {arch = "vgg16", layer = "E", batch = 4, device = "vulkan"})
--   step()                     -- one optimizer step; returns the loss (a tensor, not read back)
--
-- superres     benchmark 2: the x4 image transformation network (72 -> 288), Adam 1e-3, MSE of the loss network's
--              features of output and HR image (dpl.perceptual.loss: the loss network frozen and evaluating, no
--              normalisation); the benchmark's own network, dpl.models.superres.
-- delineation  benchmark 3: the 4-level U-Net on 224 x 224 crops (RGB + the previous map), K = 3 iterations weighted
--              1/6, 2/6, 3/6, loss BCE + 0.01 MSE of the features of the map repeated to 3 channels; the loss network
--              in training mode with ImageNet normalisation (the reference code's quirk).
-- autoencoder  benchmark 4: the four-layer convolutional autoencoder on 64 x 64 (SVHN padded), MSE of the loss
--              network's features of input and reconstruction; the loss network frozen, training mode, no normalisation.
-- The U-Net is the benchmark's own (dpl.models.unet, dpl.benchmarks.delineation's loss); the autoencoder is the
-- equivalent stack of docs/benchmarks/autoencoder.md written here, as its benchmark module has not landed yet: the label
-- returned says which was used.
local dpl = require "dpl"
local nn = require "dpl.nn"
local F = require "dpl.nn.functional"
local class = require "dpl.class"
local lossnet = require "dpl.models.lossnet"
local optim = require "dpl.optim"

local M = {}

-- ---- benchmark 4: the autoencoder (docs/benchmarks/autoencoder.md), 64 x 64 ---------------------------------------------------------------
local CVAE = class("gpubench.CVAE", nn.Module)
function CVAE:__init(d)
  nn.Module.__init(self)
  self.enc = self:add_module("enc", nn.Sequential())
  for _, c in ipairs {{3, 32}, {32, 64}, {64, 128}, {128, 256}} do
    self.enc:add(nn.Conv2d(c[1], c[2], 4, {stride = 2, device = d}))
    self.enc:add(nn.BatchNorm2d(c[2], {device = d}))
    self.enc:add(nn.ReLU())
  end
  self.mu = self:add_module("mu", nn.Linear(1024, 64, {device = d}))
  self.fc = self:add_module("fc", nn.Linear(64, 1024, {device = d}))
  self.dec = self:add_module("dec", nn.Sequential())
  for _, c in ipairs {{1024, 128, 5}, {128, 64, 5}, {64, 32, 6}} do
    self.dec:add(nn.ConvTranspose2d(c[1], c[2], c[3], {stride = 2, device = d}))
    self.dec:add(nn.BatchNorm2d(c[2], {device = d}))
    self.dec:add(nn.ReLU())
  end
  self.dec:add(nn.ConvTranspose2d(32, 3, 6, {stride = 2, device = d}))
  self.dec:add(nn.Sigmoid())
end
function CVAE:updateOutput(x)
  local h = self.enc:updateOutput(x)
  local z = self.mu:updateOutput(h:reshape(h:size(1), -1))
  return self.dec:updateOutput(self.fc:updateOutput(z):relu():reshape(z:size(1), 1024, 1, 1))
end

-- ---- steps ----------------------------------------------------------------------------------------------------------
-- Returns step (one optimizer step; returns the loss tensor), label (what ran).
function M.step(task, o)
  local d, batch = o.device, o.batch
  local arch, layer = o.arch or "vgg16", o.layer
  local net, loss_fn, label
  if task == "superres" then
    net, label = require("dpl.models.superres").new({scale = 4, device = d, seed = 1}), "dpl.models.superres"
    local crit = require("dpl.perceptual").loss{arch = arch, layer = layer, weights = "random:2", device = d}
    local lr, hr = dpl.rand({batch, 3, 72, 72}, {seed = 3, device = d}), dpl.rand({batch, 3, 288, 288}, {seed = 4, device = d})
    loss_fn = function() return crit(net:forward(lr), hr) end
  elseif task == "delineation" then
    net, label = require("dpl.models.unet").new({device = d, seed = 1}), "dpl.models.unet"
    local crit = require("dpl.perceptual").loss{arch = arch, layer = layer, weights = "random:2", device = d,
                                                mode = "train", normalize = true}
    crit:training()
    local img = dpl.rand({batch, 3, 224, 224}, {seed = 3, device = d})
    local y = dpl.rand({batch, 1, 224, 224}, {seed = 4, device = d}):gt(0.5)
    local D = require "dpl.benchmarks.delineation"
    loss_fn = function() return (D.loss(net, crit, img, y, {K = 3, mu = 0.01})) end   -- K = 3, weights i / 6
  elseif task == "autoencoder" then
    net, label = CVAE(d), "equivalent stack (docs/benchmarks/autoencoder.md)"
    local loss_net = lossnet.new(arch, layer, {weights = "random:2", device = d, mode = "train"})
    local x = dpl.rand({batch, 3, 64, 64}, {seed = 3, device = d})
    loss_fn = function()
      local target = dpl.no_grad(function() return loss_net:forward(x) end)
      return F.mse_loss(loss_net:forward(net:forward(x)), target)
    end
  else
    error("unknown task " .. tostring(task) .. " (superres, delineation, autoencoder)", 2)
  end
  net:training()
  local opt = optim.Adam(net:parameters(), {lr = 1e-3})
  return function()
    opt:zero_grad()
    local loss = loss_fn()
    loss:backward()
    opt:step()
    return loss
  end, label
end

return M

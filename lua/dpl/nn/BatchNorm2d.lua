-- nn.BatchNorm2d, as PyTorch: in training, normalises with the batch statistics (biased variance) and updates the
-- running statistics with `momentum` (running_var gets the unbiased variance); in evaluation, uses the running
-- statistics. Parameters weight, bias; buffers running_mean, running_var, num_batches_tracked (PyTorch's names).
-- nn.BatchNorm2d(num_features[, {eps = 1e-5, momentum = 0.1, affine = true, device = ...}])
local dpl = require "dpl"
local batch_norm = require("dpl.ops.norm").batch_norm
local class = require "dpl.class"
local Module = require "dpl.nn.Module"

local BatchNorm2d = class("nn.BatchNorm2d", Module)

function BatchNorm2d:__init(num_features, opts)
  Module.check_sizes("nn.BatchNorm2d", {{"num_features", num_features}})
  opts = Module.options("nn.BatchNorm2d", opts, {"eps", "momentum", "affine", "device"})
  Module.__init(self)
  self.num_features = num_features
  self.eps = opts.eps or 1e-5
  self.momentum = opts.momentum or 0.1
  self.affine = opts.affine ~= false
  local dev = {device = opts.device}
  if self.affine then
    self:register_parameter("weight", dpl.ones({num_features}, dev))
    self:register_parameter("bias", dpl.zeros({num_features}, dev))
  end
  self:register_buffer("running_mean", dpl.zeros({num_features}, dev))
  self:register_buffer("running_var", dpl.ones({num_features}, dev))
  self:register_buffer("num_batches_tracked", dpl.zeros({}, dev))
end

-- Training: the batch's statistics, which also update the running ones; evaluation: the running statistics
-- (both in lua/dpl/ops/norm.lua, F.batch_norm).
function BatchNorm2d:updateOutput(x)
  if x:dim() ~= 4 or x:size(2) ~= self.num_features then
    error(("nn.BatchNorm2d(%d): expected input (N, %d, H, W), got %s"):format(self.num_features, self.num_features,
      tostring(x:size())), 2)
  end
  if self.train then self.num_batches_tracked:add_(1) end
  return batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.train, self.momentum,
                    self.eps)
end

function BatchNorm2d:extra_repr()
  return ("%d, eps=%g, momentum=%g"):format(self.num_features, self.eps, self.momentum)
end

return BatchNorm2d

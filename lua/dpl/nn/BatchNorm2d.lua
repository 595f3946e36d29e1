-- nn.BatchNorm2d, as PyTorch: in training, normalises with the batch statistics (biased variance) and updates the
-- running statistics with `momentum` (running_var gets the unbiased variance); in evaluation, uses the running
-- statistics. Parameters weight, bias; buffers running_mean, running_var, num_batches_tracked (PyTorch's names).
-- nn.BatchNorm2d(num_features[, {eps = 1e-5, momentum = 0.1, affine = true, device = ...}])
local dpl = require "dpl"
local autograd = require "dpl.autograd"
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

function BatchNorm2d:updateOutput(x)
  if x:dim() ~= 4 or x:size(2) ~= self.num_features then
    error(("nn.BatchNorm2d(%d): expected input (N, %d, H, W), got %s"):format(self.num_features, self.num_features,
      tostring(x:size())), 2)
  end
  local C = self.num_features
  local mean, var
  if self.train then
    mean = x:mean({1, 3, 4}, true)
    var = x:var({1, 3, 4}, true, false)
    local n = x:numel() / C
    autograd.no_grad(function()
      local m = self.momentum
      self.running_mean:mul_(1 - m):add_(mean:detach():reshape(C) * m)
      local unbiased = var:detach():reshape(C) * (n / math.max(n - 1, 1))
      self.running_var:mul_(1 - m):add_(unbiased * m)
      self.num_batches_tracked:add_(1)
    end)
  else
    -- evaluation: y = x * scale + shift with per-channel scale = weight / sqrt(running_var + eps) and shift = bias -
    -- running_mean * scale, as PyTorch's CPU inference kernel computes it; one pass over x (muladd)
    local scale = (self.running_var + self.eps):rsqrt()
    if self.affine then scale = scale * self.weight end
    local shift = -(self.running_mean * scale)
    if self.affine then shift = shift + self.bias end
    return dpl.muladd(x, scale:reshape(1, C, 1, 1), shift:reshape(1, C, 1, 1))
  end
  local y = (x - mean) * (var + self.eps):rsqrt()
  if self.affine then y = y * self.weight:reshape(1, C, 1, 1) + self.bias:reshape(1, C, 1, 1) end
  return y
end

function BatchNorm2d:extra_repr()
  return ("%d, eps=%g, momentum=%g"):format(self.num_features, self.eps, self.momentum)
end

return BatchNorm2d

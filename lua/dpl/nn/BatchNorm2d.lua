-- nn.BatchNorm2d, as PyTorch: in training, normalises with the batch statistics (biased variance) and updates the
-- running statistics with `momentum` (running_var gets the unbiased variance); in evaluation, uses the running
-- statistics. Parameters weight, bias; buffers running_mean, running_var, num_batches_tracked (PyTorch's names).
local dpl = require "dpl"
local autograd = require "dpl.autograd"
local class = require "dpl.class"
local Module = require "dpl.nn.Module"

local BatchNorm2d = class("nn.BatchNorm2d", Module)

function BatchNorm2d:__init(num_features, eps, momentum, affine, opts)
  Module.check_sizes("nn.BatchNorm2d", {{"num_features", num_features}})
  Module.__init(self)
  opts = opts or {}
  self.num_features = num_features
  self.eps = eps or 1e-5
  self.momentum = momentum or 0.1
  self.affine = affine ~= false
  local dev = {device = opts.device}
  if self.affine then
    self:register_parameter("weight", dpl.ones({num_features}, dev))
    self:register_parameter("bias", dpl.zeros({num_features}, dev))
  end
  self:register_buffer("running_mean", dpl.zeros({num_features}, dev))
  self:register_buffer("running_var", dpl.ones({num_features}, dev))
  self:register_buffer("num_batches_tracked", dpl.zeros({}, dev))
end

-- per-channel sums of an N x C x H x W tensor, as 1 x C x 1 x 1: the spatial sums first (a contiguous reduction,
-- summed in double), then over the batch; reducing {1, 3, 4} at once makes a permuted copy of the whole tensor first
local function channel_sum(t) return t:sum({3, 4}, true):sum(1, true) end

-- Training: normalise with the batch statistics as one autograd node. Forward: mean, xc = x - mean, var = mean(xc^2)
-- (two passes, as accurate as PyTorch's), y = xc * (weight / sqrt(var + eps)) + bias in one pass. Backward, the
-- closed form dx = scale (g - mean(g) - xc mean(g xc) / (var + eps)) with scale = weight / sqrt(var + eps), computed
-- as two one-pass multiply-adds; dweight = sum(g xc) / sqrt(var + eps), dbias = sum(g). Only xc is kept for backward.
local function train_forward(self, x)
  local C = self.num_features
  local n = x:numel() / C
  local affine = self.affine
  local w4 = affine and self.weight:reshape(1, C, 1, 1) or nil
  local xc, invstd, scale, y
  autograd.no_grad(function()
    local mean = channel_sum(x) / n
    xc = x - mean
    local var = channel_sum(xc:square()) / n
    invstd = (var + self.eps):rsqrt()
    scale = affine and invstd * w4 or invstd
    y = affine and dpl.muladd(xc, scale, self.bias:reshape(1, C, 1, 1)) or xc * scale
    local m = self.momentum
    self.running_mean:mul_(1 - m):add_(mean:reshape(C) * m)
    self.running_var:mul_(1 - m):add_(var:reshape(C) * (m * n / math.max(n - 1, 1)))
    self.num_batches_tracked:add_(1)
  end)
  local weight, bias = affine and self.weight or nil, affine and self.bias or nil
  if autograd.needs_grad(x, weight, bias) then
    autograd.record("batch_norm", y, {x, weight or false, bias or false}, function(g)
      local sum_g = channel_sum(g)
      local sum_gxc = channel_sum(g * xc)
      local gx
      if x.requires_grad then
        local k = -(scale * invstd * invstd * sum_gxc) / n
        local c = -(scale * sum_g) / n
        gx = dpl.muladd(g, scale, dpl.muladd(xc, k, c))
      end
      return {gx, weight and weight.requires_grad and (sum_gxc * invstd):reshape(C) or nil,
              bias and bias.requires_grad and sum_g:reshape(C) or nil}
    end)
  end
  return y
end

function BatchNorm2d:updateOutput(x)
  if x:dim() ~= 4 or x:size(2) ~= self.num_features then
    error(("nn.BatchNorm2d(%d): expected input (N, %d, H, W), got %s"):format(self.num_features, self.num_features,
      tostring(x:size())), 2)
  end
  if self.train then return train_forward(self, x) end
  -- evaluation: y = x * scale + shift with per-channel scale = weight / sqrt(running_var + eps) and shift = bias -
  -- running_mean * scale, as PyTorch's CPU inference kernel computes it; one pass over x (muladd)
  local C = self.num_features
  local scale = (self.running_var + self.eps):rsqrt()
  if self.affine then scale = scale * self.weight end
  local shift = -(self.running_mean * scale)
  if self.affine then shift = shift + self.bias end
  return dpl.muladd(x, scale:reshape(1, C, 1, 1), shift:reshape(1, C, 1, 1))
end

function BatchNorm2d:extra_repr()
  return ("%d, eps=%g, momentum=%g"):format(self.num_features, self.eps, self.momentum)
end

return BatchNorm2d

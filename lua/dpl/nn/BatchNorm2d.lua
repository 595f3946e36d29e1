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

-- per-channel sums of an N x C x H x W tensor, as 1 x C x 1 x 1: the spatial sums first (a contiguous reduction,
-- summed in double), then over the batch; reducing {1, 3, 4} at once makes a permuted copy of the whole tensor first
local function channel_sum(t) return t:sum({3, 4}, true):sum(1, true) end

-- Training: normalise with the batch statistics as one autograd node. Forward: mean, xc = x - mean, var = mean(xc^2)
-- (two passes, as accurate as PyTorch's), y = xc * (weight / sqrt(var + eps)) + bias in one pass, and the running
-- statistics updated. Backward, the closed form dx = scale (g - mean(g) - xc mean(g xc) / (var + eps)) with
-- scale = weight / sqrt(var + eps), computed as two one-pass multiply-adds; dweight = sum(g xc) / sqrt(var + eps),
-- dbias = sum(g). Only xc is kept for backward.
local batch_norm_train = autograd.op {name = "batch_norm_train", inputs = 3,
  forward = function(x, weight, bias, self)
    local C = self.num_features
    local n = x:numel() / C
    local mean = channel_sum(x) / n
    local xc = x - mean
    local var = channel_sum(xc:square()) / n
    local invstd = (var + self.eps):rsqrt()
    local scale = weight and invstd * weight:reshape(1, C, 1, 1) or invstd
    local y = bias and dpl.muladd(xc, scale, bias:reshape(1, C, 1, 1)) or xc * scale
    local m = self.momentum
    self.running_mean:mul_(1 - m):add_(mean:reshape(C) * m)
    self.running_var:mul_(1 - m):add_(var:reshape(C) * (m * n / math.max(n - 1, 1)))
    self.num_batches_tracked:add_(1)
    return y, {xc = xc, invstd = invstd, scale = scale, n = n, C = C}
  end,
  backward = function(c, g)
    local s = c.saved
    local sum_g = channel_sum(g)
    local sum_gxc = channel_sum(g * s.xc)
    local gx
    if autograd.wants(c[1]) then
      local k = -(s.scale * s.invstd * s.invstd * sum_gxc) / s.n
      local b = -(s.scale * sum_g) / s.n
      gx = dpl.muladd(g, s.scale, dpl.muladd(s.xc, k, b))
    end
    return gx, autograd.wants(c[2]) and (sum_gxc * s.invstd):reshape(s.C),
      autograd.wants(c[3]) and sum_g:reshape(s.C)
  end}

function BatchNorm2d:updateOutput(x)
  if x:dim() ~= 4 or x:size(2) ~= self.num_features then
    error(("nn.BatchNorm2d(%d): expected input (N, %d, H, W), got %s"):format(self.num_features, self.num_features,
      tostring(x:size())), 2)
  end
  if self.train then return batch_norm_train(x, self.weight, self.bias, self) end
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

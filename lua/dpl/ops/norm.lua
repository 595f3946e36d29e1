-- dpl.ops.norm: batch normalization, as torch.nn.functional.batch_norm (also dpl.F.batch_norm):
--
--   local y = F.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
--
-- x: N x C [x H x W ...]; running_mean, running_var, weight, bias: C values or nil; momentum 0.1 and eps 1e-5 by
-- default. In training, x is normalised with the batch's mean and biased variance, as one autograd node on the
-- runtime's dpl_batch_norm_forward / _backward (on the CPU every pass over a channel runs while it is in cache), and
-- the running statistics, when given, are updated in place: r = (1 - momentum) r + momentum s, with the unbiased
-- variance for running_var. In evaluation, y = x scale + shift from the running statistics in one pass (muladd), as
-- PyTorch's CPU inference kernel; its gradients come from the elementwise ops.
local ffi = require "ffi"
local dffi = require "dpl.ffi"
local T = require "dpl.tensor"
local A = require "dpl.autograd"
local E = require "dpl.ops.elementwise"
local C = dffi.C

local M = {}

local boxes = ffi.typeof("dpl_tensor *[3]")

-- (x, weight, bias, stats) -> y; stats = {eps, momentum, running_mean, running_var}; keeps x's batch mean and
-- variance for the backward
local batch_norm_train = A.op {name = "batch_norm", inputs = 3,
  forward = function(x, weight, bias, stats)
    local box = boxes()
    local y = T.new(C.dpl_batch_norm_forward, T.handle(x, "batch_norm input"),
                    weight and T.handle(weight, "batch_norm weight") or nil,
                    bias and T.handle(bias, "batch_norm bias") or nil, stats.eps, box, box + 1)
    local mean, var = T.wrap(box[0]), T.wrap(box[1])
    local m, n = stats.momentum, x:numel() / x:size(2)
    if stats.running_mean then stats.running_mean:mul_(1 - m):add_(mean:reshape(stats.running_mean:size()) * m) end
    if stats.running_var then
      stats.running_var:mul_(1 - m):add_(var:reshape(stats.running_var:size()) * (m * n / math.max(n - 1, 1)))
    end
    return y, {mean = mean, var = var, eps = stats.eps}
  end,
  backward = function(c, g)
    local s, box = c.saved, boxes()
    local want_x = A.wants(c[1])
    dffi.check(C.dpl_batch_norm_backward(T.handle(g), T.handle(c[1]), c[2] and T.handle(c[2]) or nil,
                                         T.handle(s.mean), T.handle(s.var), s.eps, want_x and box or nil, box + 1,
                                         box + 2))
    local gw, gb = T.wrap(box[1]), T.wrap(box[2])
    return want_x and T.wrap(box[0]) or nil, A.wants(c[2]) and gw, A.wants(c[3]) and gb
  end}

function M.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)
  if not T.is_tensor(input) or input:dim() < 2 then
    error(("batch_norm: expected an input N x C [x H x W], got %s"):format(
      T.is_tensor(input) and ("a %d-d tensor of shape %s"):format(input:dim(), tostring(input:size())) or type(input)),
      2)
  end
  eps = eps or 1e-5
  if training then
    return batch_norm_train(input, weight, bias, {eps = eps, momentum = momentum or 0.1, running_mean = running_mean,
                                                  running_var = running_var})
  end
  if not (running_mean and running_var) then
    error("batch_norm: evaluation (training = false) needs running_mean and running_var", 2)
  end
  -- y = x * scale + shift, per channel: scale = weight / sqrt(running_var + eps), shift = bias - running_mean * scale
  local shape = {1, input:size(2)}
  for _ = 3, input:dim() do shape[#shape + 1] = 1 end
  local scale = (running_var + eps):rsqrt()
  if weight then scale = scale * weight end
  local shift = -(running_mean * scale)
  if bias then shift = shift + bias end
  return E.muladd(input, scale:reshape(shape), shift:reshape(shape))
end

return M

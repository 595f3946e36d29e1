-- dpl.nn.functional: stateless functions built from differentiable dpl ops (they run on any device and get their
-- gradients from autograd).
local dpl = require "dpl"

local F = {}

-- log_softmax along dim (1-based), stable: x - max - log(sum(exp(x - max)))
function F.log_softmax(x, dim)
  dim = dim or -1
  local m = x:detach():max(dim, true)
  local shifted = x - m
  return shifted - shifted:exp():sum(dim, true):log()
end

function F.softmax(x, dim)
  dim = dim or -1
  local m = x:detach():max(dim, true)
  local e = (x - m):exp()
  return e / e:sum(dim, true)
end

local function reduce(loss, reduction)
  reduction = reduction or "mean"
  if reduction == "mean" then return loss:mean() end
  if reduction == "sum" then return loss:sum() end
  if reduction == "none" then return loss end
  error("unknown reduction '" .. tostring(reduction) .. "' (mean, sum or none)", 3)
end

local function same_shape(name, a, b)
  if not (a:size() == b:size()) then
    error(("%s: input shape %s and target shape %s differ"):format(name, tostring(a:size()), tostring(b:size())), 3)
  end
end

function F.mse_loss(input, target, reduction)
  same_shape("mse_loss", input, target)
  return reduce((input - target):square(), reduction)
end

function F.l1_loss(input, target, reduction)
  same_shape("l1_loss", input, target)
  return reduce((input - target):abs(), reduction)
end

-- binary cross-entropy on probabilities; logs are clamped at -100 as PyTorch does
function F.binary_cross_entropy(input, target, reduction)
  same_shape("binary_cross_entropy", input, target)
  local logp = input:log():clamp(-100)
  local log1mp = (1 - input):log():clamp(-100)
  return reduce(-(target * logp + (1 - target) * log1mp), reduction)
end

-- stable: max(x, 0) - x t + log(1 + exp(-|x|))
function F.binary_cross_entropy_with_logits(input, target, reduction)
  same_shape("binary_cross_entropy_with_logits", input, target)
  local loss = input:relu() - input * target + ((-input:abs()):exp() + 1):log()
  return reduce(loss, reduction)
end

-- input (N, C) logits, target (N) class indices 0..C-1 (as floats)
function F.cross_entropy(input, target, reduction)
  if input:dim() ~= 2 or target:dim() ~= 1 or target:size(1) ~= input:size(1) then
    error(("cross_entropy: expected input (N, C) and target (N), got %s and %s"):format(
      tostring(input:size()), tostring(target:size())), 2)
  end
  local C = input:size(2)
  local classes = dpl.arange(C, {device = input:device()}):reshape(1, C)
  local onehot = classes:eq(target:detach():reshape(-1, 1))
  local nll = -(F.log_softmax(input, 2) * onehot):sum(2)
  return reduce(nll, reduction)
end

return F

-- dpl.nn.functional, also dpl.F: the one functional namespace, as PyTorch's torch.nn.functional. Convolutions,
-- pooling, padding, resizing and batch norm come from lua/dpl/ops/ (conv.lua, spatial.lua, norm.lua), with their
-- gradient kernels; the
-- functions below are built from differentiable dpl ops, so they run on any device and get their gradients from
-- autograd.
--
--   local F = require("dpl").F
--   local y = F.relu(F.conv2d(x, w, b, {padding = 1}))
--   local loss = F.mse_loss(F.max_pool2d(y, 2), target)
local dpl = require "dpl"
local A = require "dpl.autograd"
local ops = require "dpl.ops"

local F = {}
for _, family in ipairs {ops.conv, ops.spatial, ops.norm} do
  for name, fn in pairs(family) do F[name] = fn end
end

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

-- ---- activations (differentiable; gradients as PyTorch's, also at 0) ---------------------------------------------
function F.relu(x) return x:relu() end
function F.sigmoid(x) return x:sigmoid() end
function F.tanh(x) return x:tanh() end

-- x for x > 0, slope * x otherwise (PyTorch's gradient at 0 is the slope, which `where` gives)
function F.leaky_relu(x, negative_slope)
  negative_slope = negative_slope or 0.01
  return dpl.where(x:detach():gt(0), x, x * negative_slope)
end

-- x * sigmoid(x) (EfficientNet's activation), one fused op
function F.silu(x) return x:silu() end

-- ---- normalisation ------------------------------------------------------------------------------------------------
-- F.normalize(x, {p = 2, dim = 2, eps = 1e-12}): x / max(||x||_2 along dim, eps), PyTorch's F.normalize with its
-- defaults (dim 2 here is PyTorch's dim 1, the channels of N x C x H x W: the BAPPS distance's unit-normalisation).
-- The norm is computed as sqrt(max(sum x^2, eps^2)): the same value, and where the whole vector is 0 (a pixel where
-- every ReLU channel is off) the gradient is x's 1/eps as in PyTorch instead of the NaN of sqrt'(0).
function F.normalize(x, opts)
  opts = opts or {}
  local p, dim, eps = opts.p or 2, opts.dim or 2, opts.eps or 1e-12
  if p ~= 2 then error("normalize: only p = 2 is supported, got " .. tostring(p), 2) end
  if type(eps) ~= "number" or eps <= 0 then error("normalize: eps must be a positive number, got " .. tostring(eps), 2) end
  local nd = x:dim()
  local d = dim < 0 and nd + dim + 1 or dim
  if d < 1 or d > nd then error(("normalize: dim %d out of range for a %d-d tensor %s"):format(dim, nd,
    tostring(x:size())), 2) end
  local norm = x:square():sum(d, true):clamp(eps * eps):sqrt()
  return x / norm
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

-- mean or sum of (input - target)^2 as one node: its gradient is d * (2 g / n) in one pass, -that for the target
-- (the chain of sub, square and mean costs five passes over, e.g., a perceptual loss's 4 x 64 x 288 x 288 features)
local mse_reduced = A.op {name = "mse_loss", inputs = 2,
  forward = function(input, target, reduction)
    return A.no_grad(function()
      local d = input - target
      local sq = d:square()
      return reduction == "sum" and sq:sum() or sq:mean(), d
    end)
  end,
  backward = function(c, g)
    local d = c.saved
    local gi = d * (g * (c[3] == "sum" and 2 or 2 / d:numel()))
    return A.wants(c[1]) and gi, A.wants(c[2]) and -gi
  end}

function F.mse_loss(input, target, reduction)
  same_shape("mse_loss", input, target)
  reduction = reduction or "mean"
  if reduction == "mean" or reduction == "sum" then return (mse_reduced(input, target, reduction)) end
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

-- stable: max(x, 0) - x t + log(1 + exp(-|x|)). The gradient is recorded as one node, (sigmoid(x) - t) for the
-- input and -x for the target, as PyTorch's: composing it from relu and abs would give -t at x = 0 (their gradients
-- are 0 there) instead of 0.5 - t.
local bce_with_logits = A.op {name = "binary_cross_entropy_with_logits", inputs = 2,
  forward = function(x, t) return A.no_grad(function() return x:relu() - x * t + ((-x:abs()):exp() + 1):log() end) end,
  backward = function(c, g)
    local x, t = c[1], c[2]
    return A.wants(x) and g * (x:sigmoid() - t), A.wants(t) and -(g * x)
  end}

function F.binary_cross_entropy_with_logits(input, target, reduction)
  same_shape("binary_cross_entropy_with_logits", input, target)
  return reduce(bce_with_logits(input, target), reduction)
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

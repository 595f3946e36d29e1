-- dpl.optim: optimizers with PyTorch's update rules (torch.optim.SGD and Adam of PyTorch 1.13, single-tensor path).
--   local opt = optim.Adam(model:parameters(), {lr = 1e-3})
--   opt:zero_grad(); loss:backward(); opt:step()
local autograd = require "dpl.autograd"

local optim = {}

local function param_list(params)
  if type(params) ~= "table" then error("optimizer: expected a list of parameters", 3) end
  for i, p in ipairs(params) do
    if not p.requires_grad then error(("optimizer: parameter %d does not require grad"):format(i), 3) end
  end
  return params
end

local Optimizer = {}
Optimizer.__index = Optimizer

function Optimizer:zero_grad()
  for _, p in ipairs(self.params) do p.grad = nil end
end

-- ---- SGD ----------------------------------------------------------------------------------------------------------
-- d = g + wd p; with momentum: b = d (first step) else b = mu b + (1 - dampening) d; d = nesterov and d + mu b or b;
-- p = p - lr d
local SGD = setmetatable({}, {__index = Optimizer})
SGD.__index = SGD

function optim.SGD(params, opts)
  opts = opts or {}
  if not opts.lr then error("SGD: lr is required", 2) end
  local self = setmetatable({params = param_list(params), lr = opts.lr, momentum = opts.momentum or 0,
                             dampening = opts.dampening or 0, weight_decay = opts.weight_decay or 0,
                             nesterov = opts.nesterov or false, state = {}}, SGD)
  if self.nesterov and (self.momentum <= 0 or self.dampening ~= 0) then
    error("SGD: nesterov needs momentum > 0 and dampening 0", 2)
  end
  return self
end

function SGD:step()
  autograd.no_grad(function()
    for i, p in ipairs(self.params) do
      local g = p.grad
      if g then
        local d = g
        if self.weight_decay ~= 0 then d = d + p * self.weight_decay end
        if self.momentum ~= 0 then
          local buf = self.state[i]
          if not buf then buf = d:clone() else buf = buf * self.momentum + d * (1 - self.dampening) end
          self.state[i] = buf
          d = self.nesterov and (d + buf * self.momentum) or buf
        end
        local req = p.requires_grad
        p.requires_grad = nil
        p:sub_(d * self.lr)
        p.requires_grad = req
      end
    end
  end)
end

-- ---- Adam ---------------------------------------------------------------------------------------------------------
-- m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p = p - (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
local Adam = setmetatable({}, {__index = Optimizer})
Adam.__index = Adam

function optim.Adam(params, opts)
  opts = opts or {}
  local betas = opts.betas or {0.9, 0.999}
  return setmetatable({params = param_list(params), lr = opts.lr or 1e-3, beta1 = betas[1], beta2 = betas[2],
                       eps = opts.eps or 1e-8, weight_decay = opts.weight_decay or 0, state = {}}, Adam)
end

function Adam:step()
  autograd.no_grad(function()
    for i, p in ipairs(self.params) do
      local g = p.grad
      if g then
        local st = self.state[i]
        if not st then
          st = {step = 0, exp_avg = g * 0, exp_avg_sq = g * 0}
          self.state[i] = st
        end
        st.step = st.step + 1
        if self.weight_decay ~= 0 then g = g + p * self.weight_decay end
        -- in place where the arithmetic is the same (each op rounds once either way): fewer allocations and passes
        st.exp_avg:mul_(self.beta1):add_(g * (1 - self.beta1))
        st.exp_avg_sq:mul_(self.beta2):add_(g:square():mul_(1 - self.beta2))
        local bc1 = 1 - self.beta1 ^ st.step
        local bc2 = 1 - self.beta2 ^ st.step
        local denom = st.exp_avg_sq:sqrt():div_(math.sqrt(bc2)):add_(self.eps)
        local req = p.requires_grad
        p.requires_grad = nil
        p:sub_((st.exp_avg / denom):mul_(self.lr / bc1))
        p.requires_grad = req
      end
    end
  end)
end

optim.Optimizer = Optimizer
return optim

-- Loss modules over dpl.nn.functional: MSELoss, L1Loss, BCELoss, BCEWithLogitsLoss, CrossEntropyLoss.
-- nn.MSELoss([{reduction = "mean" | "sum" | "none"}]); forward(input, target) returns the loss (a one-element tensor
-- for reduction "mean" or "sum").
local class = require "dpl.class"
local Module = require "dpl.nn.Module"
local F = require "dpl.nn.functional"

local M = {}

local function loss(name, fn)
  local cls = class("nn." .. name, Module)
  function cls:__init(opts)
    opts = Module.options("nn." .. name, opts, {"reduction"})
    Module.__init(self)
    self.reduction = opts.reduction or "mean"
  end
  function cls:forward(input, target)
    self.output = fn(input, target, self.reduction)
    return self.output
  end
  cls.__call = function(self, a, b) return self:forward(a, b) end
  M[name] = cls
end

loss("MSELoss", F.mse_loss)
loss("L1Loss", F.l1_loss)
loss("BCELoss", F.binary_cross_entropy)
loss("BCEWithLogitsLoss", F.binary_cross_entropy_with_logits)
loss("CrossEntropyLoss", F.cross_entropy)

return M

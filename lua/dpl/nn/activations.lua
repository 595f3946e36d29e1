-- Parameter-free elementwise modules: ReLU, LeakyReLU, SiLU, Sigmoid, Tanh, Identity, Flatten.
local class = require "dpl.class"
local Module = require "dpl.nn.Module"
local F = require "dpl.nn.functional"

local M = {}

local function simple(name, fn, repr)
  local cls = class("nn." .. name, Module)
  function cls:__init(...)
    Module.__init(self)
    self.args = {...}
  end
  function cls:updateOutput(x) return fn(x, unpack(self.args)) end
  if repr then function cls:extra_repr() return repr(unpack(self.args)) end end
  M[name] = cls
end

simple("ReLU", function(x) return x:relu() end)
simple("Sigmoid", function(x) return x:sigmoid() end)
simple("Tanh", function(x) return x:tanh() end)
simple("SiLU", F.silu)
simple("LeakyReLU", F.leaky_relu,
       function(slope) return "negative_slope=" .. tostring(slope or 0.01) end)
simple("Identity", function(x) return x end)
-- flattens dims start..end (1-based, default 2..-1) as torch.nn.Flatten
simple("Flatten", function(x, start_dim)
  start_dim = start_dim or 2
  local shape = {}
  for i = 1, start_dim - 1 do shape[i] = x:size(i) end
  shape[start_dim] = -1
  return x:reshape(shape)
end)

return M

-- nn.Dropout: in training, zeroes each element with probability p and scales the rest by 1/(1-p); identity in
-- evaluation. The mask comes from dpl's counter-based stream (dpl.manual_seed), the same on every device.
local dpl = require "dpl"
local class = require "dpl.class"
local Module = require "dpl.nn.Module"

local Dropout = class("nn.Dropout", Module)

function Dropout:__init(p)
  Module.__init(self)
  self.p = p or 0.5
  if self.p < 0 or self.p > 1 then error("nn.Dropout: p must be in [0, 1], got " .. tostring(p), 2) end
end

function Dropout:updateOutput(x)
  if not self.train or self.p == 0 then return x end
  if self.p == 1 then return x * 0 end
  local keep = dpl.rand(x:size(), {device = x:device()}):ge(self.p)
  return x * keep * (1 / (1 - self.p))
end

function Dropout:extra_repr() return "p=" .. self.p end

return Dropout

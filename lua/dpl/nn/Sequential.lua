-- nn.Sequential: children run in order; children are named "0", "1", ... as in PyTorch, so that state_dict names
-- match torchvision's (features.0.weight). An error inside a child is re-raised naming the child.
local class = require "dpl.class"
local Module = require "dpl.nn.Module"
local Container = require "dpl.nn.Container"

local Sequential = class("nn.Sequential", Container)

function Sequential:__init(...)
  Container.__init(self)
  for _, m in ipairs {...} do self:add(m) end
end

-- add(m) appends under the next index; add(name, m) uses a name
function Sequential:add(a, b)
  if b == nil then
    self:add_module(tostring(#self._children), a)
  else
    self:add_module(a, b)
  end
  return self
end

function Sequential:updateOutput(input)
  local x = input
  for i, c in ipairs(self._children) do
    x = self:call_child(i, function() return c[2]:updateOutput(x) end)
    c[2].output = x
  end
  return x
end

return Sequential

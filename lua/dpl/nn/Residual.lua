-- nn.Residual(body[, shortcut]): y = body(x) + shortcut(x), shortcut the identity when omitted (a ResNet block
-- without its final activation; put the block in a Sequential with an nn.ReLU for that). The children are named
-- "body" and "shortcut" in state_dict keys (body.0.weight, shortcut.1.running_mean, ...). An error inside a child
-- names it; outputs of different shapes name both children.
local class = require "dpl.class"
local Container = require "dpl.nn.Container"

local Residual = class("nn.Residual", Container)

function Residual:__init(body, shortcut)
  Container.__init(self)
  if type(body) ~= "table" or not body.updateOutput then error("nn.Residual: body must be a module", 2) end
  self:add_module("body", body)
  if shortcut ~= nil then
    if type(shortcut) ~= "table" or not shortcut.updateOutput then error("nn.Residual: shortcut must be a module", 2) end
    self:add_module("shortcut", shortcut)
  end
end

function Residual:updateOutput(input)
  local body = self._children[1][2]
  local y = self:call_child(1, function() return body:updateOutput(input) end)
  body.output = y
  local s = input
  if self._children[2] then
    local sc = self._children[2][2]
    s = self:call_child(2, function() return sc:updateOutput(input) end)
    sc.output = s
  end
  if not (y:size() == s:size()) then
    error(("nn.Residual: child 1 (body: %s) gives %s but %s gives %s; they must have the same shape"):format(
      body.__typename, tostring(y:size()), self._children[2] and ("child 2 (shortcut: " ..
      self._children[2][2].__typename .. ")") or "the identity shortcut (the input)", tostring(s:size())), 2)
  end
  return y + s
end

return Residual

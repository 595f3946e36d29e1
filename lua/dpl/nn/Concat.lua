-- nn.Concat(dim, ...): torch/nn's Concat. Every child gets the same input; their outputs are concatenated along dim
-- (1-based; 2 is the channels of N x C x H x W: Inception branches, Fire modules). Children are named "0", "1", ...
-- as in PyTorch's Sequential. An error inside a child names it; outputs that cannot be joined name the child whose
-- output does not fit.
local dpl = require "dpl"
local class = require "dpl.class"
local Container = require "dpl.nn.Container"

local Concat = class("nn.Concat", Container)

function Concat:__init(dim, ...)
  Container.__init(self)
  if type(dim) ~= "number" or dim ~= math.floor(dim) or dim == 0 then
    error("nn.Concat: the first argument must be the (1-based) dim to concatenate along, got " .. tostring(dim), 2)
  end
  self.dim = dim
  for _, m in ipairs {...} do self:add(m) end
end

-- add(m) appends under the next index; add(name, m) uses a name
function Concat:add(a, b)
  if b == nil then self:add_module(tostring(#self._children), a) else self:add_module(a, b) end
  return self
end

function Concat:updateOutput(input)
  if #self._children == 0 then error("nn.Concat: no children", 2) end
  local outs = {}
  for i, c in ipairs(self._children) do
    outs[i] = self:call_child(i, function() return c[2]:updateOutput(input) end)
    c[2].output = outs[i]
  end
  -- check the shapes here, so the message names the child whose output does not fit
  local first = outs[1]:size()
  local nd = #first
  local d = self.dim < 0 and nd + self.dim + 1 or self.dim
  if d < 1 or d > nd then
    error(("nn.Concat: dim %d out of range for the %d-d output %s of child 1 (%s)"):format(self.dim, nd,
      tostring(outs[1]:size()), self._children[1][1]), 2)
  end
  for i = 2, #outs do
    local s = outs[i]:size()
    local ok = #s == nd
    for k = 1, nd do if ok and k ~= d and s[k] ~= first[k] then ok = false end end
    if not ok then
      local e = self._children[i]
      error(("nn.Concat: the output of child %d (%s: %s) has shape %s, which cannot be joined along dim %d with "
        .. "child 1's %s"):format(i, e[1], e[2].__typename, tostring(outs[i]:size()), d, tostring(outs[1]:size())), 2)
    end
  end
  return dpl.cat(outs, d)
end

function Concat:extra_repr() return "dim " .. self.dim end

return Concat

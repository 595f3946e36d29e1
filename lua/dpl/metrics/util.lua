-- Helpers shared by the metric modules: turning tensors or Lua tables into flat lists of numbers.
local T = require "dpl.tensor"
local M = {}

M.is_tensor = T.is_tensor

-- A flat Lua list of numbers from a dpl tensor (any shape, read in row-major order) or a Lua list.
function M.values(x, what)
  if T.is_tensor(x) then return x:tolist() end
  if type(x) ~= "table" then
    error(("%s: expected a tensor or a list of numbers, got %s"):format(what, type(x)), 3)
  end
  for i = 1, #x do
    if type(x[i]) ~= "number" then
      error(("%s: element %d is a %s, not a number"):format(what, i, type(x[i])), 3)
    end
  end
  return x
end

-- Checks that all lists have the same length (names[i] describes lists[i] in the message).
function M.same_length(fn, names, lists)
  local n = #lists[1]
  for i = 2, #lists do
    if #lists[i] ~= n then
      error(("%s: %s has %d values but %s has %d"):format(fn, names[1], n, names[i], #lists[i]), 3)
    end
  end
  return n
end

function M.mean(list)
  local s = 0
  for i = 1, #list do s = s + list[i] end
  return s / #list
end

return M

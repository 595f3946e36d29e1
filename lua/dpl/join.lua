-- dpl.cat / dpl.split / dpl.chunk: joining and splitting along a dim (Inception, DenseNet and Fire modules), built
-- on views and copies so they run on every device; differentiable.
local T = require "dpl.tensor"
local A = require "dpl.autograd"

local M = {}

local function norm(d, nd) return d < 0 and nd + d + 1 or d end

-- cat({a, b, ...}, dim): sizes must agree except along dim
function M.cat(list, dim)
  dim = dim or 1
  if type(list) ~= "table" or #list == 0 then error("cat: expected a non-empty list of tensors", 2) end
  local first = list[1]
  local nd = first:dim()
  local d = norm(dim, nd)
  if d < 1 or d > nd then error(("cat: dim %d out of range for %d-d tensors"):format(dim, nd), 2) end
  local shape = first:size()
  local total = 0
  for i, t in ipairs(list) do
    local s = t:size()
    if #s ~= nd then error(("cat: tensor %d has %d dims, tensor 1 has %d"):format(i, #s, nd), 2) end
    for k = 1, nd do
      if k ~= d and s[k] ~= shape[k] then
        error(("cat: tensor %d has shape %s, incompatible with %s outside dim %d"):format(i, tostring(s),
          tostring(shape), d), 2)
      end
    end
    if t:device() ~= first:device() then error(("cat: tensor %d is on %s, tensor 1 on %s"):format(i, t:device(),
      first:device()), 2) end
    total = total + s[d]
  end
  local out_shape = {}
  for k = 1, nd do out_shape[k] = shape[k] end
  out_shape[d] = total
  local out = A.no_grad(function()
    local o = first:new_zeros(out_shape)
    local at = 1
    for _, t in ipairs(list) do
      local n = t:size(d)
      if n > 0 then o:narrow(d, at, n):copy_(t) end
      at = at + n
    end
    return o
  end)
  if A.needs_grad(unpack(list)) then
    -- the node keeps its own copy of the list: the caller may append to its table afterwards (DenseNet's feature
    -- list does), which would otherwise add inputs to this node and a cycle to the graph
    list = {unpack(list)}
    local sizes = {}
    for i, t in ipairs(list) do sizes[i] = t:size(d) end
    A.record("cat", out, list, function(g)
      local grads, at = {}, 1
      for i, n in ipairs(sizes) do
        grads[i] = list[i].requires_grad and g:narrow(d, at, n):contiguous() or nil
        at = at + n
      end
      return grads
    end)
  end
  return out
end

-- split(t, size_or_sizes, dim): views of `size` along dim (the last may be smaller), or of the listed sizes
function M.split(t, sizes, dim)
  dim = dim or 1
  local d = norm(dim, t:dim())
  if d < 1 or d > t:dim() then error(("split: dim %d out of range for a %d-d tensor"):format(dim, t:dim()), 2) end
  local n = t:size(d)
  local list = {}
  if type(sizes) == "number" then
    if sizes < 1 or sizes ~= math.floor(sizes) then
      error(("split: the split size must be a positive integer, got %s (shape %s)"):format(tostring(sizes),
        tostring(t:size())), 2)
    end
    local at = 1
    while at <= n do
      local len = math.min(sizes, n - at + 1)
      list[#list + 1] = t:narrow(d, at, len)
      at = at + len
    end
  else
    local at, sum = 1, 0
    for _, s in ipairs(sizes) do
      if type(s) ~= "number" or s < 0 or s ~= math.floor(s) then
        error(("split: sizes must be non-negative integers, got %s"):format(tostring(s)), 2)
      end
      sum = sum + s
    end
    if sum ~= n then error(("split: sizes add up to %d but dim %d has %d"):format(sum, d, n), 2) end
    for _, s in ipairs(sizes) do
      list[#list + 1] = t:narrow(d, at, s)
      at = at + s
    end
  end
  return list
end

function M.chunk(t, chunks, dim)
  dim = dim or 1
  if type(chunks) ~= "number" or chunks < 1 or chunks ~= math.floor(chunks) then
    error(("chunk: the number of chunks must be a positive integer, got %s"):format(tostring(chunks)), 2)
  end
  local n = t:size(norm(dim, t:dim()))
  return M.split(t, math.max(math.ceil(n / chunks), 1), dim)
end

return M

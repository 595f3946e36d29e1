-- dpl.models.common - what the architecture definitions share.
local M = {}

-- The number of children to build: all n, or upto + 1 for a model truncated after child `upto` (0-based, as the
-- reference code's child lists count). A bad upto is an error naming the model, its child list (`what`) and the valid
-- range; `level` is the error level as seen from the __init that calls this.
function M.children_upto(arch, what, n, upto, level)
  if upto == nil then return n end
  if type(upto) ~= "number" or upto < 0 or upto >= n or upto ~= math.floor(upto) then
    error(("%s: upto must be an integer in 0..%d (%s has %d children), got %s"):format(arch, n - 1, what, n,
      tostring(upto)), level + 1)
  end
  return upto + 1
end

-- Registers the children of a model whose child list is the model itself (GoogLeNet, Inception v3): names in
-- registration order, make(name, device) building one; only children 0..opts.upto when it is given. Sets
-- self.upto and self.extract_list (0-based child i at extract_list[i + 1]); each child is also self[name].
function M.add_children(self, arch, names, make, opts)
  local n = M.children_upto(arch, "the model", #names, opts.upto, 4)
  self.upto = opts.upto
  self.extract_list = {}
  for i = 1, n do
    local child = self:add_module(names[i], make(names[i], opts.device))
    self[names[i]] = child
    self.extract_list[i] = child
  end
end

return M

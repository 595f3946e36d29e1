-- dpl.autograd: reverse-mode automatic differentiation over dpl tensors, and the registry of differentiable ops.
--
--   local x = dpl.randn(3, 4):requires_grad_()
--   local y = (x * x):sum()
--   y:backward()            -- x.grad == 2x
--
-- Every differentiable op is declared once, with its forward and its gradient together (lua/dpl/ops/*.lua):
--
--   M.mul = A.op {name = "mul", inputs = 2, broadcast = true,
--     forward = function(a, b) return binary(BINARY.mul, a, b) end,
--     backward = function(c, g) return A.wants(c[1]) and g * c[2], A.wants(c[2]) and g * c[1] end}
--
-- A.op returns the function users call. When grad mode is on and one of the first `inputs` arguments is a tensor that
-- requires grad, the call records a node: its inputs and a context `c` holding the call's arguments c[1..n], the
-- output c.y and forward's second result c.saved. backward(c, g) returns the gradients of those inputs (nil or false
-- where not needed); with `broadcast = true` each is summed back to its input's shape. `inputs = "list"` declares an
-- op whose first argument is a list of tensors (cat); its backward returns a list of gradients.
-- Tensor:backward() walks the nodes in reverse topological order, accumulating gradients; leaves (tensors created by
-- the user with requires_grad) receive `.grad`. The graph's saved tensors are released after backward unless
-- retain_graph is set, so a second backward is a clear error. Gradients are computed with dpl ops (recording off),
-- so they run on the tensors' device (Vulkan or CPU).
local T = require "dpl.tensor"

local is_tensor = T.is_tensor

local A = {enabled = true, ops = {}}

-- ---- grad mode ------------------------------------------------------------------------------------------------------
-- Runs fn(...) with gradient recording off (as torch.no_grad), restoring the mode even on error.
function A.no_grad(fn, ...)
  local prev = A.enabled
  A.enabled = false
  local function finish(ok, ...)
    A.enabled = prev
    if not ok then error((...), 0) end
    return ...
  end
  return finish(pcall(fn, ...))
end

function A.set_enabled(on)
  local prev = A.enabled
  A.enabled = on and true or false
  return prev
end

-- x takes part in the graph: a tensor that requires grad
local function wants(x) return is_tensor(x) and x.requires_grad == true end
A.wants = wants

function A.needs_grad(...)
  if not A.enabled then return false end
  for i = 1, select("#", ...) do
    if wants((select(i, ...))) then return true end
  end
  return false
end

-- Sums g down to `shape` (undoing broadcasting): leading extra dims and dims where shape has size 1.
local function sum_to(g, shape)
  local gs = g:size()
  if gs == shape then return g end
  local lead = #gs - #shape
  local dims = {}
  for i = 1, #gs do
    if i <= lead or (shape[i - lead] == 1 and gs[i] ~= 1) then dims[#dims + 1] = i end
  end
  local r = #dims > 0 and g:sum(dims, true) or g
  return r:reshape(shape)
end
A.sum_to = sum_to

-- ---- the registry -------------------------------------------------------------------------------------------------
local function any_wants(n, ...)
  if n == "list" then
    for _, x in ipairs((...)) do if wants(x) then return true end end
    return false
  end
  for i = 1, n do
    if wants((select(i, ...))) then return true end
  end
  return false
end

-- the node of one recorded call
local function record(spec, y, saved, ...)
  local c = {...}
  c.n, c.y, c.saved = select("#", ...), y, saved
  local inputs, backward
  if spec.inputs == "list" then
    -- the node keeps its own copy of the list: the caller may append to its table afterwards (DenseNet's feature
    -- list does), which would otherwise add inputs to this node and a cycle to the graph
    inputs = {unpack(c[1])}
    c[1] = inputs
    backward = function(g) return spec.backward(c, g) end
  else
    inputs = {}
    local shapes = spec.broadcast and {} or nil
    for i = 1, spec.inputs do
      local x = c[i]
      inputs[i] = is_tensor(x) and x or false
      if shapes and inputs[i] then shapes[i] = x:size() end
    end
    backward = function(g)
      local grads = {spec.backward(c, g)}
      for i = 1, spec.inputs do
        local gi = grads[i]
        if not (gi and inputs[i] and inputs[i].requires_grad) then grads[i] = nil
        elseif shapes then grads[i] = sum_to(gi, shapes[i]) end
      end
      return grads
    end
  end
  y.requires_grad = true
  y.grad_fn = {name = spec.name, inputs = inputs, backward = backward}
end

-- Declares a differentiable op (see the top of this file) and returns the function that runs it.
function A.op(spec)
  assert(type(spec.name) == "string" and spec.forward and spec.backward, "A.op: needs name, forward and backward")
  spec.inputs = spec.inputs or 1
  if A.ops[spec.name] then error("autograd: op " .. spec.name .. " is declared twice", 2) end
  A.ops[spec.name] = spec
  local forward, n = spec.forward, spec.inputs
  return function(...)
    if not (A.enabled and any_wants(n, ...)) then return forward(...) end
    local y, saved = forward(...)
    record(spec, y, saved, ...)
    return y, saved
  end
end

-- ---- tensor methods of autograd (installed by lua/dpl/ops/init.lua) ---------------------------------------------
function A.requires_grad_(t, on)
  if on == nil then on = true end
  if on and t.grad_fn then error("requires_grad_: only leaf tensors can be made to require grad", 2) end
  t.requires_grad = on and true or nil
  return t
end

-- A tensor sharing data with t but cut from the graph.
function A.detach(t) return T.new(T.C.dpl_tensor_ref, T.handle(t)) end

function A.is_leaf(t) return t.grad_fn == nil end

function A.retain_grad(t) t.retains_grad = true; return t end

local function accumulate(old, g) return old and old + g or g end

-- A.node_timer: nil, or a profiler of the backward pass (bench/train.lua --profile): called with no argument before
-- a node's backward, it returns a start mark; called after as node_timer(mark, op name, the node's output tensor).
-- On the CPU, where ops run when called, the difference is the node's time.
A.node_timer = nil

-- Computes gradients of t (a one-element tensor, or any tensor with an explicit `grad`) w.r.t. every leaf that
-- requires grad, accumulating into leaf.grad.
function A.backward(t, grad, retain_graph)
  if not t.requires_grad then error("backward: the tensor does not require grad (no input required grad)", 2) end
  if grad == nil then
    if t:numel() ~= 1 then error("backward: grad can be omitted only for a one-element tensor (shape " ..
      tostring(t:size()) .. ")", 2) end
    grad = T.new(T.C.dpl_tensor_full, T.C.dpl_tensor_device(T.handle(t)), t:dim(), select(2, T.shape_args(t:size())), 1)
  end
  -- topological order of the nodes reachable from t
  local order, seen = {}, {}
  local function visit(x)
    local node = x.grad_fn
    if not node or seen[node] then return end
    seen[node] = true
    if node.freed then
      error("backward: trying to go through the graph a second time (its saved tensors were freed after the first "
        .. "backward; pass retain_graph = true to keep them)", 3)
    end
    for _, inp in ipairs(node.inputs) do
      if inp and inp.requires_grad then visit(inp) end
    end
    order[#order + 1] = x
  end
  visit(t)
  local grads = {[t] = grad}
  local prev = A.set_enabled(false)
  local ok, err = pcall(function()
    if not t.grad_fn then
      t.grad = accumulate(t.grad, grad)
      return
    end
    for i = #order, 1, -1 do
      local x = order[i]
      local g = grads[x]
      grads[x] = nil
      if g then
        local node = x.grad_fn
        local t0 = A.node_timer and A.node_timer()
        local gin = node.backward(g)
        if t0 then A.node_timer(t0, node.name, x) end
        for k, inp in ipairs(node.inputs) do
          local gi = gin[k]
          if inp and inp.requires_grad and gi then
            if inp.grad_fn then grads[inp] = accumulate(grads[inp], gi)
            else inp.grad = accumulate(inp.grad, gi) end
          end
        end
        if x.retains_grad then x.grad = accumulate(x.grad, g) end
      end
    end
  end)
  A.set_enabled(prev)
  if not ok then error(err, 0) end
  if not retain_graph then
    for _, x in ipairs(order) do
      local node = x.grad_fn
      node.freed = true
      node.backward = nil
      node.inputs = {}
    end
  end
end

return A

-- nn.Module: the base of every layer, following torch/nn with PyTorch's naming.
--
-- A module owns parameters (tensors that require grad unless frozen) and buffers (state such as running means),
-- registered in order under PyTorch state_dict names, and children. forward() runs with autograd: after
-- `loss:backward()` every parameter's `.grad` holds its gradient. backward(input, gradOutput) is the torch/nn form:
-- it backpropagates gradOutput from this module's last output and returns the gradient w.r.t. its input.
local dpl_tensor = require "dpl.tensor"
local autograd = require "dpl.autograd"
local class = require "dpl.class"

local Module = class("nn.Module")

function Module:__init()
  rawset(self, "_params", {})      -- ordered {name, tensor}
  rawset(self, "_buffers", {})     -- ordered {name, tensor}
  rawset(self, "_children", {})    -- ordered {name, module}
  self.train = true
end

-- ---- registration -------------------------------------------------------------------------------------------------
local function set_entry(list, name, value)
  for _, e in ipairs(list) do
    if e[1] == name then e[2] = value; return end
  end
  list[#list + 1] = {name, value}
end

function Module:register_parameter(name, t)
  if t ~= nil and not t.requires_grad then t:requires_grad_() end
  set_entry(self._params, name, t)
  self[name] = t
  return t
end

function Module:register_buffer(name, t)
  set_entry(self._buffers, name, t)
  self[name] = t
  return t
end

function Module:add_module(name, m)
  set_entry(self._children, tostring(name), m)
  return m
end

function Module:children()
  local out = {}
  for i, e in ipairs(self._children) do out[i] = e[2] end
  return out
end

-- Constructor argument check: each {name, value} must be a positive integer (a kernel size may be an {h, w} pair of
-- them), else an error naming the module type, e.g. "nn.Conv2d: in_channels must be a positive integer, got 0".
function Module.check_sizes(typename, list)
  for _, e in ipairs(list) do
    local name, v = e[1], e[2]
    local vals = type(v) == "table" and v or {v}
    local ok = #vals >= 1 and #vals <= 2
    for _, x in ipairs(vals) do
      if type(x) ~= "number" or x < 1 or x ~= math.floor(x) then ok = false end
    end
    if not ok then
      local shown = type(v) == "table" and ("{" .. table.concat(vals, ", ") .. "}") or tostring(v)
      error(("%s: %s must be a positive integer%s, got %s"):format(typename, name,
        type(v) == "table" and " or a pair of them" or "", shown), 4)   -- 4: the caller of the constructor
    end
  end
end

-- Constructor options: opts must be nil or a table whose keys are among `allowed` (a list), else an error naming the
-- module type, e.g. "nn.Linear: unknown option 'bais' (bias, device)". Returns opts or {}.
function Module.options(typename, opts, allowed)
  return require("dpl.ops.args").options(typename, opts, allowed, 2)   -- 2: the caller of the constructor
end

-- ---- running ------------------------------------------------------------------------------------------------------
function Module:updateOutput(input)
  error(self.__typename .. ": updateOutput is not implemented", 2)
end

function Module:forward(input)
  local x = input
  -- keep a leaf alias so that backward(input, gradOutput) can return dL/dinput (torch/nn style)
  if autograd.enabled and dpl_tensor.is_tensor(input) and not input.requires_grad then
    x = input:detach():requires_grad_()
  elseif dpl_tensor.is_tensor(input) and input.requires_grad and input.grad_fn then
    input:retain_grad()
  end
  self._input = x
  self.output = self:updateOutput(x)
  return self.output
end

Module.__call = function(self, ...) return self:forward(...) end

function Module:backward(input, gradOutput)
  if not self.output then error(self.__typename .. ": backward before forward", 2) end
  if not self.output.requires_grad then
    error(self.__typename .. ": backward needs a forward run with grad enabled (not inside dpl.no_grad)", 2)
  end
  local x = self._input
  if x and x.grad and not x.grad_fn then x.grad = nil end
  self.output:backward(gradOutput)
  self.gradInput = x and x.grad or nil
  return self.gradInput
end

-- ---- parameters ---------------------------------------------------------------------------------------------------
-- Calls fn(prefix .. name, tensor, module, name) for every parameter (kind "params") or buffer ("buffers"),
-- depth-first in registration order, as PyTorch's named_parameters / named_buffers.
function Module:apply_named(kind, fn, prefix)
  prefix = prefix or ""
  for _, e in ipairs(self["_" .. kind]) do
    if e[2] ~= nil then fn(prefix .. e[1], e[2], self, e[1]) end
  end
  for _, c in ipairs(self._children) do c[2]:apply_named(kind, fn, prefix .. c[1] .. ".") end
end

function Module:named_parameters()
  local out = {}
  self:apply_named("params", function(name, t) out[#out + 1] = {name, t} end)
  return out
end

-- torch/nn form: params, grads (grads may hold nil before the first backward)
function Module:parameters()
  local params, grads = {}, {}
  self:apply_named("params", function(_, t) params[#params + 1] = t; grads[#grads + 1] = t.grad end)
  return params, grads
end

function Module:zeroGrad()
  self:apply_named("params", function(_, t) t.grad = nil end)
end
Module.zero_grad = Module.zeroGrad
Module.zeroGradParameters = Module.zeroGrad

-- Freezing: parameters stop requiring grad (they never get gradients), gradients still flow to the input.
function Module:freeze()
  self:apply_named("params", function(_, t) t.requires_grad = nil; t.grad = nil end)
  self.frozen = true
  return self
end

function Module:training()
  self.train = true
  for _, c in ipairs(self._children) do c[2]:training() end
  return self
end

function Module:evaluate()
  self.train = false
  for _, c in ipairs(self._children) do c[2]:evaluate() end
  return self
end
Module.eval = Module.evaluate

-- Moves parameters and buffers to a device.
function Module:to(device)
  for _, kind in ipairs {"_params", "_buffers"} do
    for _, e in ipairs(self[kind]) do
      if e[2] ~= nil then
        local req = e[2].requires_grad
        local t = autograd.no_grad(function() return e[2]:to(device) end)
        if req then t:requires_grad_() end
        e[2] = t
        self[e[1]] = t
      end
    end
  end
  for _, c in ipairs(self._children) do c[2]:to(device) end
  return self
end

-- ---- state dicts --------------------------------------------------------------------------------------------------
-- name -> tensor for every parameter and buffer, with PyTorch names (e.g. features.0.weight).
function Module:state_dict()
  local sd, order = {}, {}
  local function add(name, t) sd[name] = t; order[#order + 1] = name end
  local function walk(m, prefix)
    for _, e in ipairs(m._params) do if e[2] ~= nil then add(prefix .. e[1], e[2]) end end
    for _, e in ipairs(m._buffers) do if e[2] ~= nil then add(prefix .. e[1], e[2]) end end
    for _, c in ipairs(m._children) do walk(c[2], prefix .. c[1] .. ".") end
  end
  walk(self, "")
  return sd, order
end

-- Copies tensors from `sd` (name -> tensor, any device) into the module. Strict (default): every key must match
-- and every shape agree, else a clear error listing what is missing or unexpected.
function Module:load_state_dict(sd, strict)
  if strict == nil then strict = true end
  local own, order = self:state_dict()
  local missing, unexpected = {}, {}
  for _, name in ipairs(order) do if sd[name] == nil then missing[#missing + 1] = name end end
  for name in pairs(sd) do if own[name] == nil then unexpected[#unexpected + 1] = name end end
  table.sort(unexpected)
  if strict and (#missing > 0 or #unexpected > 0) then
    local msg = {"load_state_dict: keys do not match the model (" .. self.__typename .. ")"}
    if #missing > 0 then msg[#msg + 1] = "missing: " .. table.concat(missing, ", ", 1, math.min(#missing, 20)) ..
      (#missing > 20 and (" ... (%d in all)"):format(#missing) or "") end
    if #unexpected > 0 then msg[#msg + 1] = "unexpected: " .. table.concat(unexpected, ", ", 1, math.min(#unexpected, 20)) ..
      (#unexpected > 20 and (" ... (%d in all)"):format(#unexpected) or "") end
    error(table.concat(msg, "; "), 2)
  end
  for _, name in ipairs(order) do
    local src = sd[name]
    if src ~= nil then
      local dst = own[name]
      if not (src:size() == dst:size()) then
        error(("load_state_dict: %s has shape %s in the checkpoint but %s in the model"):format(
          name, tostring(src:size()), tostring(dst:size())), 2)
      end
      autograd.no_grad(function()
        local was = dst.requires_grad
        dst.requires_grad = nil
        dst:copy_(src)
        dst.requires_grad = was
      end)
    end
  end
  return missing, unexpected
end

-- ---- printing -----------------------------------------------------------------------------------------------------
function Module:__tostring__()
  local lines = {self:extra_repr() and (self.__typename .. "(" .. self:extra_repr() .. ")") or self.__typename}
  for _, c in ipairs(self._children) do
    local sub = tostring(c[2]):gsub("\n", "\n  ")
    lines[#lines + 1] = "  (" .. c[1] .. "): " .. sub
  end
  return table.concat(lines, "\n")
end

function Module:extra_repr() return nil end

Module.__tostring = function(self) return self:__tostring__() end

return Module

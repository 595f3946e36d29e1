-- dpl.nn.fuse: fewer passes over the activations of a network, with the same results up to float rounding.
--
--   local fuse = require "dpl.nn.fuse"
--   fuse.apply(model)            -- what lossnet.new does for every loss network (opts.fuse = false: not)
--   fuse.remove(model)           -- back to one op per module
--
-- Two rewrites, both replacing the forward (updateOutput) of the modules concerned, never their parameters or
-- state_dict:
--  * BatchNorm folded into the convolution before it: a Conv2d directly followed, in its parent's children, by a
--    BatchNorm2d over its outputs (the pattern of every torchvision architecture with BN: conv-bn, conv-bn-relu,
--    ResNet's downsample, DenseNet's conv1-norm2) runs as one convolution with weight w * s and bias (b - mean) s + beta,
--    s = gamma / sqrt(running_var + eps), and the BatchNorm passes its input through. Only while the fold is exact:
--    both modules in evaluation mode and their parameters frozen (no gradient wanted for them); otherwise each runs
--    as before. The folded weights are recomputed whenever any of the six tensors has changed (their storage
--    versions, dpl_tensor_version).
--  * ReLU fused into the convolution (conv2d{activation = "relu"}: one pass instead of two on Vulkan) where a ReLU
--    module directly follows the convolution, or its folded BatchNorm, in a list whose children run once each in order
--    (an nn.Sequential, a loss network's list): the ReLU then passes its input through. (A ReLU module that a block
--    calls twice, as in ResNet's BasicBlock, is never in such a list.)
-- Gradients with respect to the input flow through both as through the separate ops.
local ffi = require "ffi"
local dffi = require "dpl.ffi"
local T = require "dpl.tensor"
local autograd = require "dpl.autograd"
local F = require "dpl.nn.functional"

local M = {}

local id_t, version_t = ffi.new("uint64_t[1]"), ffi.new("uint64_t[1]")
local function version(t)
  if t == nil then return "-" end
  dffi.C.dpl_tensor_version(T.handle(t), id_t, version_t)
  return tostring(id_t[0]) .. ":" .. tostring(version_t[0])
end

local function is(m, typename) return type(m) == "table" and m.__typename == typename end

local function wants_grad(t) return t ~= nil and t.requires_grad end

-- the fold holds while both modules evaluate and nothing asks for their parameters' gradients
local function fold_active(conv, bn)
  return not conv.train and not bn.train and not (wants_grad(conv.weight) or wants_grad(conv.bias) or
         wants_grad(bn.weight) or wants_grad(bn.bias))
end

-- folded weight and bias of (conv, bn), cached until one of the tensors changes
local function folded(conv, bn)
  local key = table.concat({version(conv.weight), version(conv.bias), version(bn.weight), version(bn.bias),
                            version(bn.running_mean), version(bn.running_var), tostring(bn.eps)}, " ")
  local f = rawget(conv, "_fold")
  if f and f.key == key then return f.weight, f.bias end
  autograd.no_grad(function()
    local o = conv.out_channels
    local s = (bn.running_var + bn.eps):rsqrt()
    if bn.weight then s = s * bn.weight end
    local b = conv.bias and (conv.bias - bn.running_mean) or -bn.running_mean
    b = b * s
    if bn.bias then b = b + bn.bias end
    f = {key = key, weight = conv.weight * s:reshape(o, 1, 1, 1), bias = b}
  end)
  rawset(conv, "_fold", f)
  return f.weight, f.bias
end

local function conv_forward(conv, x)
  local fuse = rawget(conv, "_fuse")
  local w, b = conv.weight, conv.bias
  local bn = fuse.bn
  local folding = bn ~= nil and fold_active(conv, bn)
  if folding then w, b = folded(conv, bn) end
  -- the ReLU goes in only when nothing (an unfolded BatchNorm) stands between the convolution and it
  local relu = fuse.relu ~= nil and (bn == nil or folding)
  fuse.applied_bn, fuse.applied_relu = folding, relu
  local opts = conv.opts
  if relu then
    opts = {activation = "relu"}
    for k, v in pairs(conv.opts) do opts[k] = v end
  end
  return F.conv2d(x, w, b, opts)
end

local function bn_forward(bn, x)
  local conv = rawget(bn, "_fused_into")
  if rawget(conv, "_fuse").applied_bn then return x end
  return getmetatable(bn).updateOutput(bn, x)
end

local function relu_forward(relu, x)
  local conv = rawget(relu, "_fused_into")
  if rawget(conv, "_fuse").applied_relu then return x end
  return getmetatable(relu).updateOutput(relu, x)
end

local function mark(conv)
  local f = rawget(conv, "_fuse")
  if not f then
    f = {}
    rawset(conv, "_fuse", f)
    rawset(conv, "updateOutput", conv_forward)
  end
  return f
end

-- pairs and triples in one ordered list of modules; `ordered`: its children run once each, in order
local function scan(list, ordered)
  local n = 0
  for i, m in ipairs(list) do
    if is(m, "nn.Conv2d") and not rawget(m, "_fuse") then
      local nxt, j = list[i + 1], i + 1
      local bn
      if is(nxt, "nn.BatchNorm2d") and nxt.num_features == m.out_channels and not rawget(nxt, "_fused_into") then
        bn = nxt
        mark(m).bn = bn
        rawset(bn, "_fused_into", m)
        rawset(bn, "updateOutput", bn_forward)
        n = n + 1
        j = i + 2
      end
      local r = list[j]
      if ordered and is(r, "nn.ReLU") and not rawget(r, "_fused_into") then
        mark(m).relu = r
        rawset(r, "_fused_into", m)
        rawset(r, "updateOutput", relu_forward)
        n = n + 1
      end
    end
  end
  return n
end

local function walk(m, seen, fn)
  if type(m) ~= "table" or seen[m] then return end
  seen[m] = true
  local children = rawget(m, "_children")
  if not children then return end
  local list = {}
  for i, e in ipairs(children) do list[i] = e[2] end
  fn(m, list)
  for _, c in ipairs(list) do walk(c, seen, fn) end
end

-- Applies both rewrites to model (and to `list`, a list of its modules run in order, such as a loss network's
-- truncated child list). Returns the number of BatchNorms and ReLUs fused.
function M.apply(model, list)
  local n = 0
  if list then n = n + scan(list, true) end
  walk(model, {}, function(m, children) n = n + scan(children, is(m, "nn.Sequential")) end)
  return n
end

-- Undoes apply: every module runs its own forward again.
function M.remove(model)
  walk(model, {}, function(_, children)
    for _, c in ipairs(children) do
      for _, k in ipairs {"_fuse", "_fold", "_fused_into", "updateOutput"} do rawset(c, k, nil) end
    end
  end)
end

return M

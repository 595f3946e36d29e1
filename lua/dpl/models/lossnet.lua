-- dpl.models.lossnet (also dpl.lossnet): the loss networks of the paper: an ImageNet architecture truncated after an
-- extraction layer, with its weights, input normalisation, mode and frozen parameters.
--
--   local lossnet = require "dpl.models.lossnet"
--   local net = lossnet.new("vgg16", "M", {weights = "weights/vgg16-397923af.pth", normalize = "imagenet"})
--   local f = net:forward(x)        -- features at relu3_3; gradients flow to x, never to the weights
--
-- Layers are E, S, M, L (docs/benchmarks/lossnets.md, the paper's Table II), a raw 0-based child index or the
-- torchvision module name of a child ("features.29", "layer4"; M.layer_index). As in
-- the reference implementation, the network is the list of children of `features` (or of the model itself), run in
-- order up to the layer; nothing after it is built or run.
local dpl = require "dpl"
local class = require "dpl.class"
local Module = require "dpl.nn.Module"

local M = {}

-- family, constructor module, list attribute and the E/S/M/L child indices (docs/benchmarks/lossnets.md)
local ARCHS = {
  alexnet = {family = "AlexNet", module = "dpl.models.alexnet", list = "features", layers = {1, 4, 7, 11}},
  vgg11 = {family = "VGG", module = "dpl.models.vgg", list = "features", layers = {1, 4, 9, 19}},
  vgg16 = {family = "VGG", module = "dpl.models.vgg", list = "features", layers = {3, 8, 15, 29}},
  vgg16_bn = {family = "VGG", module = "dpl.models.vgg", list = "features", layers = {5, 12, 22, 42}},
  vgg19 = {family = "VGG", module = "dpl.models.vgg", list = "features", layers = {3, 8, 17, 35}},
  resnet18 = {family = "ResNet", module = "dpl.models.resnet", list = "model", layers = {2, 4, 5, 7}},
  resnet50 = {family = "ResNet", module = "dpl.models.resnet", list = "model", layers = {2, 4, 5, 7}},
  resnext50_32x4d = {family = "ResNet", module = "dpl.models.resnet", list = "model", layers = {2, 4, 5, 7}},
  googlenet = {family = "Inception", module = "dpl.models.googlenet", list = "model", layers = {0, 5, 8, 15}},
  inception_v3 = {family = "Inception", module = "dpl.models.inception", list = "model", layers = {2, 7, 9, 14}},
  efficientnet_b0 = {family = "EfficientNet", module = "dpl.models.efficientnet", list = "features", layers = {0, 1, 4, 7}},
  efficientnet_b7 = {family = "EfficientNet", module = "dpl.models.efficientnet", list = "features", layers = {0, 1, 4, 7}},
  densenet121 = {family = "DenseNet", module = "dpl.models.densenet", list = "features", layers = {2, 4, 6, 10}},
  squeezenet1_1 = {family = "SqueezeNet", module = "dpl.models.squeezenet", list = "features", layers = {1, 3, 7, 12}},
}
M.ARCHS = ARCHS
-- the order of the paper's tables: by family
M.ORDER = {"alexnet", "vgg11", "vgg16", "vgg16_bn", "vgg19", "resnet18", "resnet50", "resnext50_32x4d", "googlenet",
           "inception_v3", "efficientnet_b0", "efficientnet_b7", "densenet121", "squeezenet1_1"}
M.LAYER_NAMES = {"E", "S", "M", "L"}

local transforms = require "dpl.data.transforms"

local function arch_info(arch)
  local a = ARCHS[arch]
  if not a then
    error(("unknown architecture '%s' (known: %s)"):format(tostring(arch), table.concat(M.ORDER, ", ")), 3)
  end
  return a
end

-- The torchvision module names of an architecture's children, in order ("features.0", ... or "conv1", ..., "layer4").
function M.child_names(arch)
  local a = arch_info(arch)
  local info = require(a.module).info[arch]
  local out = {}
  for i, c in ipairs(info.children) do out[i] = info.list == "features" and "features." .. c or c end
  return out
end

-- The 0-based child index of a layer: E, S, M or L (any case; docs/benchmarks/lossnets.md), a 0-based child index
-- (a number or digits), or a torchvision module name of a child ("features.29" for VGG-16, "layer4" for ResNets,
-- "Mixed_6e" for Inception v3). One syntax for every script; the error lists what is accepted.
function M.layer_index(arch, layer)
  local a = arch_info(arch)
  if type(layer) == "number" or (type(layer) == "string" and layer:match("^%d+$")) then
    local i = tonumber(layer)
    if i < 0 or i ~= math.floor(i) then error(("layer index %s must be a non-negative integer"):format(layer), 2) end
    return i
  end
  if type(layer) == "string" then
    local up = layer:upper()
    for k, name in ipairs(M.LAYER_NAMES) do
      if up == name then return a.layers[k] end
    end
    local names = M.child_names(arch)
    for i, n in ipairs(names) do
      if n == layer then return i - 1 end
    end
    for i, n in ipairs(names) do   -- a module name in another case (torchvision's are case-sensitive; one match only)
      if n:lower() == layer:lower() then return i - 1 end
    end
    error(("unknown layer '%s' for %s (E, S, M, L, a 0-based child index 0..%d, or a module name: %s)"):format(
      layer, arch, #names - 1, table.concat(names, ", ", 1, math.min(#names, 6)) .. (#names > 6 and ", ..." or "")), 2)
  end
  error(("unknown layer '%s' for %s (E, S, M, L or a child index)"):format(tostring(layer), arch), 2)
end

-- The torchvision module name of child `index` of arch ("features.29"); nil past the end.
function M.layer_module(arch, index) return M.child_names(arch)[index + 1] end

-- The canonical name of a layer of arch: E, S, M or L when it is one of them (whatever way it was written), else the
-- torchvision module name of the child ("features.22"). What results and outputs are labelled with.
function M.layer_label(arch, layer)
  local i = M.layer_index(arch, layer)
  for k, name in ipairs(M.LAYER_NAMES) do
    if ARCHS[arch].layers[k] == i then return name end
  end
  return M.layer_module(arch, i) or tostring(i)
end

-- A --layer value as a list of layers: "all" (E, S, M, L), one layer, or a comma list; each checked against every
-- architecture in archs (one line naming the bad one).
function M.parse_layers(spec, archs)
  local list = {}
  if type(spec) == "table" then list = spec
  elseif tostring(spec):lower() == "all" then list = {"E", "S", "M", "L"}
  else
    for w in tostring(spec):gmatch("[^,%s]+") do list[#list + 1] = w:match("^[esmlESML]$") and w:upper() or w end
  end
  if #list == 0 then error("--layer: empty (E, S, M, L, all, a child index or a module name)", 2) end
  for _, arch in ipairs(archs or {}) do
    for _, l in ipairs(list) do
      local ok, err = pcall(M.layer_index, arch, l)
      if not ok then error(("--layer %s: %s"):format(tostring(l), (tostring(err):gsub("^[^\n:]*%.lua:%d+: ", ""))), 2) end
    end
  end
  return list
end

-- Builds the architecture truncated after child `upto` (or whole when upto is nil).
function M.build(arch, upto, opts)
  local a = arch_info(arch)
  local ok, family = pcall(require, a.module)
  if not ok then error(("architecture %s is not available: %s"):format(arch, tostring(family)), 2) end
  local ctor = family[arch]
  if not ctor then error(("%s does not define %s"):format(a.module, arch), 2) end
  local model = ctor({upto = upto, device = opts and opts.device})
  if upto and #model.extract_list < upto + 1 then
    error(("%s has %d children in its %s list; layer index %d does not exist"):format(arch, #model.extract_list,
      a.list, upto), 2)
  end
  return model
end

-- ---- weights ------------------------------------------------------------------------------------------------------
-- Loads a name -> tensor table into `model` (truncated): every parameter and buffer of the model must be present;
-- checkpoint entries for parts that were not built are ignored.
local function load_into(model, tensors, source)
  local own, order = model:state_dict()
  local sd, missing = {}, {}
  for _, name in ipairs(order) do
    if tensors[name] then sd[name] = tensors[name] else missing[#missing + 1] = name end
  end
  if #missing > 0 then
    error(("%s lacks %d tensors the model needs: %s%s"):format(source, #missing,
      table.concat(missing, ", ", 1, math.min(#missing, 8)), #missing > 8 and ", ..." or ""), 3)
  end
  model:load_state_dict(sd)
  return own
end

-- weights: a file (PyTorch .pth, safetensors), a directory of per-tensor .npy files (opts.name_map: file stem ->
-- state_dict key, see dpl.weights.name_map), "random:SEED" (untrained, as torchvision initialises them; the network's
-- `untrained` field is true and it prints as UNTRAINED), or nil for the torchvision checkpoint in the weights
-- directory (an error naming the fetch command if it is missing).
local function resolve_weights(arch, weights)
  if weights == nil or weights == "" or weights == "imagenet" then
    return require("dpl.weights_store").path_for(arch)
  end
  return weights
end

-- ---- the loss network -------------------------------------------------------------------------------------------
local LossNet = class("dpl.LossNet", Module)
M.LossNet = LossNet

function LossNet:__init(arch, layer, opts)
  Module.__init(self)
  opts = opts or {}
  self.arch = arch
  self.layer = layer
  self.index = M.layer_index(arch, layer)
  self.normalize = opts.normalize or "none"
  if self.normalize ~= "none" and self.normalize ~= "imagenet" then
    error("lossnet: normalize must be 'none' or 'imagenet', got " .. tostring(self.normalize), 2)
  end
  self.device = opts.device
  local weights = resolve_weights(arch, opts.weights)
  local seed = type(weights) == "string" and weights:match("^random:(%d+)$")
  if seed then dpl.manual_seed(tonumber(seed)) end
  if opts.name_map and (seed or not require("dpl.weights").is_dir(weights)) then
    error("lossnet: name_map applies to a directory of .npy files, not to " .. tostring(weights), 2)
  end
  local net = M.build(arch, self.index, {device = opts.device})
  self.untrained = seed ~= nil
  self.weights_file = weights
  if not seed then
    local _, names = net:state_dict()
    local W = require "dpl.weights"
    local tensors
    if W.is_dir(weights) then
      tensors = W.load_npy_dir(weights, names, {device = opts.device, name_map = opts.name_map})
    else
      tensors = require("dpl.checkpoint").load_named(weights, names, opts.device)
    end
    load_into(net, tensors, weights)
  end
  self.net = self:add_module("net", net)
  if self.normalize == "imagenet" then
    local dev = {device = opts.device}
    self.mean = dpl.tensor(transforms.IMAGENET_MEAN, dev):reshape(1, 3, 1, 1)
    self.std = dpl.tensor(transforms.IMAGENET_STD, dev):reshape(1, 3, 1, 1)
  end
  if opts.frozen ~= false then self:freeze() end
  if (opts.mode or "eval") == "train" then self:training() else self:evaluate() end
  -- BatchNorms folded into their convolutions (while frozen and evaluating) and ReLUs fused into them: the same
  -- features in fewer passes (dpl.nn.fuse); opts.fuse = false keeps one op per module
  if opts.fuse ~= false then require("dpl.nn.fuse").apply(net, net.extract_list) end
end

-- Loads a name -> tensor table (e.g. from an .npy directory with a name map) into the truncated network.
function LossNet:load_tensors(tensors, source)
  load_into(self.net, tensors, source or "weights")
  self.untrained = false
  return self
end

-- Runs the children 0..upto of the network on x (normalised first when the net was built with normalize =
-- "imagenet"), calling visit(index, h) after each child; an error names the child that failed.
local function run_children(self, x, upto, visit)
  if not (dpl.is_tensor(x) and x:dim() == 4 and x:size(2) == 3) then
    error(("lossnet %s: expected images N x 3 x H x W, got %s"):format(self.arch,
      dpl.is_tensor(x) and tostring(x:size()) or type(x)), 3)
  end
  local h = x
  if self.normalize == "imagenet" then h = (h - self.mean) / self.std end
  local list = self.net.extract_list
  for i = 1, upto + 1 do
    local child = list[i]
    local ok, res = pcall(child.updateOutput, child, h)
    if not ok then
      error(("lossnet %s layer %s: child %d (%s) failed: %s"):format(self.arch, tostring(self.layer), i - 1,
        child.__typename or "?", tostring(res)), 0)
    end
    h = res
    if visit then visit(i - 1, h) end
  end
  return h
end

function LossNet:updateOutput(x) return run_children(self, x, self.index) end

-- The features at several extraction layers in one pass: layers is a list of names (E, S, M, L) or 0-based child
-- indices, none deeper than the network's own layer; returns the list of feature tensors in the same order.
-- Gradients flow to x as in forward; grad mode is the caller's (wrap the call in dpl.no_grad for evaluation).
function LossNet:features(x, layers)
  local want, top = {}, -1
  for k, l in ipairs(layers) do
    local i = M.layer_index(self.arch, l)
    if i > self.index then
      error(("lossnet %s: layer %s (child %d) is deeper than this network's layer %s (child %d)"):format(self.arch,
        tostring(l), i, tostring(self.layer), self.index), 2)
    end
    want[i] = want[i] or {}
    table.insert(want[i], k)
    top = math.max(top, i)
  end
  local out = {}
  run_children(self, x, top, function(i, h)
    for _, k in ipairs(want[i] or {}) do out[k] = h end
  end)
  return out
end

function LossNet:extra_repr()
  return ("%s layer %s (child %d), normalize %s%s"):format(self.arch, tostring(self.layer), self.index, self.normalize,
    self.untrained and ", UNTRAINED weights" or "")
end

-- Convenience: lossnet.new(arch, layer, opts)
function M.new(arch, layer, opts) return LossNet(arch, layer, opts) end

-- Every (arch, layer name) pair in table order: the 56 loss networks.
function M.all()
  local out = {}
  for _, arch in ipairs(M.ORDER) do
    for _, l in ipairs(M.LAYER_NAMES) do out[#out + 1] = {arch = arch, layer = l} end
  end
  return out
end

return M

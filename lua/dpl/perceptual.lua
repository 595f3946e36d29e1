-- dpl.perceptual: deep perceptual distance between images, as in the paper (docs/benchmarks/bapps.md) and as in
-- LPIPS (Zhang et al. 2018).
--
--   local perceptual = require "dpl.perceptual"
--   local d = perceptual.distance(img_a, img_b, {arch = "alexnet", layer = "M"})   -- images 3 x H x W in [0,1]: a number
--   local metric = perceptual.new({arch = "vgg16", layer = {"E", "S"}})             -- reuse one network for many pairs
--   local d = metric:distance(batch_a, batch_b)                                    -- N x 3 x H x W: a tensor of N
--   local lp = perceptual.new({lpips = "alex"})                                     -- LPIPS v0.1 (alex, vgg, squeeze)
--   local map = lp:spatial(img_a, img_b)                                           -- 1 x 1 x H x W, LPIPS(spatial=True)
--   local d = metric(batch_a, batch_b); d:sum():backward()                          -- differentiable (a tensor of N)
--   local crit = perceptual.loss{arch = "vgg16", layer = "E"}                       -- the training loss (see below)
--   local loss = crit(output, target); loss:backward()                             -- gradients reach output only
--
-- Baseline (the paper): ImageNet mean/std normalisation of [0,1] input; at each extraction layer the features are
-- unit-normalised over channels (x / max(||x||, 1e-12), F.normalize), the squared difference is summed over channels
-- and averaged over space; layers are summed. No square root.
-- LPIPS: the input is mapped to [-1,1] and through LPIPS's ScalingLayer (shift -.030,-.088,-.188, scale .458,.448,
-- .450); features are unit-normalised with x / (||x|| + 1e-10); the squared difference is weighted per channel by the
-- learned 1x1 linear layer (lin<k>.model.1.weight in LPIPS's .pth files), summed over channels, averaged over space,
-- and summed over LPIPS's layers.
local dpl = require "dpl"
local lossnet = require "dpl.models.lossnet"

local M = {}

local transforms = require "dpl.data.transforms"
local LPIPS_SHIFT = {-0.030, -0.088, -0.188}
local LPIPS_SCALE = {0.458, 0.448, 0.450}

-- LPIPS backbones: the torchvision architecture and the 0-based `features` children whose outputs LPIPS compares
-- (LPIPS's pretrained_networks.py slices: AlexNet relu1..relu5, VGG-16 relu1_2..relu5_3, SqueezeNet relu1 and fire2..9
-- without fire3's pool).
M.LPIPS = {
  alex = {arch = "alexnet", layers = {1, 4, 7, 9, 11}},
  vgg = {arch = "vgg16", layers = {3, 8, 15, 22, 29}},
  squeeze = {arch = "squeezenet1_1", layers = {1, 4, 7, 9, 10, 11, 12}},
}

-- where LPIPS's linear layers are looked for: $DPL_LPIPS_WEIGHTS, then the weights folder's lpips/ (filled by
-- `dplrun weights/fetch.lua lpips`; lua/dpl/weights_store.lua), then ../shared/data/LPIPS/weights next to the source
-- tree ($DPL_SHARED)
function M.lpips_weights_path(net, version)
  version = version or "0.1"
  local store = require "dpl.weights_store"
  local found, dirs = store.lpips_path(net, version)
  if found then return found end
  local shared = os.getenv("DPL_SHARED") or ((DPL_SOURCE_ROOT or ".") .. "/../shared")
  dirs[#dirs + 1] = shared .. "/data/LPIPS/weights"
  local p = ("%s/v%s/%s.pth"):format(dirs[#dirs], version, net)
  local f = io.open(p, "rb")
  if f then f:close(); return p end
  error(("LPIPS linear weights v%s/%s.pth not found in %s: fetch them with: dplrun weights/fetch.lua lpips (or set "
    .. "DPL_LPIPS_WEIGHTS to the folder holding v0.1/)"):format(version, net, table.concat(dirs, ", ")), 0)
end

local function const(values, device) return dpl.tensor(values, {device = device}):reshape(1, #values, 1, 1) end

local Metric = {}
Metric.__index = Metric

-- opts: arch + layer (a name E/S/M/L, a 0-based child index, or a list of them; summed) for the paper's distance, or
-- lpips = "alex" | "vgg" | "squeeze" (with lpips_version "0.1" | "0.0", lin_weights = a .pth path);
-- weights (backbone checkpoint, "random:SEED", default the torchvision file; name_map for a folder of .npy files, as
-- lossnet.new), device, normalize ("imagenet" default
-- for the baseline, "none" to feed the input as is).
function M.new(opts)
  opts = opts or {}
  local self = setmetatable({device = opts.device}, Metric)
  if opts.lpips then
    local spec = M.LPIPS[opts.lpips]
    if not spec then
      error(("perceptual: unknown LPIPS network '%s' (alex, vgg, squeeze)"):format(tostring(opts.lpips)), 2)
    end
    self.lpips, self.arch, self.indices = opts.lpips, spec.arch, spec.layers
    self.layer_names = spec.layers
    self.lpips_version = opts.lpips_version or "0.1"
    if self.lpips_version ~= "0.1" and self.lpips_version ~= "0.0" then
      error(("perceptual: lpips_version must be \"0.1\" or \"0.0\", got %s"):format(tostring(opts.lpips_version)), 2)
    end
    self.lin_file = opts.lin_weights or M.lpips_weights_path(opts.lpips, self.lpips_version)
    local lin = require("dpl.weights").load(self.lin_file, {device = opts.device})
    self.lin = {}
    for k = 1, #spec.layers do
      local w = lin[("lin%d.model.1.weight"):format(k - 1)]
      if not w then error(("perceptual: %s has no lin%d.model.1.weight"):format(self.lin_file, k - 1), 2) end
      self.lin[k] = w
    end
    -- LPIPS v0.1: [0,1] -> [-1,1] -> (x - shift) / scale, i.e. x * (2 / scale) + (-1 - shift) / scale; v0.0 (the
    -- first release) feeds [-1,1] to the backbone without the ScalingLayer
    local a, b = {}, {}
    for c = 1, 3 do
      if self.lpips_version == "0.0" then a[c], b[c] = 2, -1
      else a[c] = 2 / LPIPS_SCALE[c]; b[c] = (-1 - LPIPS_SHIFT[c]) / LPIPS_SCALE[c] end
    end
    self.in_scale, self.in_shift = const(a, opts.device), const(b, opts.device)
    self.eps_mode = "lpips"
  else
    if not opts.arch then error("perceptual: give opts.arch (and opts.layer) or opts.lpips", 2) end
    self.arch = opts.arch
    local layers = opts.layer or "M"
    if type(layers) ~= "table" then layers = {layers} end
    self.layer_names, self.indices = layers, {}
    for k, l in ipairs(layers) do self.indices[k] = lossnet.layer_index(opts.arch, l) end
    local normalize = opts.normalize or "imagenet"
    if normalize == "imagenet" then
      local a, b = {}, {}
      local mean, std = transforms.IMAGENET_MEAN, transforms.IMAGENET_STD
      for c = 1, 3 do a[c] = 1 / std[c]; b[c] = -mean[c] / std[c] end
      self.in_scale, self.in_shift = const(a, opts.device), const(b, opts.device)
    elseif normalize ~= "none" then
      error("perceptual: normalize must be 'imagenet' or 'none', got " .. tostring(normalize), 2)
    end
    self.eps_mode = "normalize"
  end
  local top = 0
  for _, i in ipairs(self.indices) do top = math.max(top, i) end
  -- the loss network up to the deepest layer, unnormalised (the input transform is done here), eval mode, frozen
  self.net = lossnet.new(self.arch, top, {weights = opts.weights, name_map = opts.name_map, normalize = "none",
                                          device = opts.device})
  self.weights_file = self.net.weights_file
  self.untrained = self.net.untrained
  return self
end

-- The unit-normalised features of a batch (N x 3 x H x W in [0,1]): a list, one tensor per layer. Grad mode is the
-- caller's: gradients flow to x unless the call runs inside dpl.no_grad (the network's weights are frozen).
function Metric:features(x)
  if not (dpl.is_tensor(x) and x:dim() == 4 and x:size(2) == 3) then
    error(("perceptual: expected images N x 3 x H x W, got %s"):format(dpl.is_tensor(x) and tostring(x:size())
      or type(x)), 2)
  end
  local h = x
  if self.in_scale then h = h * self.in_scale + self.in_shift end
  local out = self.net:features(h, self.indices)
  for k, f in ipairs(out) do
    local norm = (f * f):sum(2, true):sqrt()
    if self.eps_mode == "lpips" then norm = norm + 1e-10 else norm = norm:clamp(1e-12) end
    out[k] = f / norm
  end
  return out
end

-- Distance between two lists of normalised features (from :features): a tensor of N.
function Metric:feature_distance(fa, fb)
  local d
  for k = 1, #fa do
    local diff = fa[k] - fb[k]
    local sq = diff * diff
    if self.lin then sq = sq * self.lin[k] end
    local dk = sq:sum(2):mean({2, 3})
    d = d and d + dk or dk
  end
  return d
end

-- The per-pixel distance of two lists of normalised features for images of h x w: N x 1 x h x w, each layer's
-- channel sum (weighted by LPIPS's linear layer) upsampled bilinearly (align_corners = False) to h x w and summed over
-- the layers, as lpips.LPIPS(spatial = True) computes it. Its spatial mean is close to, not equal to, the distance
-- (the layers' maps are averaged at their own resolution there).
function Metric:feature_map(fa, fb, h, w)
  local F = dpl.F
  local d
  for k = 1, #fa do
    local diff = fa[k] - fb[k]
    local sq = diff * diff
    if self.lin then sq = sq * self.lin[k] end
    local mk = F.upsample2d(sq:sum(2, true), {h, w}, "bilinear")
    d = d and d + mk or mk
  end
  return d
end

local function batch_of(x, what)
  if not dpl.is_tensor(x) then error(("perceptual: %s must be a tensor, got %s"):format(what, type(x)), 3) end
  if x:dim() == 3 then return x:unsqueeze(1), true end
  if x:dim() ~= 4 then
    error(("perceptual: %s must be 3 x H x W or N x 3 x H x W, got %s"):format(what, tostring(x:size())), 3)
  end
  return x, false
end

-- the features of a and b (one forward pass for both) and whether the input was a single image
local function pair_features(self, a, b, level)
  local ba, single = batch_of(a, "image a")
  local bb = batch_of(b, "image b")
  if not (ba:size() == bb:size()) then
    error(("perceptual: images of different shapes %s and %s"):format(tostring(ba:size()), tostring(bb:size())),
      level + 1)
  end
  local n = ba:size(1)
  local f = self:features(dpl.cat({ba, bb:to(ba:device())}, 1))
  local fa, fb = {}, {}
  for k, t in ipairs(f) do fa[k] = t:narrow(1, 1, n); fb[k] = t:narrow(1, n + 1, n) end
  return fa, fb, single, ba
end

-- The distance as a tensor, differentiable (grad mode is the caller's, as for any module: gradients reach a and b;
-- the network is frozen): N x 3 x H x W -> a tensor of N; 3 x H x W -> a tensor of 1. metric(a, b) is the same.
-- opts.spatial: the per-pixel map instead (N x 1 x H x W, see feature_map).
function Metric:forward(a, b, opts)
  local fa, fb, _, ba = pair_features(self, a, b, 2)
  if opts and opts.spatial then return self:feature_map(fa, fb, ba:size(3), ba:size(4)) end
  return self:feature_distance(fa, fb)
end
Metric.__call = function(self, a, b, opts) return self:forward(a, b, opts) end

-- Distance between images a and b (3 x H x W -> a number; N x 3 x H x W -> a tensor of N, differentiable as
-- :forward).
function Metric:distance(a, b)
  local fa, fb, single = pair_features(self, a, b, 2)
  local d = self:feature_distance(fa, fb)
  if single then return d:item() end
  return d
end

-- The per-pixel distance map of a and b at their size (3 x H x W -> 1 x 1 x H x W; N x 3 x H x W -> N x 1 x H x W),
-- as lpips.LPIPS(spatial = True).
function Metric:spatial(a, b)
  local fa, fb, _, ba = pair_features(self, a, b, 2)
  return self:feature_map(fa, fb, ba:size(3), ba:size(4))
end

function Metric:describe()
  if self.lpips then
    return ("LPIPS v%s %s (%s, lin %s)"):format(self.lpips_version, self.lpips, self.arch, self.lin_file)
  end
  local names = {}
  for k, l in ipairs(self.layer_names) do names[k] = tostring(l) end
  return ("%s layer %s"):format(self.arch, table.concat(names, "+"))
end

-- perceptual.distance(a, b, opts): a one-off distance; the metric is kept for the next call with the same options.
local cache = {}
function M.distance(a, b, opts)
  opts = opts or {}
  local key = require("dpl.json").encode(opts)
  local m = cache[key]
  if not m then
    m = M.new(opts)
    cache = {[key] = m}    -- keep only the latest network
  end
  return m:distance(a, b)
end

M.Metric = Metric

-- ---- the deep perceptual loss (training) ---------------------------------------------------------------------------
-- perceptual.loss{arch =, layer =, weights =, normalize = false, mode = "eval", device =, name_map =} is the loss the
-- paper's training benchmarks use (docs/benchmarks/superres.md): the mean squared difference between the features of
-- output and target at ONE extraction layer of a frozen loss network, the mean over every element (F.mse_loss).
--   * differentiable: loss:backward() sends the gradient to `output` (and through it to the model that made it); the
--     loss network's parameters are frozen and never get a .grad; the target's features are computed without a graph.
--   * normalize: false (default: the pixels go in as they are, [0,1], as super-resolution and the autoencoders do) or
--     true (ImageNet mean/std first, as delineation does); "none" / "imagenet" are accepted too.
--   * mode: "eval" (default) runs the loss network's batch norm on its running statistics; "train" runs it as the
--     reference delineation and autoencoder code do (their loss network is a submodule of a model in train mode):
--     batch statistics, running statistics updated by every forward (output first, then target), EfficientNet's
--     stochastic depth active. crit:training() / crit:evaluate() switch a "train"-mode criterion like any module (the
--     validation of those benchmarks runs in eval mode on the drifted statistics); an "eval" criterion stays in eval.
-- As a torch/nn criterion: crit:forward(input, target) -> loss (a one-element tensor), crit:backward(input, target) ->
-- d loss / d input (when input was a plain tensor; with autograd, loss:backward() is the usual way).
local class = require "dpl.class"
local Module = require "dpl.nn.Module"
local autograd = require "dpl.autograd"

local PerceptualLoss = class("dpl.PerceptualLoss", Module)
M.PerceptualLoss = PerceptualLoss

local function normalize_opt(v)
  if v == nil or v == false or v == "none" then return "none" end
  if v == true or v == "imagenet" then return "imagenet" end
  error(("perceptual.loss: normalize must be true or false (or \"imagenet\" / \"none\"), got %s"):format(tostring(v)), 4)
end

function PerceptualLoss:__init(opts)
  Module.__init(self)
  if type(opts) ~= "table" then error("perceptual.loss: expected an options table {arch = ..., layer = ...}", 3) end
  for k in pairs(opts) do
    if not ({arch = 1, layer = 1, weights = 1, normalize = 1, mode = 1, device = 1, name_map = 1})[k] then
      error(("perceptual.loss: unknown option '%s' (arch, layer, weights, normalize, mode, device, name_map)"):format(
        tostring(k)), 3)
    end
  end
  if not opts.arch then error("perceptual.loss: give arch (and layer)", 3) end
  if opts.layer == nil then error("perceptual.loss: give layer (E, S, M, L or a child index)", 3) end
  local mode = opts.mode or "eval"
  if mode ~= "eval" and mode ~= "train" then
    error(("perceptual.loss: mode must be \"eval\" or \"train\", got %s"):format(tostring(mode)), 3)
  end
  self.mode = mode
  self.arch, self.layer = opts.arch, opts.layer
  self.net = self:add_module("net", lossnet.new(opts.arch, opts.layer, {weights = opts.weights, name_map = opts.name_map,
    normalize = normalize_opt(opts.normalize), mode = mode, device = opts.device}))
  self.normalize = self.net.normalize
  self.weights_file, self.untrained = self.net.weights_file, self.net.untrained
  self.train = mode == "train"
end

-- train mode reaches the loss network only when the criterion was made with mode = "train"
function PerceptualLoss:training()
  if self.mode == "train" then Module.training(self) end
  return self
end

-- the features (N x 3 x H x W in, the layer's output out), differentiable w.r.t. x
function PerceptualLoss:features(x)
  if not dpl.is_tensor(x) or x:dim() ~= 4 or x:size(2) ~= 3 then
    error(("perceptual.loss %s %s: expected images N x 3 x H x W, got %s"):format(self.arch, tostring(self.layer),
      dpl.is_tensor(x) and tostring(x:size()) or type(x)), 3)
  end
  return self.net:updateOutput(x)
end

function PerceptualLoss:forward(input, target)
  if not dpl.is_tensor(target) or not dpl.is_tensor(input) or not (input:size() == target:size()) then
    error(("perceptual.loss: output and target must be tensors of one shape, got %s and %s"):format(
      dpl.is_tensor(input) and tostring(input:size()) or type(input),
      dpl.is_tensor(target) and tostring(target:size()) or type(target)), 2)
  end
  local x = input
  -- as nn.Module:forward: a plain tensor gets a leaf alias so that backward(input, target) can return its gradient
  if autograd.enabled and not input.requires_grad then
    x = input:detach():requires_grad_()
  elseif input.requires_grad and input.grad_fn then
    input:retain_grad()
  end
  self._input = x
  local fx = self:features(x)
  local ft = dpl.no_grad(function() return self:features(target) end)
  self.output = dpl.F.mse_loss(fx, ft)   -- one node (lua/dpl/nn/functional.lua)
  return self.output
end

PerceptualLoss.__call = function(self, input, target) return self:forward(input, target) end

function PerceptualLoss:backward(input, target)
  if not self.output or not self.output.requires_grad then
    error("perceptual.loss: backward needs a forward run with grad enabled (not inside dpl.no_grad)", 2)
  end
  local x = self._input
  if x and x.grad and not x.grad_fn then x.grad = nil end
  self.output:backward()
  self.gradInput = x and x.grad or nil
  return self.gradInput
end

function PerceptualLoss:extra_repr()
  return ("%s layer %s, feature MSE, normalize %s, mode %s%s"):format(self.arch, tostring(self.layer), self.normalize,
    self.mode, self.untrained and ", UNTRAINED weights" or "")
end

function M.loss(opts) return PerceptualLoss(opts) end

return M

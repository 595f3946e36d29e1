-- dpl.models.autoencoder: the convolutional autoencoder of Benchmark 4 and its MLP probes (docs/benchmarks/
-- autoencoder.md). The autoencoder is the "FourLayerCVAE" of the perceptual-autoencoders code the reference ports,
-- used without its variational part (the code z is mu):
--
--   encoder   4 x [conv 4x4 stride 2 no padding (bias), BatchNorm2d, ReLU], channels 3 -> 32 -> 64 -> 128 -> 256
--             (64 -> 31 -> 14 -> 6 -> 2 for SVHN, 96 -> 47 -> 22 -> 10 -> 4 for STL-10)
--   mu        Linear(256 s^2, 64): the code;  logvar: Linear(256 s^2, 64), unused (kept: the reference's state_dict has it)
--   dense     Linear(64, 1024 g^2), ReLU, reshaped to 1024 x g x g, g = (side - 64) / 16 + 1
--   decoder   transposed convs 1024 -> 128 (5x5) -> 64 (5x5) -> 32 (6x6), each stride 2 + BatchNorm2d + ReLU, then
--             32 -> 3 (6x6, stride 2) + Sigmoid; no padding (1 -> 5 -> 13 -> 30 -> 64, 3 -> 9 -> 21 -> 46 -> 96)
--
--   local ae = require "dpl.models.autoencoder"
--   local net = ae.new({side = 64, seed = 1, device = "cpu"})   -- PyTorch's default initialisation, dpl's seeded stream
--   local rec = net:forward(x)                                   -- N x 3 x 64 x 64 in [0,1] -> the same shape in (0,1)
--   local z = net:encode(x)                                      -- N x 64
--   local mlp = ae.mlp({64, 32})                                 -- 64 -> 64 -> LeakyReLU -> 32 -> LeakyReLU -> 10
--
-- Module names are the reference's (encoder.conv0.weight, encoder.norm0.running_mean, mu.weight, logvar.weight,
-- dense.weight, decoder.conv0.weight, decoder.norm2.bias, ...; tests/ref/autoencoder_ref.py defines the PyTorch
-- module), so that a state_dict of one loads in the other.
local dpl = require "dpl"
local class = require "dpl.class"
local nn = require "dpl.nn"
local Module = nn.Module

local M = {}

M.Z = 64                       -- the code's size (the paper's autoencoders)
M.ENCODER = {3, 32, 64, 128, 256}
M.DECODER = {1024, 128, 64, 32, 3}
M.DECODER_KERNELS = {5, 5, 6, 6}

-- the spatial side after the encoder's four k4 s2 p0 convolutions
local function encoded_side(side)
  for _ = 1, 4 do side = math.floor((side - 4) / 2) + 1 end
  return side
end
M.encoded_side = encoded_side

local Autoencoder = class("autoencoder.Autoencoder", Module)
M.Autoencoder = Autoencoder

-- opts: side (64 or 96; any 64 + 16 n), z (64)
function Autoencoder:__init(opts)
  Module.__init(self)
  opts = opts or {}
  local side = opts.side or 64
  if type(side) ~= "number" or side < 64 or (side - 64) % 16 ~= 0 then
    error(("autoencoder: the image side must be 64 + 16 n (64 for SVHN, 96 for STL-10), got %s"):format(tostring(side)), 3)
  end
  self.side, self.z = side, opts.z or M.Z
  self.g = (side - 64) / 16 + 1
  local enc = nn.Sequential()
  for i = 1, 4 do
    enc:add("conv" .. (i - 1), nn.Conv2d(M.ENCODER[i], M.ENCODER[i + 1], 4, {stride = 2}))
    enc:add("norm" .. (i - 1), nn.BatchNorm2d(M.ENCODER[i + 1]))
    enc:add("acti" .. (i - 1), nn.ReLU())
  end
  self.encoder = self:add_module("encoder", enc)
  local s = encoded_side(side)
  self.flat = M.ENCODER[5] * s * s
  self.mu = self:add_module("mu", nn.Linear(self.flat, self.z))
  self.logvar = self:add_module("logvar", nn.Linear(self.flat, self.z))
  self.dense = self:add_module("dense", nn.Linear(self.z, M.DECODER[1] * self.g * self.g))
  local dec = nn.Sequential()
  for i = 1, 4 do
    dec:add("conv" .. (i - 1), nn.ConvTranspose2d(M.DECODER[i], M.DECODER[i + 1], M.DECODER_KERNELS[i], {stride = 2}))
    if i < 4 then
      dec:add("norm" .. (i - 1), nn.BatchNorm2d(M.DECODER[i + 1]))
      dec:add("acti" .. (i - 1), nn.ReLU())
    else
      dec:add("acti3", nn.Sigmoid())
    end
  end
  self.decoder = self:add_module("decoder", dec)
end

function Autoencoder:check(x)
  if not dpl.is_tensor(x) or x:dim() ~= 4 or x:size(2) ~= 3 or x:size(3) ~= self.side or x:size(4) ~= self.side then
    error(("autoencoder (side %d): expected images N x 3 x %d x %d, got %s"):format(self.side, self.side, self.side,
      dpl.is_tensor(x) and tostring(x:size()) or type(x)), 3)
  end
end

-- the code (mu): N x 3 x side x side -> N x z
function Autoencoder:encode(x)
  self:check(x)
  local h = self.encoder:updateOutput(x)
  return self.mu:updateOutput(h:reshape(h:size(1), self.flat))
end

-- N x z -> N x 3 x side x side in (0, 1)
function Autoencoder:decode(z)
  local y = self.dense:updateOutput(z):relu()
  return self.decoder:updateOutput(y:reshape(y:size(1), M.DECODER[1], self.g, self.g))
end

function Autoencoder:updateOutput(x)
  return self:decode(self:encode(x))
end

function Autoencoder:extra_repr() return ("side %d, z %d"):format(self.side, self.z) end

-- ae.new({side = 64 | 96, z = 64, device = ..., seed = S}): a fresh autoencoder with PyTorch's default initialisation
-- drawn from dpl's global stream (reseeded with opts.seed first: the same seed gives the same weights on every device)
function M.new(opts)
  opts = opts or {}
  if opts.seed then dpl.manual_seed(opts.seed) end
  local net = Autoencoder(opts)
  if opts.device then net:to(opts.device) end
  return net
end

-- ---- the MLP probes ------------------------------------------------------------------------------------------------
-- The seven hidden-layer configurations of the reference, in its order; their names in options, scores and files.
M.MLPS = {{}, {32}, {64}, {32, 32}, {64, 32}, {64, 64}, {128, 128}}

function M.mlp_name(hidden)
  if #hidden == 0 then return "linear" end
  local parts = {}
  for i, h in ipairs(hidden) do parts[i] = tostring(h) end
  return table.concat(parts, "-")
end

-- "linear" (or "[]") -> {}, "64-32" (or "[64,32]") -> {64, 32}; nil for anything else
function M.mlp_hidden(name)
  name = tostring(name)
  if name == "linear" or name == "[]" then return {} end
  local inner = name:match("^%[([%d,]+)%]$")
  local sep = inner and "," or "-"
  inner = inner or name
  if not inner:match("^%d+[%d" .. sep .. "]*$") or inner:find(sep .. sep, 1, true) or inner:sub(-1) == sep then
    return nil
  end
  local hidden = {}
  for w in inner:gmatch("%d+") do
    local n = tonumber(w)
    if n < 1 then return nil end
    hidden[#hidden + 1] = n
  end
  return hidden
end

-- An MLP: inputs -> [Linear, LeakyReLU(0.01)] per hidden size -> Linear(., classes), no output activation; an
-- nn.Sequential, so state_dict names are PyTorch's (0.weight, 2.weight, ...). opts: inputs (64), classes (10), device,
-- seed (reseeds dpl's stream first).
function M.mlp(hidden, opts)
  opts = opts or {}
  if opts.seed then dpl.manual_seed(opts.seed) end
  local sizes = {opts.inputs or M.Z}
  for _, h in ipairs(hidden) do sizes[#sizes + 1] = h end
  local net = nn.Sequential()
  for i = 1, #sizes - 1 do
    net:add(nn.Linear(sizes[i], sizes[i + 1]))
    net:add(nn.LeakyReLU(0.01))
  end
  net:add(nn.Linear(sizes[#sizes], opts.classes or 10))
  if opts.device then net:to(opts.device) end
  return net
end

return M

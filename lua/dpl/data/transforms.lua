-- dpl.data.transforms (also dpl.transforms): image preprocessing that matches the reference implementations
-- numerically. Images are C x H x W (or N x C x H x W) float tensors in [0, 1], as dpl.image.load gives them.
--
--   local tf = require "dpl.data.transforms"          -- also dpl.transforms
--   tf.resize(x, 288)                            -- torchvision Resize(288) on a PIL image: shorter side 288, Pillow
--                                                -- bilinear with antialiasing, 8-bit rounding (bit-identical)
--   tf.resize(x, {72, 72}, {interpolation = "bicubic"})
--   tf.resize(x, 288, {uint8 = false})           -- the same filter on floats (Pillow mode "F"), no rounding
--   tf.gaussian_blur(x, 1)                       -- Pillow ImageFilter.GaussianBlur(1) (bit-identical)
--   tf.center_crop(x, 288)                       -- torchvision CenterCrop (zero padding when the image is smaller)
--   tf.random_crop(x, 224, rng)                  -- rng = tf.rng(seed); returns the crop, top, left (1-based)
--   tf.hflip(x)                                  -- mirror left-right
--   tf.random_hflip(x, rng)                      -- mirrored with probability 0.5; returns the image, flipped?
--   tf.pad_reflect(x, 16)                        -- torchvision Pad(16, padding_mode="reflect")
--   tf.resize_tensor(x, 224)                     -- torchvision F.resize on a tensor: bilinear, no antialias
--   tf.imresize(x, 1/4)                          -- MATLAB imresize(x, 1/4, 'bicubic') on the 8-bit image
--   tf.imresize(x, {h, w}, {uint8 = false})      -- on floats; {symmetric = true} mirrors instead of replicating
--   tf.normalize(x)                              -- torchvision Normalize with ImageNet's mean and std (or given ones)
--
-- Sizes follow torchvision: a number means "shorter side" for resize and a square for crops; a table is {h, w}.
-- uint8 = true (the default for the Pillow and MATLAB functions) treats x as the 8-bit image round(255 x) and returns
-- the 8-bit result / 255, exactly as the reference computes it on 8-bit images. Channels are processed independently
-- (Pillow does the same for L and RGB; for RGBA it would premultiply alpha first, which these functions do not).
local ffi = require "ffi"
local T = require "dpl.tensor"
local spatial = require "dpl.ops.spatial"
local C = require("dpl.ffi").C

local M = {}

local FILTERS = {lanczos = 1, bilinear = 2, bicubic = 3, box = 4}

local function dims(x, fn)
  if not T.is_tensor(x) then error(fn .. ": expected a dpl.Tensor image", 3) end
  local s = x:size()
  if #s < 2 then error(("%s: expected a (..., H, W) image tensor, got shape %s"):format(fn, tostring(s)), 3) end
  return s[#s - 1], s[#s]
end

local function pair(fn, size)
  if type(size) == "number" then return size, size end
  if type(size) == "table" and type(size[1]) == "number" and type(size[2]) == "number" then return size[1], size[2] end
  error(fn .. ": size must be a number or {h, w}", 3)
end

-- torchvision's _compute_resized_output_size for an int size: the shorter side becomes `size`, the longer side
-- int(size * long / short) (truncated).
local function output_size(fn, h, w, size)
  if type(size) == "number" then
    if size < 1 or size ~= math.floor(size) then error(fn .. ": size must be a positive integer", 3) end
    if h <= w then return size, math.floor(size * w / h) end
    return math.floor(size * h / w), size
  end
  return pair(fn, size)
end

local function flag(v, default) if v == nil then return default end return v and 1 or 0 end

-- ImageNet's channel statistics: the input normalisation of every torchvision model, so of every loss network.
M.IMAGENET_MEAN = {0.485, 0.456, 0.406}
M.IMAGENET_STD = {0.229, 0.224, 0.225}

-- (x - mean) / std per channel of a C x H x W or N x C x H x W tensor (torchvision Normalize); ImageNet's by default.
function M.normalize(x, mean, std)
  local dpl = require "dpl"
  mean, std = mean or M.IMAGENET_MEAN, std or M.IMAGENET_STD
  local shape = {#mean, 1, 1}
  if x:dim() == 4 then shape = {1, #mean, 1, 1} end
  local dev = {device = x:device()}
  return (x - dpl.tensor(mean, dev):reshape(shape)) / dpl.tensor(std, dev):reshape(shape)
end

function M.resize(x, size, opts)
  opts = opts or {}
  local h, w = dims(x, "resize")
  local oh, ow = output_size("resize", h, w, size)
  local filter = FILTERS[opts.interpolation or "bilinear"]
  if not filter then error("resize: interpolation must be bilinear, bicubic, box or lanczos", 2) end
  if oh == h and ow == w then return x:clone() end   -- Pillow returns a copy for an unchanged size
  return T.new(C.dpl_image_resize_pil, T.handle(x), oh, ow, filter, flag(opts.uint8, 1))
end

function M.gaussian_blur(x, radius, opts)
  dims(x, "gaussian_blur")
  if type(radius) ~= "number" then error("gaussian_blur: radius must be a number", 2) end
  return T.new(C.dpl_image_gaussian_blur_pil, T.handle(x), radius, flag((opts or {}).uint8, 1))
end

function M.imresize(x, scale_or_size, opts)
  opts = opts or {}
  dims(x, "imresize")
  local sym, u8 = flag(opts.symmetric, 0), flag(opts.uint8, 1)
  if type(scale_or_size) == "number" then
    if not (scale_or_size > 0) then error("imresize: scale must be positive", 2) end
    return T.new(C.dpl_image_resize_matlab, T.handle(x), 0, 0, scale_or_size, sym, u8)
  end
  local oh, ow = pair("imresize", scale_or_size)
  return T.new(C.dpl_image_resize_matlab, T.handle(x), oh, ow, 0, sym, u8)
end

-- Python's round(): halves to even (torchvision's center_crop uses it for the offsets).
local function round_half_even(v)
  local f = math.floor(v)
  local d = v - f
  if d > 0.5 or (d == 0.5 and f % 2 == 1) then return f + 1 end
  return f
end

-- A view of rows top..top+ch-1 and columns left..left+cw-1 (1-based), on the last two dims.
function M.crop(x, top, left, ch, cw)
  local h, w = dims(x, "crop")
  if top < 1 or left < 1 or ch < 1 or cw < 1 or top + ch - 1 > h or left + cw - 1 > w then
    error(("crop: box rows %d..%d, columns %d..%d is outside the %dx%d image"):format(top, top + ch - 1, left,
      left + cw - 1, h, w), 2)
  end
  local nd = x:dim()
  return x:narrow(nd - 1, top, ch):narrow(nd, left, cw)
end

function M.center_crop(x, size)
  local h, w = dims(x, "center_crop")
  local ch, cw = pair("center_crop", size)
  if ch > h or cw > w then   -- torchvision pads with zeros first
    local pl, pt = math.floor(math.max(cw - w, 0) / 2), math.floor(math.max(ch - h, 0) / 2)
    local pr, pb = math.floor((math.max(cw - w, 0) + 1) / 2), math.floor((math.max(ch - h, 0) + 1) / 2)
    x = spatial.pad2d(x, {pl, pr, pt, pb}, "constant", 0)
    h, w = dims(x, "center_crop")
    if ch == h and cw == w then return x end
  end
  local top, left = round_half_even((h - ch) / 2), round_half_even((w - cw) / 2)
  return M.crop(x, top + 1, left + 1, ch, cw)
end

-- ---- a small seeded generator for crop positions and flips (SplitMix64) -------------------------------------------
local Rng = {}
Rng.__index = Rng

function M.rng(seed)
  return setmetatable({state = ffi.new("uint64_t[1]", ffi.cast("uint64_t", seed or 0))}, Rng)
end

function Rng:next_u64()
  local s = self.state
  s[0] = s[0] + 0x9E3779B97F4A7C15ULL
  local z = s[0]
  z = bit.bxor(z, bit.rshift(z, 30)) * 0xBF58476D1CE4E5B9ULL
  z = bit.bxor(z, bit.rshift(z, 27)) * 0x94D049BB133111EBULL
  return bit.bxor(z, bit.rshift(z, 31))
end

-- uniform in [0, 1) with 53 random bits
function Rng:random()
  return tonumber(bit.rshift(self:next_u64(), 11)) / 9007199254740992
end

-- uniform integer in lo..hi (inclusive)
function Rng:randint(lo, hi)
  if hi < lo then error("randint: empty range", 2) end
  return lo + math.floor(self:random() * (hi - lo + 1))
end

function M.random_crop(x, size, rng)
  local h, w = dims(x, "random_crop")
  local ch, cw = pair("random_crop", size)
  if ch > h or cw > w then
    error(("random_crop: crop %dx%d is larger than the %dx%d image"):format(ch, cw, h, w), 2)
  end
  if getmetatable(rng) ~= Rng then error("random_crop: rng must come from dpl.transforms.rng(seed)", 2) end
  local top, left = rng:randint(1, h - ch + 1), rng:randint(1, w - cw + 1)
  return M.crop(x, top, left, ch, cw), top, left
end

-- Mirrors the last dimension (a copy, on the input's device).
function M.hflip(x)
  local h, w = dims(x, "hflip")
  local buf, n = x:contiguous():float_data()
  local out = ffi.new("float[?]", n > 0 and n or 1)
  for row = 0, n / w - 1 do
    local base = row * w
    for j = 0, w - 1 do out[base + j] = buf[base + w - 1 - j] end
  end
  local nd, shape = T.shape_args(x:size())
  return T.new(C.dpl_tensor_from_host, C.dpl_tensor_device(T.handle(x)), nd, shape, out)
end

function M.random_hflip(x, rng, p)
  if getmetatable(rng) ~= Rng then error("random_hflip: rng must come from dpl.transforms.rng(seed)", 2) end
  if rng:random() < (p or 0.5) then return M.hflip(x), true end
  return x, false
end

function M.pad_reflect(x, pad)
  dims(x, "pad_reflect")
  local pads = type(pad) == "number" and {pad, pad, pad, pad} or pad
  return spatial.pad2d(x, pads, "reflect")
end

-- torchvision F.resize on a float tensor without antialias: bilinear, align_corners=False (F.interpolate).
function M.resize_tensor(x, size)
  local h, w = dims(x, "resize_tensor")
  local oh, ow = output_size("resize_tensor", h, w, size)
  return spatial.upsample2d(x, {oh, ow}, "bilinear")
end

return M

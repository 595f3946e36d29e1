-- dpl.image: image files <-> C x H x W float tensors in [0, 1] (runtime/src/io/image.c).
--
--   local image = require "dpl.image"            -- also dpl.image
--   local x = image.load("a.png")                 -- RGB (the default mode), 3 x H x W on the default device
--   local g = image.load("mask.tif", {mode = "L", device = "cpu"})
--   local k = image.load("b.png", {mode = "keep"}) -- the file's own channels (1 L, 2 LA, 3 RGB, 4 RGBA)
--   image.save(x, "out.png")                      -- 8-bit PNG, floor(255 v + 0.5) after clamping to [0, 1]
--
-- PNG, JPEG and TIFF are recognised by content. Values are sample / 255 (sample / 65535 for 16-bit PNGs). "L" and "RGB"
-- convert as Pillow's Image.convert does, so image.load(p) equals ToTensor()(Image.open(p).convert("RGB")) exactly.
local dffi = require "dpl.ffi"
local T = require "dpl.tensor"
local C = dffi.C

local M = {}

local MODES = {keep = 0, L = 1, RGB = 3}

function M.load(path, opts)
  opts = opts or {}
  if type(path) ~= "string" then error("dpl.image.load: path must be a string, got " .. type(path), 2) end
  local mode = opts.mode or "RGB"
  local channels = MODES[mode]
  if not channels then error(("dpl.image.load: mode must be \"RGB\", \"L\" or \"keep\", got %q"):format(tostring(mode)), 2) end
  return T.new(C.dpl_image_load, T.resolve_device(opts.device), path, channels)
end

function M.save(t, path)
  if type(path) ~= "string" then error("dpl.image.save: path must be a string, got " .. type(path), 2) end
  dffi.check(C.dpl_image_save(T.handle(t, "dpl.image.save"), path), 2)
end

return M

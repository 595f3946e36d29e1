-- examples/compare.lua - the perceptual distance between an image and one or more others.
--   dplrun examples/compare.lua A.png B.png [C.png ...] [--arch alexnet] [--layer M] [--lpips] [--weights FILE|DIR]
-- Prints one line per other image: "<distance>  A.png  B.png". The distance is the paper's (docs/benchmarks/bapps.md:
-- ImageNet normalisation, unit-normalised features, squared difference summed over channels, averaged over space) at
-- the chosen layer, or LPIPS v0.1 with --lpips (alexnet, vgg16 or squeezenet1_1). Images are read as RGB in [0,1] and
-- must have the same size. 0 means identical features; larger is more different.
local argparse = require "argparse"
local dpl = require "dpl"
local lossnet = require "dpl.models.lossnet"
local perceptual = require "dpl.perceptual"

local parser = argparse("dplrun examples/compare.lua", "Perceptual distance between images.")
parser:argument("a", "Reference image.")
parser:argument("others", "Images to compare with it."):args("+")
parser:option("--arch", "Architecture: " .. table.concat(lossnet.ORDER, ", "), "alexnet")
parser:option("--layer", "Extraction layer(s): E, S, M, L, or several joined with + (summed).", "M")
parser:flag("--lpips", "LPIPS v0.1 (alexnet, vgg16 or squeezenet1_1 backbones).")
parser:option("--weights", "Backbone checkpoint (.pth, .safetensors) or folder of .npy files (default: the " ..
  "torchvision file in weights/; dplrun weights/fetch.lua ARCH fetches it).")
parser:option("--name-map", "Name map for a folder of .npy weights (e.g. gluon_squeezenet1_1).")
parser:option("--device", "cpu, vulkan or vulkan:N (default: dplrun's choice).")
local args = parser:parse(arg)

local LPIPS_OF = {alexnet = "alex", vgg16 = "vgg", squeezenet1_1 = "squeeze"}
local function fail(msg)
  io.stderr:write("compare.lua: ", msg, "\n")
  os.exit(1)
end

if args.device then dpl.device(args.device) end
local opts = {weights = args.weights, name_map = args.name_map, device = args.device}
if args.lpips then
  opts.lpips = LPIPS_OF[args.arch]
  if not opts.lpips then fail("--lpips needs --arch alexnet, vgg16 or squeezenet1_1, not " .. args.arch) end
else
  opts.arch = args.arch
  local layers = {}
  for l in args.layer:gmatch("[^+,%s]+") do layers[#layers + 1] = l end
  opts.layer = #layers == 1 and layers[1] or layers
end

local ok, metric = pcall(perceptual.new, opts)
if not ok then fail(tostring(metric)) end
if metric.untrained then io.stderr:write("compare.lua: UNTRAINED weights (", tostring(args.weights), ")\n") end
local image = require "dpl.image"
local function load(path)
  local ok_load, img = pcall(image.load, path, {mode = "RGB", device = args.device})
  if not ok_load then fail(tostring(img)) end
  return img
end

local a = load(args.a)
for _, path in ipairs(args.others) do
  local b = load(path)
  if not (a:size() == b:size()) then
    fail(("%s is %s but %s is %s: the images must have the same size"):format(args.a, tostring(a:size()), path,
      tostring(b:size())))
  end
  print(("%.6f  %s  %s"):format(metric:distance(a, b), args.a, path))
end
io.stderr:write("compare.lua: ", metric:describe(), "\n")

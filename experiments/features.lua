-- experiments/features.lua - the features of one loss network for a float32 N x 3 x H x W array, as a float32 .npy.
--   dplrun experiments/features.lua --arch vgg16 --layer M --weights weights/vgg16-397923af.pth \
--          --input in.npy --out out.npy [--device cpu] [--normalize none|imagenet]
-- Evaluation mode, frozen weights, no normalisation by default. Other tools and tests rely on exactly this interface.
local argparse = require "argparse"
local dpl = require "dpl"
local lossnet = require "dpl.models.lossnet"

local parser = argparse("dplrun experiments/features.lua", "Extract loss-network features from an .npy array.")
parser:option("--arch", "Architecture: " .. table.concat(lossnet.ORDER, ", ")):count(1)
parser:option("--layer", "Extraction layer: E, S, M, L or a 0-based child index."):count(1)
parser:option("--weights", "Checkpoint (.pth or .safetensors), a directory of .npy files (see --name-map), or " ..
  "random:SEED for untrained weights "
  .. "(default: the torchvision file in weights/).")
parser:option("--name-map", "For a --weights directory of per-tensor .npy files: a built-in map name " ..
  "(gluon_squeezenet1_1) or a text file of 'file_stem state_dict_key' lines.")
parser:option("--input", "Input .npy (N x 3 x H x W, any numeric dtype, read as float32)."):count(1)
parser:option("--out", "Output .npy (float32 features)."):count(1)
parser:option("--device", "cpu, vulkan or vulkan:N (default: dplrun's choice).")
parser:option("--normalize", "Input normalisation: none or imagenet.", "none"):choices({"none", "imagenet"})
local args = parser:parse(arg)

if args.device then dpl.device(args.device) end
local net = lossnet.new(args.arch, args.layer, {weights = args.weights, normalize = args.normalize,
                                                 name_map = args.name_map})
if net.untrained then io.stderr:write("features.lua: UNTRAINED weights (", args.weights, ")\n") end
local x = dpl.load_npy(args.input)
local f = dpl.no_grad(function() return net:forward(x) end)
f:save_npy(args.out)
io.stderr:write(("features.lua: %s layer %s -> %s %s\n"):format(args.arch, args.layer, tostring(f:size()), args.out))

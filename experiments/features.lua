-- experiments/features.lua - the features of a loss network at one or more layers, in one pass, for images, folders
-- of images or a float32 N x 3 x H x W .npy array.
--   dplrun experiments/features.lua --arch vgg16 --layer M --input in.npy --out out.npy      one layer, one .npy
--   dplrun experiments/features.lua --arch vgg16 --layer E,S,M,L --input imgs/ --out f.safetensors --normalize imagenet
--   dplrun experiments/features.lua --arch resnet50 --layer layer4,avgpool --input a.png b.png --out feats/
-- Evaluation mode, frozen weights; the input is fed as it is (--normalize none, the default) or standardised with
-- ImageNet's mean and std (--normalize imagenet, what ImageNet-trained networks expect of [0,1] images). Images are
-- read as RGB in [0,1], in the order given (a folder's files sorted by name); they must share one size unless
-- --resize HxW. Several layers are separate outputs: one tensor per layer, named by the layer (E, S, M, L or the
-- torchvision module name), in one .safetensors file (its metadata holds the configuration) or one LAYER.npy per
-- layer in a folder; one layer may go to a single .npy file. --json writes the configuration (weights and SHA-256
-- or UNTRAINED random:SEED, the inputs in order, shapes, dpl version and commit, device, date).
local dpl = require "dpl"
local cli = require "dpl.cli"
local json = require "dpl.json"
local lossnet = require "dpl.models.lossnet"

local NAME = "features.lua"
local parser = cli.parser("experiments/features.lua",
  "Extract loss-network features (one or more layers in one pass) from images, folders or an .npy array.",
  "Layers: E, S, M, L (any case), a 0-based child index, a torchvision module name (features.29, layer4), a comma " ..
  "list, or all (= E,S,M,L). Several layers are separate outputs (one tensor per layer, named), never summed.")
parser:option("--arch", "Architecture: " .. table.concat(lossnet.ORDER, ", ")):count(1)
parser:option("--layer", "Extraction layer(s), see below."):count(1)
parser:option("--weights", "Checkpoint (.pth or .safetensors), a directory of .npy files (see --name-map), or " ..
  "random:SEED for untrained weights (default: the torchvision file in the weights folder).")
parser:option("--name-map", "For a --weights directory of per-tensor .npy files: a built-in map name " ..
  "(gluon_squeezenet1_1) or a text file of 'file_stem state_dict_key' lines.")
parser:option("--input", "Inputs: an .npy (N x 3 x H x W, any numeric dtype, read as float32), image files " ..
  "(PNG, JPEG, TIFF) or folders of them."):args("+"):count(1)
parser:option("--out", "Output: FILE.safetensors (one tensor per layer), FILE.npy (one layer), or a folder " ..
  "(LAYER.npy per layer; created if missing)."):count(1)
parser:option("--json", "Also write the configuration, inputs and output shapes to this JSON file.")
parser:option("--device", "cpu, vulkan or vulkan:N (default: dplrun's choice).")
parser:option("--normalize", "Input normalisation: none or imagenet.", "none"):choices({"none", "imagenet"})
parser:option("--resize", "Resize every image to HxW (or N x N) first (bilinear, as Pillow).")
parser:option("--batch", "Images per forward pass.", "16")

local IMAGE = {png = true, jpg = true, jpeg = true, tif = true, tiff = true}

cli.main(NAME, function()
  local args = cli.parse(parser)
  if not lossnet.ARCHS[args.arch] then
    cli.fail("--arch %s: unknown architecture (known: %s)", args.arch, table.concat(lossnet.ORDER, ", "))
  end
  local ok, layers = pcall(lossnet.parse_layers, args.layer, {args.arch})
  if not ok then cli.fail("%s", cli.message(layers)) end
  local labels, seen = {}, {}
  for k, l in ipairs(layers) do
    labels[k] = lossnet.layer_label(args.arch, l)
    if seen[labels[k]] then cli.fail("--layer %s: %s is given twice", args.layer, labels[k]) end
    seen[labels[k]] = true
  end
  local batch = tonumber(args.batch)
  if not batch or batch < 1 or batch ~= math.floor(batch) then cli.fail("--batch %s: must be a positive integer", args.batch) end
  local resize = cli.size(args.resize, "--resize")
  if args.weights and not args.weights:match("^random:%d+$") and not cli.exists(args.weights) then
    cli.fail("--weights %s: no such file or folder", args.weights)
  end
  if args.name_map and not (args.weights and cli.is_dir(args.weights)) then
    cli.fail("--name-map applies to a --weights folder of .npy files")
  end

  -- the inputs: one .npy, or image files and folders
  local npy, images = nil, {}
  for _, p in ipairs(args.input) do
    if cli.is_dir(p) then
      local ls = io.popen("ls -1A -- '" .. p:gsub("'", "'\\''") .. "'")
      local found = {}
      for n in ls:lines() do if IMAGE[cli.extension(n)] then found[#found + 1] = n end end
      ls:close()
      table.sort(found)
      if #found == 0 then cli.fail("--input %s: no PNG, JPEG or TIFF files in this folder", p) end
      for _, n in ipairs(found) do images[#images + 1] = p .. "/" .. n end
    elseif cli.extension(p) == "npy" then
      cli.input_file(p, "--input")
      if npy or #args.input > 1 then cli.fail("--input %s: an .npy array goes alone (not with other inputs)", p) end
      npy = p
    elseif IMAGE[cli.extension(p)] then
      images[#images + 1] = cli.input_file(p, "--input")
    else
      cli.input_file(p, "--input")
      cli.fail("--input %s: not an .npy, an image (PNG, JPEG, TIFF) or a folder", p)
    end
  end
  if npy and resize then cli.fail("--resize applies to images, not to an .npy array") end

  -- the output, checked before the work
  local out_kind
  local ext = cli.extension(args.out)
  if ext == "safetensors" then
    cli.output(args.out, "--out", {"safetensors"}); out_kind = "safetensors"
  elseif ext == "npy" then
    if #layers > 1 then
      cli.fail("--out %s: %d layers need FILE.safetensors or a folder (one .npy per layer)", args.out, #layers)
    end
    cli.output(args.out, "--out", {"npy"}); out_kind = "npy"
  elseif ext == "" or cli.is_dir(args.out) then
    cli.output_dir(args.out, "--out", {create = true}); out_kind = "folder"
  else
    cli.fail("--out %s: give FILE.safetensors, FILE.npy or a folder", args.out)
  end
  cli.output(args.json, "--json")

  -- the batches of input
  local image = require "dpl.image"
  local transforms = require "dpl.data.transforms"
  local first_size
  local function load_image(path)
    local ok_l, img = pcall(image.load, path, {mode = "RGB", device = "cpu"})
    if not ok_l then cli.fail("--input %s: %s", path, cli.message(img)) end
    if resize and (img:size(2) ~= resize[1] or img:size(3) ~= resize[2]) then
      img = transforms.resize(img, resize, {interpolation = "bilinear"})
    end
    local s = img:size()
    if not first_size then first_size = {s[2], s[3], images[1]}
    elseif s[2] ~= first_size[1] or s[3] ~= first_size[2] then
      cli.fail("--input %s is %dx%d (WxH) but %s is %dx%d: images must share one size (or give --resize HxW)", path,
        s[3], s[2], first_size[3], first_size[2], first_size[1])
    end
    return img
  end
  local x_all, n
  if npy then
    x_all = cli.try_as("--input " .. npy, dpl.load_npy, npy)
    if x_all:dim() ~= 4 or x_all:size(2) ~= 3 then
      cli.fail("--input %s: expected an N x 3 x H x W array, got %s", npy, tostring(x_all:size()))
    end
    n = x_all:size(1)
  else
    n = #images
    for _, p in ipairs(images) do load_image(p) end   -- every file readable and of one size before the work
  end

  local device = cli.device(args.device)
  local deepest, top = nil, -1   -- the network is built up to the deepest layer asked for
  for _, l in ipairs(layers) do
    local i = lossnet.layer_index(args.arch, l)
    if i > top then deepest, top = l, i end
  end
  local net = cli.try(lossnet.new, args.arch, deepest, {weights = args.weights, normalize = args.normalize,
                                                        name_map = args.name_map, device = device})
  if net.untrained then io.stderr:write(NAME, ": UNTRAINED weights (", args.weights, ")\n") end
  if #images > 0 and args.normalize == "none" then
    io.stderr:write(NAME, ": note: images go in as [0,1] RGB without normalisation; ImageNet-trained networks " ..
      "expect --normalize imagenet\n")
  end


  local outs = {}
  local bar = n > batch and require("dpl.progress").new({total = n, label = args.arch, unit = "img"}) or nil
  for s = 1, n, batch do
    local m = math.min(batch, n - s + 1)
    local x
    if npy then x = x_all:narrow(1, s, m)
    else
      local list = {}
      for k = s, s + m - 1 do list[#list + 1] = load_image(images[k]):unsqueeze(1) end
      x = dpl.cat(list, 1)
    end
    local f = dpl.no_grad(function() return net:features(x:to(device), layers) end)
    for k = 1, #layers do
      outs[k] = outs[k] or {}
      outs[k][#outs[k] + 1] = f[k]:to("cpu")
    end
    if bar then bar:update(m) end
  end
  if bar then bar:finish() end
  local tensors, shapes = {}, {}
  for k, l in ipairs(labels) do
    tensors[l] = #outs[k] == 1 and outs[k][1] or dpl.cat(outs[k], 1)
    shapes[l] = json.array(tensors[l]:size())
  end

  local weights = net.weights_file
  local config = {arch = args.arch, layers = labels, normalize = args.normalize,
                  weights = cli.weights_info(weights, args.arch, args.name_map), untrained = net.untrained or nil,
                  inputs = npy and {npy = npy} or images, resize = resize and json.array({resize[1], resize[2]}) or nil,
                  shapes = shapes, mode = "eval"}
  for k, v in pairs(cli.provenance()) do config[k] = v end
  local written = {}
  if out_kind == "safetensors" then
    cli.try_as("--out " .. args.out, require("dpl.checkpoint").save_tensors, args.out, tensors, labels,
      {dpl_config = json.encode(config)})
    written[1] = args.out
  elseif out_kind == "npy" then
    tensors[labels[1]]:save_npy(args.out)
    written[1] = args.out
  else
    for _, l in ipairs(labels) do
      local p = ("%s/%s.npy"):format(args.out:gsub("/+$", ""), l)
      tensors[l]:save_npy(p)
      written[#written + 1] = p
    end
  end
  if args.json then cli.write_file(args.json, json.encode(config, {indent = "  "}) .. "\n", "--json") end
  for k, l in ipairs(labels) do
    io.stderr:write(("%s: %s layer %s (%s) -> %s %s\n"):format(NAME, args.arch, l,
      lossnet.layer_module(args.arch, lossnet.layer_index(args.arch, l)) or "?", tostring(tensors[l]:size()),
      written[out_kind == "folder" and k or 1]))
  end
end)

-- examples/distance.lua - perceptual distances between images: the paper's distance with any of the 56 loss networks,
-- or LPIPS (v0.1 / v0.0), for two images, two folders paired by file name, or every pair within one folder; what
-- lpips_2imgs.py, lpips_2dirs.py, lpips_1dir_allpairs.py and `pyiqa lpips -t DIR -r DIR` do.
--   dplrun examples/distance.lua A.png B.png [C.png ...]               A against each of the others
--   dplrun examples/distance.lua --dir0 DIR0 --dir1 DIR1 --out d.csv   the files of DIR0 against the same names in DIR1
--   dplrun examples/distance.lua --dir DIR --all-pairs --out d.json    every unordered pair of DIR's images
--   dplrun examples/distance.lua A.png B.png --lpips alex --spatial map.png   LPIPS v0.1 and its per-pixel map
-- The distance (docs/benchmarks/bapps.md) of images read as RGB in [0,1]: ImageNet normalisation, unit-normalised
-- features, squared difference summed over channels and averaged over space, summed over the --layer list; or LPIPS
-- with its learned linear layers (--lpips). 0 means identical features. Sizes: the two images of a pair must have the
-- same size (any size, non-square too) unless --resize gives one size for all. Output: one line per pair on stdout,
-- and --out FILE as CSV (columns a,b,distance) or JSON ({"config": {...}, "pairs": [{"a", "b", "distance"}]}) by its
-- extension. --spatial writes the per-pixel distance map (lpips.LPIPS(spatial=True)) as a heat-map PNG and an .npy.
local dpl = require "dpl"
local cli = require "dpl.cli"
local json = require "dpl.json"
local lossnet = require "dpl.models.lossnet"
local perceptual = require "dpl.perceptual"

local NAME = "distance.lua"
local LPIPS_NETS = {alex = true, vgg = true, squeeze = true}

local parser = cli.parser("examples/distance.lua",
  "Perceptual distance between images (the paper's distance with any loss network, or LPIPS).",
  "Layers (--layer): E, S, M, L (any case), a 0-based child index, a torchvision module name (features.29, layer4), " ..
  "a comma list of them, or all (= E,S,M,L); the distances of several layers are summed. Images: PNG, JPEG, TIFF. " ..
  "Sizes: a pair must have one size unless --resize HxW (bilinear, as Pillow) is given.")
parser:argument("images", "Two or more images: the first against each of the others."):args("*")
parser:option("--dir0", "Folder of images, paired by file name with --dir1.")
parser:option("--dir1", "Second folder (with --dir0).")
parser:option("--dir", "One folder (with --all-pairs).")
parser:flag("--all-pairs", "Every unordered pair of the images in --dir.")
parser:option("--arch", "Loss network architecture: " .. table.concat(lossnet.ORDER, ", ") .. " (default alexnet).")
parser:option("--layer", "Extraction layer(s), summed (default M).")
parser:option("--lpips", "LPIPS instead of the paper's distance: alex, vgg or squeeze (its own layers, [-1,1] input " ..
  "and learned linear weights)."):choices({"alex", "vgg", "squeeze"})
parser:option("--lpips-version", "LPIPS version: 0.1 (default) or 0.0.")
parser:option("--weights", "Backbone checkpoint (.pth, .safetensors), a folder of .npy files (with --name-map), or " ..
  "random:SEED (untrained). Default: the torchvision file in the weights folder.")
parser:option("--name-map", "For a --weights folder of .npy files: a built-in map (gluon_squeezenet1_1) or a file " ..
  "of 'file_stem state_dict_key' lines.")
parser:option("--device", "cpu, vulkan or vulkan:N (default: dplrun's choice).")
parser:option("--resize", "Resize every image to this size first: HxW (e.g. 64x64) or N (N x N).")
parser:option("--out", "Write the pairs to this file: .csv (a,b,distance) or .json (config and pairs).")
parser:option("--spatial", "Per-pixel distance maps: with two images a PNG file (the .npy goes next to it); with " ..
  "several pairs a folder (A__B.png and A__B.npy per pair).")
parser:option("--digits", "Digits printed after the point on stdout (files get every digit the value has).", "6")

cli.main(NAME, function()
  local args = cli.parse(parser)

  -- ---- the mode and its inputs ----
  local mode
  if args.dir0 or args.dir1 then
    if not (args.dir0 and args.dir1) then cli.fail("--dir0 and --dir1 go together (two folders paired by file name)") end
    mode = "dirs"
  elseif args.dir then
    if not args.all_pairs then cli.fail("--dir needs --all-pairs (or use --dir0 A --dir1 B for two folders)") end
    mode = "allpairs"
  elseif args.all_pairs then
    cli.fail("--all-pairs needs --dir DIR")
  else
    mode = "images"
  end
  if mode ~= "images" and #args.images > 0 then
    cli.fail("image arguments (%s) and --dir/--dir0 do not go together", args.images[1])
  end
  if mode == "images" and #args.images < 2 then
    cli.fail("give two images (A.png B.png), --dir0 A --dir1 B, or --dir A --all-pairs (see --help)")
  end
  -- flags that would have no effect are errors, not silently ignored
  if args.lpips then
    if args.layer then cli.fail("--layer has no effect with --lpips (LPIPS uses its own layers): drop it") end
    if args.arch and args.arch ~= perceptual.LPIPS[args.lpips].arch then
      cli.fail("--arch %s does not go with --lpips %s (its backbone is %s): drop --arch", args.arch, args.lpips,
        perceptual.LPIPS[args.lpips].arch)
    end
  elseif args.lpips_version then
    cli.fail("--lpips-version goes with --lpips alex|vgg|squeeze")
  end
  if args.lpips_version and args.lpips_version ~= "0.1" and args.lpips_version ~= "0.0" then
    cli.fail("--lpips-version %s: must be 0.1 or 0.0", args.lpips_version)
  end
  if args.name_map and not (args.weights and cli.is_dir(args.weights)) then
    cli.fail("--name-map applies to a --weights folder of .npy files%s", args.weights and
      (": " .. args.weights .. " is not a folder") or "")
  end
  local digits = tonumber(args.digits)
  if not digits or digits < 0 or digits > 17 or digits ~= math.floor(digits) then
    cli.fail("--digits %s: must be an integer 0..17", tostring(args.digits))
  end
  local resize = cli.size(args.resize, "--resize")
  local arch = args.lpips and perceptual.LPIPS[args.lpips].arch or (args.arch or "alexnet")
  if not lossnet.ARCHS[arch] then
    cli.fail("--arch %s: unknown architecture (known: %s)", arch, table.concat(lossnet.ORDER, ", "))
  end
  local layers
  if not args.lpips then
    local ok, l = pcall(lossnet.parse_layers, args.layer or "M", {arch})
    if not ok then cli.fail("%s", cli.message(l)) end
    layers = l
  end
  if args.weights and not args.weights:match("^random:%d+$") and not cli.exists(args.weights) then
    cli.fail("--weights %s: no such file or folder", args.weights)
  end

  -- the pairs: {a = label, b = label, pa = path, pb = path}
  local IMAGE = {png = true, jpg = true, jpeg = true, tif = true, tiff = true}
  local function images_in(dir, opt)
    if not cli.is_dir(dir) then cli.fail("%s %s: no such folder", opt, dir) end
    local p = io.popen("ls -1A -- '" .. dir:gsub("'", "'\\''") .. "'")
    local out = {}
    for n in p:lines() do if IMAGE[cli.extension(n)] then out[#out + 1] = n end end
    p:close()
    table.sort(out)
    if #out == 0 then cli.fail("%s %s: no PNG, JPEG or TIFF files in it", opt, dir) end
    return out
  end
  local pairs_ = {}
  if mode == "images" then
    for i, p in ipairs(args.images) do cli.input_file(p, i == 1 and "image" or "image") end
    for i = 2, #args.images do
      pairs_[#pairs_ + 1] = {a = args.images[1], b = args.images[i], pa = args.images[1], pb = args.images[i]}
    end
  elseif mode == "dirs" then
    local n0, n1 = images_in(args.dir0, "--dir0"), images_in(args.dir1, "--dir1")
    local in1 = {}
    for _, n in ipairs(n1) do in1[n] = true end
    local only0 = {}
    for _, n in ipairs(n0) do
      if in1[n] then pairs_[#pairs_ + 1] = {a = n, b = n, pa = args.dir0 .. "/" .. n, pb = args.dir1 .. "/" .. n}
      else only0[#only0 + 1] = n end
    end
    if #pairs_ == 0 then
      cli.fail("--dir0 %s and --dir1 %s have no image file name in common (pairs are made by file name)", args.dir0,
        args.dir1)
    end
    local unmatched = #only0 + #n1 - #pairs_
    if unmatched > 0 then
      io.stderr:write(("%s: %d file(s) without a namesake in the other folder left out%s\n"):format(NAME, unmatched,
        #only0 > 0 and (" (e.g. " .. only0[1] .. ")") or ""))
    end
  else
    local names = images_in(args.dir, "--dir")
    if #names < 2 then cli.fail("--dir %s: needs at least two images for --all-pairs", args.dir) end
    for i = 1, #names do
      for j = i + 1, #names do
        pairs_[#pairs_ + 1] = {a = names[i], b = names[j], pa = args.dir .. "/" .. names[i],
                               pb = args.dir .. "/" .. names[j]}
      end
    end
  end

  -- outputs are checked before the work
  local out_ext = cli.output(args.out, "--out", {"csv", "json"})
  local spatial_file
  if args.spatial then
    if #pairs_ == 1 then
      cli.output(args.spatial, "--spatial", {"png"})
      spatial_file = args.spatial
    else
      cli.output_dir(args.spatial, "--spatial", {create = true})
    end
  end

  local device = cli.device(args.device)
  local function size_error(pa, sa, pb, sb)
    cli.fail("%s is %dx%d (WxH) but %s is %dx%d: a pair must have one size (or give --resize HxW)", pa, sa[3], sa[2],
      pb, sb[3], sb[2])
  end
  local image = require "dpl.image"
  local transforms = require "dpl.data.transforms"
  local cache = {}
  local function load(path)
    if cache[path] then return cache[path] end
    local ok, img = pcall(image.load, path, {mode = "RGB", device = "cpu"})
    if not ok then cli.fail("%s: %s", path, cli.message(img)) end
    if resize and (img:size(2) ~= resize[1] or img:size(3) ~= resize[2]) then
      img = transforms.resize(img, resize, {interpolation = "bilinear"})
    end
    img = img:to(device)
    if mode ~= "dirs" then cache[path] = img end
    return img
  end
  -- ---- the metric ----
  local opts = {weights = args.weights, name_map = args.name_map, device = device}
  if args.lpips then
    opts.lpips, opts.lpips_version = args.lpips, args.lpips_version or "0.1"
  else
    opts.arch, opts.layer = arch, #layers == 1 and layers[1] or layers
  end
  if mode == "images" then   -- a few files: their sizes are checked before the network is built
    local first = load(pairs_[1].pa)
    for _, p in ipairs(pairs_) do
      local b = load(p.pb)
      if not (first:size() == b:size()) then size_error(p.pa, first:size(), p.pb, b:size()) end
    end
  end
  local metric = cli.try(perceptual.new, opts)
  io.stderr:write(("%s: %s on %s%s, %d pair(s)\n"):format(NAME, metric:describe(), dpl.device_banner(),
    metric.untrained and (" -- UNTRAINED weights (" .. args.weights .. ")") or "", #pairs_))

  -- in --all-pairs mode each image's features are computed once
  local feats = {}
  local function features_of(path)
    if not feats[path] then
      local img = load(path)
      feats[path] = {f = dpl.no_grad(metric.features, metric, img:unsqueeze(1)), size = img:size()}
    end
    return feats[path]
  end

  local function heatmap(map, png)
    local h, w = map:size(3), map:size(4)
    map:reshape(1, 1, h, w):save_npy((png:gsub("%.[Pp][Nn][Gg]$", "")) .. ".npy")
    -- viridis-like colours from 0 (dark blue) to the map's maximum (yellow)
    local stops = {{0.267, 0.005, 0.329}, {0.231, 0.322, 0.545}, {0.129, 0.569, 0.549}, {0.369, 0.788, 0.384},
                   {0.992, 0.906, 0.145}}
    local buf, n = map:to("cpu"):float_data()
    local top = 0
    for i = 0, n - 1 do if buf[i] > top then top = buf[i] end end
    local rgb = require("ffi").new("float[?]", 3 * n)
    for i = 0, n - 1 do
      local v = top > 0 and math.max(buf[i], 0) / top or 0
      local x = v * (#stops - 1)
      local k = math.min(math.floor(x), #stops - 2)
      local f = x - k
      for c = 1, 3 do rgb[(c - 1) * n + i] = stops[k + 1][c] * (1 - f) + stops[k + 2][c] * f end
    end
    image.save(dpl.from_pointer(rgb, {3, h, w}), png)
    return top
  end

  local function stem(name) return (name:match("([^/]+)$"):gsub("%.[^.]+$", "")) end

  -- ---- the work ----
  local bar = #pairs_ > 1 and require("dpl.progress").new({total = #pairs_, label = "pairs", unit = "pair"}) or nil
  local rows = {}
  for _, p in ipairs(pairs_) do
    local d, map
    if mode == "allpairs" and not args.spatial then
      local fa, fb = features_of(p.pa), features_of(p.pb)
      if not (fa.size == fb.size) then size_error(p.pa, fa.size, p.pb, fb.size) end
      d = dpl.no_grad(metric.feature_distance, metric, fa.f, fb.f):item()
    else
      local a, b = load(p.pa), load(p.pb)
      local sa = a:size()
      if not (sa == b:size()) then size_error(p.pa, sa, p.pb, b:size()) end
      dpl.no_grad(function()
        local f = metric:features(dpl.cat({a:unsqueeze(1), b:unsqueeze(1)}, 1))
        local fa, fb = {}, {}
        for k, t in ipairs(f) do fa[k] = t:narrow(1, 1, 1); fb[k] = t:narrow(1, 2, 1) end
        d = metric:feature_distance(fa, fb):item()
        if args.spatial then map = metric:feature_map(fa, fb, sa[2], sa[3]) end
      end)
    end
    d = json.float32(d)
    local row = {a = p.a, b = p.b, distance = d}
    if map then
      local png = spatial_file or ("%s/%s__%s.png"):format(args.spatial, stem(p.a), stem(p.b))
      row.spatial = png
      row.spatial_max = json.float32(heatmap(map, png))
    end
    rows[#rows + 1] = row
    if bar then bar:update(1) end
    if not (bar and args.out) then print(("%." .. digits .. "f  %s  %s"):format(d, p.a, p.b)) end
  end
  if bar then bar:finish() end

  -- ---- outputs ----
  if args.out then
    local text
    if out_ext == "csv" then
      local function cell(s)
        s = tostring(s)
        if s:find('[,"\r\n]') then s = '"' .. s:gsub('"', '""') .. '"' end
        return s
      end
      local lines = {"a,b,distance"}
      for _, r in ipairs(rows) do lines[#lines + 1] = cell(r.a) .. "," .. cell(r.b) .. "," .. json.number_text(r.distance) end
      text = table.concat(lines, "\n") .. "\n"
    else
      local config = {
        distance = args.lpips and ("lpips-v" .. metric.lpips_version) or "normalized-sq-l2 (the paper's)",
        arch = arch, lpips = args.lpips, layers = layers and {} or nil,
        weights = cli.weights_info(metric.weights_file, arch, args.name_map),
        lpips_lin = args.lpips and {file = metric.lin_file,
                                    sha256 = require("dpl.sys.crypto").sha256_file(metric.lin_file)} or nil,
        untrained = metric.untrained or nil,
        mode = mode, resize = resize and json.array({resize[1], resize[2]}) or nil,
        inputs = mode == "images" and args.images or mode == "dirs" and {dir0 = args.dir0, dir1 = args.dir1}
          or {dir = args.dir},
      }
      if layers then
        for k, l in ipairs(layers) do config.layers[k] = lossnet.layer_label(arch, l) end
      end
      for k, v in pairs(cli.provenance()) do config[k] = v end
      local list = json.array()
      for _, r in ipairs(rows) do list[#list + 1] = r end
      text = json.encode({config = config, pairs = list}, {indent = "  "}) .. "\n"
    end
    cli.write_file(args.out, text, "--out")
    io.stderr:write(("%s: %d pair(s) -> %s\n"):format(NAME, #rows, args.out))
  end
  if spatial_file then io.stderr:write(("%s: spatial map -> %s (and .npy)\n"):format(NAME, spatial_file)) end
end)

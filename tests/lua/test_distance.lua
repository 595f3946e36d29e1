-- examples/distance.lua run as a user runs it (a child dplrun), and dpl.perceptual's spatial maps and gradients,
-- against tests/ref/distance_ref.py: LPIPS v0.1 and v0.0 (alex, vgg, squeeze) as the lpips package computes them, built
-- in the reference from LPIPS's real linear layers ($DPL_SHARED/data/LPIPS/weights) and seeded torchvision backbones,
-- and the paper's distance; on non-square images of three sizes.
--  * two folders paired by file name (--dir0/--dir1, CSV with exactly a,b,distance, read back by Python's csv), all
--    pairs within a folder (--dir --all-pairs, JSON with the configuration), two images, layers given as letters,
--    indices and torchvision module names (summed), --spatial maps (PNG + .npy, LPIPS(spatial=True)), the gradient of
--    the distance with respect to an image (a training loss);
--  * user errors are one line with exit status 2, checked before any work;
--  * the real ImageNet SqueezeNet 1.1 ($DPL_SHARED/data/SqueezeNet1.1, Gluon names, --name-map) orders the LPIPS
--    example patches as LPIPS's README does.
-- Agreement: |got - ref| <= 1e-5 + 2e-3 |ref| (test_perceptual.lua's tolerance). Needs $DPL_SHARED and python3-torch;
-- without them the cases report themselves skipped.
local dpl = require "dpl"
local test = require "dpl.test"
local json = require "dpl.json"
local perceptual = require "dpl.perceptual"
-- default only: child processes and a PyTorch reference
local suite = test.suite("distance", {configurations = {"default"}})

local here = arg[0]:match("^(.*)/[^/]*$") or "."
local root = here .. "/.."
local shared = os.getenv("DPL_SHARED") or (root .. "/../shared")
local dplrun, sh, slurp = test.dplrun(), test.sh, test.read
local tmp = test.tmpdir("distance")
suite.teardown = function() os.execute(("rm -rf '%s'"):format(tmp)) end

local has_shared = slurp(shared .. "/data/LPIPS/weights/v0.1/alex.pth") ~= nil
local refdir = tmp .. "/ref"
local ref_rc, ref_log, ref = 1, "", nil
if has_shared then
  ref_rc, ref_log = sh(("/usr/bin/python3 %s/tests/ref/distance_ref.py '%s' '%s/data'"):format(root, refdir, shared))
  if ref_rc == 0 then ref = json.decode(slurp(refdir .. "/ref.json")) end
end
local function need_ref(t)
  test.shared(t, "data/LPIPS/weights/v0.1/alex.pth")
  test.shared(t, "data/LPIPS/weights/v0.0/alex.pth")
  test.shared(t, "data/Set5/image_SRF_4/img_002_SRF_4_HR.png")
  if ref_rc ~= 0 then
    if ref_log:find("No module named", 1, true) then t:skip("python3-torch / numpy / Pillow missing") end
    t:ok(false, "tests/ref/distance_ref.py failed: " .. ref_log:sub(-800))
  end
end

local function distance(a) return sh(("DPL_QUIET=1 %s %s/examples/distance.lua %s"):format(dplrun, root, a)) end
local function close(t, got, want, what)
  t:ok(type(got) == "number" and math.abs(got - want) <= 1e-5 + 2e-3 * math.abs(want),
    ("%s: got %s, reference %.9g"):format(what, tostring(got), want))
end
local function w(arch) return ("--weights '%s/%s.pth'"):format(refdir, arch) end

-- a CSV read by Python's csv module: {header = {...}, rows = {{...}, ...}}
local function read_csv(path)
  local p = io.popen(("/usr/bin/python3 -c 'import csv, json, sys; " ..
    "r = list(csv.reader(open(sys.argv[1], newline=\"\"))); print(json.dumps(r))' '%s' 2>&1"):format(path))
  local text = p:read("*a")
  p:close()
  local ok, rows = pcall(json.decode, text)
  if not ok then return nil, text end
  return {header = rows[1], rows = {unpack(rows, 2)}}
end

suite:add("reference generation (tests/ref/distance_ref.py)", function(t) need_ref(t) end)

suite:add("two folders paired by file name: LPIPS v0.1 and v0.0 for alex, vgg, squeeze; CSV a,b,distance", function(t)
  need_ref(t)
  for _, net in ipairs {"alex", "vgg", "squeeze"} do
    for _, version in ipairs {"0.1", "0.0"} do
      local csv = ("%s/%s-%s.csv"):format(tmp, net, version)
      local rc, out = distance(("--dir0 '%s/dir0' --dir1 '%s/dir1' --lpips %s --lpips-version %s %s --device cpu " ..
        "--out '%s'"):format(refdir, refdir, net, version, w(perceptual.LPIPS[net].arch), csv))
      t:eq(rc, 0, out)
      t:ok(out:find("1 file(s) without a namesake", 1, true) ~= nil, "the unmatched file is reported: " .. out)
      local v, err = read_csv(csv)
      t:ok(v ~= nil, "python read the CSV: " .. tostring(err))
      t:eq(table.concat(v.header, ","), "a,b,distance", "exactly these columns")
      t:eq(#v.rows, 3, "one row per common name")
      local want = ref.dirs[("lpips-%s-v%s"):format(net, version)]
      for _, r in ipairs(v.rows) do
        t:eq(r[1], r[2], "paired by name")
        close(t, tonumber(r[3]), want[r[1]], ("LPIPS %s v%s %s"):format(net, version, r[1]))
        t:ok(#(r[3]:gsub("^0%.0*", "")) <= 9, "float32 precision, not a double's digits: " .. r[3])
      end
    end
  end
end)

suite:add("all pairs within a folder: JSON with its configuration; paper distance with summed layers", function(t)
  need_ref(t)
  local file = tmp .. "/all.json"
  local rc, out = distance(("--dir '%s/same' --all-pairs --lpips alex %s --device cpu --out '%s'"):format(refdir,
    w("alexnet"), file))
  t:eq(rc, 0, out)
  local v = json.decode(slurp(file))
  t:eq(#v.pairs, 6, "4 images: 6 unordered pairs")
  for _, p in ipairs(v.pairs) do
    close(t, p.distance, ref.allpairs["lpips-alex-v0.1"][p.a .. "|" .. p.b], "LPIPS alex " .. p.a .. " " .. p.b)
  end
  local c = v.config
  t:eq(c.distance, "lpips-v0.1")
  t:eq(c.weights.file, refdir .. "/alexnet.pth")
  t:eq(#c.weights.sha256, 64, "weights SHA-256")
  t:eq(c.weights.kind, "custom")
  t:ok(c.lpips_lin.sha256 and c.dpl_version == dpl.version and c.date:match("^%d%d%d%d%-%d%d%-%d%dT") and c.device,
    "provenance: " .. json.encode(c))
  -- the paper's distance, layers as a letter and a torchvision module name (E = features.1, M = features.7), summed
  for _, layer in ipairs {"E,M", "features.1,m", "1,7"} do
    rc, out = distance(("--dir '%s/same' --all-pairs --arch alexnet --layer %s %s --device cpu --out '%s'"):format(
      refdir, layer, w("alexnet"), file))
    t:eq(rc, 0, out)
    v = json.decode(slurp(file))
    t:eq(json.encode(v.config.layers), '["E","M"]', "layers named canonically")
    for _, p in ipairs(v.pairs) do
      close(t, p.distance, ref.allpairs["paper-alexnet-E+M"][p.a .. "|" .. p.b], "alexnet " .. layer)
    end
  end
end)

suite:add("two images of any size: the paper's distance (vgg16 S) and alexnet E+M, on the CPU and Vulkan", function(t)
  need_ref(t)
  local devices = {"cpu"}
  if dpl.vulkan_available() then devices[2] = "vulkan" end
  for _, name in ipairs {"a.png", "b.png", "c.png"} do
    for _, device in ipairs(devices) do
      local rc, out = distance(("'%s/dir0/%s' '%s/dir1/%s' --arch vgg16 --layer S %s --device %s --digits 9"):format(
        refdir, name, refdir, name, w("vgg16"), device))
      t:eq(rc, 0, out)
      close(t, tonumber(out:match("([%d.]+)  %S+  %S+")), ref.paper["vgg16-S"][name], "vgg16 S " .. name .. " " .. device)
    end
    local rc, out = distance(("'%s/dir0/%s' '%s/dir1/%s' --layer E,M %s --device cpu --digits 9"):format(refdir, name,
      refdir, name, w("alexnet")))
    t:eq(rc, 0, out)
    close(t, tonumber(out:match("([%d.]+)  %S+  %S+")), ref.paper["alexnet-E+M"][name], "alexnet E+M " .. name)
  end
  if #devices == 1 then t:skip("no Vulkan device: CPU checked") end
end)

suite:add("--spatial: the per-pixel map as lpips.LPIPS(spatial=True), PNG heat map and .npy at the image size",
  function(t)
  need_ref(t)
  local png = tmp .. "/map.png"
  local rc, out = distance(("'%s/dir0/b.png' '%s/dir1/b.png' --lpips alex %s --device cpu --spatial '%s'"):format(
    refdir, refdir, w("alexnet"), png))
  t:eq(rc, 0, out)
  local map = dpl.load_npy(tmp .. "/map.npy")
  local want = dpl.load_npy(refdir .. "/spatial_lpips_alex.npy")
  t:shape(map, want:size(), "1 x 1 x H x W")
  t:close(map, want, {atol = 1e-6, rtol = 2e-3}, "LPIPS alex spatial map")
  local img = require("dpl.image").load(png)
  t:eq(img:size(2), want:size(3), "PNG height")
  t:eq(img:size(3), want:size(4), "PNG width")
  -- the paper distance's map in the library (vgg16, S + M), on every device
  local a = require("dpl.image").load(refdir .. "/dir0/b.png")
  local b = require("dpl.image").load(refdir .. "/dir1/b.png")
  local ref_map = dpl.load_npy(refdir .. "/spatial_paper_vgg16.npy")
  for _, device in ipairs(dpl.vulkan_available() and {"cpu", "vulkan"} or {"cpu"}) do
    local m = perceptual.new({arch = "vgg16", layer = {"S", "M"}, weights = refdir .. "/vgg16.pth", device = device})
    t:close(m:spatial(a:to(device), b:to(device)):to("cpu"), ref_map, {atol = 1e-6, rtol = 2e-3},
      "paper distance map on " .. device)
  end
  -- several pairs: a folder of maps
  rc, out = distance(("--dir0 '%s/dir0' --dir1 '%s/dir1' --lpips alex %s --device cpu --spatial '%s/maps'"):format(
    refdir, refdir, w("alexnet"), tmp))
  t:eq(rc, 0, out)
  t:ok(slurp(tmp .. "/maps/a__a.png") and slurp(tmp .. "/maps/c__c.npy"), "one PNG and .npy per pair")
end)

suite:add("the distance is differentiable: d LPIPS / d image as PyTorch's autograd gives it", function(t)
  need_ref(t)
  local image = require "dpl.image"
  local want = dpl.load_npy(refdir .. "/grad_lpips_alex.npy")
  for _, device in ipairs(dpl.vulkan_available() and {"cpu", "vulkan"} or {"cpu"}) do
    local m = perceptual.new({lpips = "alex", weights = refdir .. "/alexnet.pth", device = device})
    local a = image.load(refdir .. "/dir0/b.png", {device = device}):unsqueeze(1):requires_grad_()
    local b = image.load(refdir .. "/dir1/b.png", {device = device}):unsqueeze(1)
    local d = m(a, b)
    t:ok(d.requires_grad, "the distance carries a graph")
    d:sum():backward()
    local g = a.grad:to("cpu")
    local scale = want:abs():max():item()
    t:close(g, want, {atol = 2e-3 * scale, rtol = 0}, "gradient on " .. device .. " (relative to its largest element)")
  end
end)

suite:add("user errors: one line, exit status 2, before any work", function(t)
  local img = (has_shared and (shared .. "/data/BAPPS/imgs/ex_ref.png")) or nil
  if not img then
    img = tmp .. "/x.png"
    require("dpl.image").save(dpl.rand(3, 8, 8), img)
  end
  local big = tmp .. "/big.png"
  require("dpl.image").save(dpl.rand(3, 70, 64), big)
  local cases = {
    {("'%s' '%s' --lpips alex --layer M"):format(img, img), "--layer has no effect with --lpips"},
    {("'%s' '%s' --arch nosuchnet --weights random:1"):format(img, img), "--arch nosuchnet: unknown architecture"},
    {("'%s' '%s' --layer Q --weights random:1"):format(img, img), "--layer Q: unknown layer 'Q' for alexnet"},
    {("'%s' '%s' --weights random:1 --device vulkan:7"):format(img, img), "--device vulkan:7:"},
    {("'%s' '%s' --weights random:1 --out '%s'"):format(img, img, tmp), "is a folder"},
    {("'%s' '%s' --weights random:1 --out '%s/no/such/dir/x.csv'"):format(img, img, tmp), "does not exist"},
    {("'%s' '%s' --weights random:1 --out '%s/x.txt'"):format(img, img, tmp), "unknown file type"},
    {("'%s' '%s/missing.png' --weights random:1"):format(img, tmp), "missing.png: no such file"},
    {("'%s' '%s' --weights random:1"):format(img, big), "give --resize HxW"},
    {("'%s' '%s' --lpips alex --lpips-version 0.2"):format(img, img), "must be 0.1 or 0.0"},
    {("'%s' '%s' --weights random:1 --name-map gluon_squeezenet1_1"):format(img, img), "--name-map applies to"},
    {("'%s' '%s' --weights '%s/nothing.pth'"):format(img, img, tmp), "--weights"},
    {("--dir '%s'"):format(tmp), "--dir needs --all-pairs"},
    {"--bogus", "unknown option"},
    {("'%s'"):format(img), "give two images"},
  }
  test.user_errors(t, distance, cases)
  -- --resize makes different sizes comparable
  local rc, out = distance(("'%s' '%s' --weights random:1 --resize 64x64 --device cpu"):format(img, big))
  t:eq(rc, 0, out)
  local rc2, help = distance("--help")
  t:ok(rc2 == 0 and help:find("--all-pairs", 1, true) and help:find("summed", 1, true), help)
end)

suite:add("the real ImageNet SqueezeNet 1.1 (.npy weights, --name-map) orders the LPIPS example patches", function(t)
  local sqz = test.shared(t, "data/SqueezeNet1.1/squeezenet1.1_nchw/weights/squeezenet0_conv0_weight.npy"):gsub("/[^/]*$", "")
  local imgs = test.shared(t, "data/BAPPS/imgs/ex_ref.png"):gsub("ex_ref.png$", "")
  local cmd = ("%sex_ref.png %sex_p0.png %sex_p1.png %sex_ref.png --arch squeezenet1_1 %%s --weights %s " ..
    "--name-map gluon_squeezenet1_1 --device cpu"):format(imgs, imgs, imgs, imgs, sqz)
  -- ex_p1 is the patch LPIPS's README reports as the closer one to ex_ref; ImageNet features at M and L (and LPIPS)
  -- agree, the pixel-like E layer does not
  for _, layer in ipairs {"E", "M", "L", "lpips"} do
    local rc, out = distance(cmd:format(layer == "lpips" and "--lpips squeeze" or ("--layer " .. layer)))
    t:eq(rc, 0, out)
    local d = {}
    for v in out:gmatch("([%d.]+)  %S+  %S+") do d[#d + 1] = tonumber(v) end
    t:eq(#d, 3, "three distances: " .. out)
    t:ok(d[1] > 0 and d[2] > 0, "distinct patches have positive distances: " .. out)
    t:eq(d[3], 0, "an image is at distance 0 from itself")
    if layer ~= "E" then t:ok(d[2] < d[1], layer .. ": ex_p1 is closer to ex_ref than ex_p0: " .. out) end
    if layer == "lpips" then t:ok(out:find("LPIPS v0.1 squeeze", 1, true) ~= nil, out) end
  end
end)

return suite

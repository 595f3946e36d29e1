-- experiments/features.lua run as a user runs it (a child dplrun): images and folders in, several layers in one pass
-- (letters, indices and torchvision module names), .safetensors (one named tensor per layer, read back by a Python
-- reader of the format) or one .npy per layer, the configuration in --json and in the file's metadata, one-line user
-- errors. The features are compared with the loss network run in this process on the same images (seeded random
-- weights: no files needed).
local dpl = require "dpl"
local test = require "dpl.test"
local json = require "dpl.json"
local lossnet = require "dpl.models.lossnet"
local image = require "dpl.image"
-- default only: child processes
local suite = test.suite("features", {configurations = {"default"}})

local here = arg[0]:match("^(.*)/[^/]*$") or "."
local root = here .. "/.."
local dplrun = test.dplrun()
local tmp = test.tmpdir("features")
os.execute(("mkdir -p '%s/imgs' '%s/mixed'"):format(tmp, tmp))
suite.teardown = function() os.execute(("rm -rf '%s'"):format(tmp)) end
local function features(a)
  return test.sh(("DPL_QUIET=1 %s %s/experiments/features.lua %s"):format(dplrun, root, a))
end

-- three 8-bit images of 40 x 52 (saved and read back, so the reference sees exactly what the script reads)
local names = {"b.png", "a.png", "c.png"}
for k, n in ipairs(names) do image.save(dpl.rand({3, 40, 52}, {seed = 30 + k}), tmp .. "/imgs/" .. n) end
image.save(dpl.rand({3, 40, 52}, {seed = 40}), tmp .. "/mixed/x.png")
image.save(dpl.rand({3, 36, 52}, {seed = 41}), tmp .. "/mixed/y.png")
local function batch_of(files)
  local list = {}
  for k, f in ipairs(files) do list[k] = image.load(f, {device = "cpu"}):unsqueeze(1) end
  return dpl.cat(list, 1)
end

local function check(t, got, want, what)
  t:shape(got, want:size(), what .. " shape")
  local scale = math.max(want:abs():max():item(), 1e-6)
  t:ok((got - want):abs():max():item() <= 1e-4 * scale, what .. ": max difference within 1e-4 of the largest value")
end

suite:add("a folder, several layers in one pass -> one .safetensors with a named tensor per layer", function(t)
  local out, js = tmp .. "/f.safetensors", tmp .. "/f.json"
  local rc, log = features(("--arch vgg16 --layer e,features.8,15 --weights random:5 --input '%s/imgs' --out '%s' " ..
    "--json '%s' --normalize imagenet --device cpu --batch 2"):format(tmp, out, js))
  t:eq(rc, 0, log)
  t:ok(log:find("UNTRAINED weights (random:5)", 1, true), "untrained weights are labelled: " .. log)
  -- the file, read by a Python reader of the safetensors layout (8-byte header length, JSON header, data)
  local p = io.popen(("/usr/bin/python3 -c \"import json, struct, sys; b = open(sys.argv[1], 'rb').read(); " ..
    "n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n]); " ..
    "print(json.dumps({k: v['shape'] for k, v in h.items() if k != '__metadata__'}))\" '%s' 2>&1"):format(out))
  local shapes = json.decode(p:read("*a"))
  p:close()
  t:eq(json.encode(shapes), '{"E":[3,64,40,52],"M":[3,256,10,13],"S":[3,128,20,26]}', "named tensors, one per layer")
  local sorted = {tmp .. "/imgs/a.png", tmp .. "/imgs/b.png", tmp .. "/imgs/c.png"}
  local x = batch_of(sorted)
  local tensors = dpl.load_tensors(out)
  for _, l in ipairs {"E", "S", "M"} do
    local want = dpl.no_grad(function()
      return lossnet.new("vgg16", l, {weights = "random:5", normalize = "imagenet", device = "cpu"}):forward(x)
    end)
    check(t, tensors[l], want, "vgg16 " .. l)
  end
  local c = json.decode(io.open(js):read("*a"))
  t:eq(json.encode(c.layers), '["E","S","M"]')
  t:eq(c.weights.random, "random:5")
  t:eq(c.untrained, true)
  t:eq(c.inputs[1], sorted[1], "inputs in the order of the output rows (a folder sorted by name)")
  t:ok(c.dpl_version == dpl.version and c.date and c.code_version and c.device == "cpu", "provenance")
  local _, _, meta = dpl.load_tensors(out)
  t:ok(meta("dpl_config") and json.decode(meta("dpl_config")).arch == "vgg16", "the configuration in the metadata")
end)

suite:add("image files and --layer all into a folder (LAYER.npy); module names; one layer to one .npy", function(t)
  local files = {tmp .. "/imgs/c.png", tmp .. "/imgs/a.png"}
  local rc, log = features(("--arch resnet18 --layer all --weights random:6 --input '%s' '%s' --out '%s/out' " ..
    "--device cpu"):format(files[1], files[2], tmp))
  t:eq(rc, 0, log)
  local x = batch_of(files)
  for _, l in ipairs {"E", "S", "M", "L"} do
    local want = dpl.no_grad(function()
      return lossnet.new("resnet18", l, {weights = "random:6", device = "cpu"}):forward(x)
    end)
    check(t, dpl.load_npy(("%s/out/%s.npy"):format(tmp, l)), want, "resnet18 " .. l)
  end
  rc, log = features(("--arch resnet18 --layer layer3 --weights random:6 --input '%s' --out '%s/l3.npy' " ..
    "--device cpu"):format(files[1], tmp))
  t:eq(rc, 0, log)
  local want = dpl.no_grad(function()
    return lossnet.new("resnet18", 6, {weights = "random:6", device = "cpu"}):forward(batch_of({files[1]}))
  end)
  check(t, dpl.load_npy(tmp .. "/l3.npy"), want, "resnet18 layer3 (child 6)")
  t:ok(log:find("layer3", 1, true) ~= nil, log)
end)

suite:add("user errors: one line, exit status 2, before any work", function(t)
  local img = tmp .. "/imgs/a.png"
  local cases = {
    {("--arch vgg16 --layer E,M --weights random:1 --input '%s' --out '%s/x.npy'"):format(img, tmp), "need FILE.safetensors"},
    {("--arch vgg16 --layer Q --weights random:1 --input '%s' --out '%s/x.npy'"):format(img, tmp), "--layer Q: unknown layer"},
    {("--arch vggx --layer E --input '%s' --out '%s/x.npy'"):format(img, tmp), "--arch vggx: unknown architecture"},
    {("--arch vgg16 --layer E --weights random:1 --input '%s/none.png' --out '%s/x.npy'"):format(tmp, tmp), "no such file"},
    {("--arch vgg16 --layer E --weights random:1 --input '%s/mixed' --out '%s/x.npy'"):format(tmp, tmp), "one size"},
    {("--arch vgg16 --layer E --weights random:1 --input '%s' --out '%s/nodir/x.npy'"):format(img, tmp), "does not exist"},
    {("--arch vgg16 --layer E --weights random:1 --input '%s' --out '%s/x.txt'"):format(img, tmp), "FILE.safetensors"},
    {("--arch vgg16 --layer E --weights random:1 --input '%s' --out '%s/x.npy' --device vulkan:9"):format(img, tmp),
     "--device vulkan:9"},
    {("--arch vgg16 --layer E --weights random:1 --input '%s' --out '%s/x.npy' --batch 0"):format(img, tmp), "--batch 0"},
    {("--arch vgg16 --layer E,e --weights random:1 --input '%s' --out '%s/x.safetensors'"):format(img, tmp), "twice"},
    {"--arch vgg16", "missing"},
  }
  test.user_errors(t, features, cases)
  -- dplrun's own --device is blamed as such (it reaches the library through DPL_DEVICE)
  local rc0, out0 = test.sh(("DPL_QUIET=1 %s --device vulkan:9 %s/experiments/features.lua --arch vgg16 --layer E " ..
    "--weights random:1 --input '%s' --out '%s/x.npy'"):format(dplrun, root, img, tmp))
  t:ok(rc0 == 2 and out0:find("dplrun --device", 1, true) and not out0:find("DPL_DEVICE", 1, true), out0)
  local rc, help = features("--help")
  t:ok(rc == 0 and help:find("never summed", 1, true) and help:find("features.29", 1, true), help)
end)

return suite

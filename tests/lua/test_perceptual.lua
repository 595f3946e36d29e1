-- dpl.perceptual (lua/dpl/perceptual.lua): the paper's distance (docs/benchmarks/bapps.md) and LPIPS, against PyTorch.
--  * tests/ref/lpips_ref.py (python3-torch, torchvision) writes seeded random `features` weights for alexnet, vgg16 and
--    squeezenet1_1 (torch.save, zip .pth, loaded here through the LossNet weights path), the LPIPS example patches
--    ($DPL_SHARED/data/BAPPS/imgs) and a non-square pair of crops from Set5, and computes the distances from their
--    definitions: baseline at E, S, M, L and E+S+M+L (ImageNet normalisation, F.normalize eps 1e-12, squared
--    difference summed over channels, mean over space) and LPIPS v0.1 for alex, vgg and squeeze with the real linear
--    layers from $DPL_SHARED/data/LPIPS/weights (legacy .pth) and the [-1,1] + ScalingLayer input.
--  * Agreement: |got - ref| <= 1e-5 + 2e-3 x |ref| per distance, on the CPU and on Vulkan.
local dpl = require "dpl"
local test = require "dpl.test"
local perceptual = require "dpl.perceptual"
-- default only: long; the device paths it uses are covered by the op suites in every configuration
local suite = test.suite("perceptual", {configurations = {"default"},
  shared = {"data/BAPPS/imgs/ex_ref.png", "data/Set5/image_SRF_4/img_001_SRF_4_HR.png", "data/LPIPS/weights/v0.1/alex.pth"}})

local vulkan = dpl.vulkan_available()
local S = suite

local here = arg[0]:match("^(.*)/[^/]*$") or "."
local root = here .. "/.."
local shared = os.getenv("DPL_SHARED") or (root .. "/../shared")
local refdir = os.tmpname() .. "_perceptual"
local made = os.execute(("/usr/bin/python3 %s/tests/ref/lpips_ref.py %s %s/data >%s.log 2>&1"):format(root, refdir,
  shared, refdir))
made = made == 0 or made == true
suite.teardown = function() os.execute(("rm -rf '%s' '%s.log'"):format(refdir, refdir)) end

local function need_refs(t)
  if not made then
    local f = io.open(refdir .. ".log")
    local text = f and f:read("*a") or ""
    if f then f:close() end
    if text:find("No module named 'torch", 1, true) then t:skip("python3-torch is not installed") end
    t:ok(false, "tests/ref/lpips_ref.py failed: " .. text:sub(-800))
  end
end

local TOL = {atol = 1e-5, rtol = 2e-3}
local ARCHS = {"alexnet", "vgg16", "squeezenet1_1"}
local PAIRS = {{1, 2}, {1, 3}, {2, 3}}

local function pair_batches(device)
  local imgs = dpl.load_npy(refdir .. "/images.npy", {device = device})
  local a = dpl.cat({imgs:narrow(1, PAIRS[1][1], 1), imgs:narrow(1, PAIRS[2][1], 1), imgs:narrow(1, PAIRS[3][1], 1)}, 1)
  local b = dpl.cat({imgs:narrow(1, PAIRS[1][2], 1), imgs:narrow(1, PAIRS[2][2], 1), imgs:narrow(1, PAIRS[3][2], 1)}, 1)
  return a, b
end

S:add("reference generation (tests/ref/lpips_ref.py)", function(t) need_refs(t) end)

for _, device in ipairs {"cpu", "vulkan"} do
  for _, arch in ipairs(ARCHS) do
    S:add(("baseline distance of %s at E, S, M, L and E+S+M+L on %s"):format(arch, device), function(t)
      if device == "vulkan" and not vulkan then t:skip("no Vulkan device") end
      need_refs(t)
      local ref = dpl.load_npy(("%s/base_%s.npy"):format(refdir, arch)):totable()
      local a, b = pair_batches(device)
      local layers = {"E", "S", "M", "L", {"E", "S", "M", "L"}}
      for k, layer in ipairs(layers) do
        local m = perceptual.new({arch = arch, layer = layer, weights = ("%s/%s.pth"):format(refdir, arch),
                                  device = device})
        local d = m:distance(a, b)
        t:shape(d, {3}, "one distance per pair")
        t:close(d:to("cpu"), ref[k], TOL, ("%s %s on %s"):format(arch, type(layer) == "table" and "E+S+M+L" or layer,
          device))
      end
    end)
  end
end

S:add("baseline distance of single non-square images (3 x H x W -> a number), zero for identical images", function(t)
  need_refs(t)
  local crops = dpl.load_npy(refdir .. "/crops.npy")
  for _, arch in ipairs(ARCHS) do
    local ref = dpl.load_npy(("%s/base_crops_%s.npy"):format(refdir, arch)):totable()
    local opts = {arch = arch, layer = "M", weights = ("%s/%s.pth"):format(refdir, arch), device = "cpu"}
    local d = perceptual.distance(crops:select(1, 1), crops:select(1, 2), opts)
    t:ok(type(d) == "number", "a number for one pair")
    t:near(d, ref[1], 2e-3, arch .. " crops at M")
    t:ok(ref[1] > 1e-4, "the reference distance is not trivially zero")
    t:near(perceptual.distance(crops:select(1, 1), crops:select(1, 1), opts), 0, 1e-6, arch .. " identical crops")
  end
end)

for _, device in ipairs {"cpu", "vulkan"} do
  S:add("LPIPS v0.1 alex, vgg, squeeze (real linear layers, seeded backbones) on " .. device, function(t)
    if device == "vulkan" and not vulkan then t:skip("no Vulkan device") end
    need_refs(t)
    local a, b = pair_batches(device)
    for net, spec in pairs(perceptual.LPIPS) do
      local m = perceptual.new({lpips = net, weights = ("%s/%s.pth"):format(refdir, spec.arch), device = device})
      t:eq(#m.lin, #spec.layers, net .. ": one linear layer per LPIPS layer")
      local ref = dpl.load_npy(("%s/lpips_%s.npy"):format(refdir, net)):totable()
      t:close(m:distance(a, b):to("cpu"), ref, TOL, ("LPIPS %s on %s"):format(net, device))
    end
  end)
end

S:add("errors name the problem", function(t)
  need_refs(t)
  t:raises(function() perceptual.new({lpips = "resnet"}) end, "unknown LPIPS network 'resnet'")
  t:raises(function() perceptual.new({}) end, "opts.arch")
  t:raises(function() perceptual.new({arch = "alexnet", layer = "Q", weights = "random:1"}) end, "unknown layer 'Q'")
  t:raises(function() perceptual.new({arch = "nosuchnet", weights = "random:1"}) end, "unknown architecture")
  local m = perceptual.new({arch = "alexnet", layer = "E", weights = "random:1", device = "cpu"})
  t:raises(function() m:distance(dpl.zeros(1, 3, 32, 32), dpl.zeros(1, 3, 32, 16)) end, "different shapes")
  t:raises(function() m:distance(dpl.zeros(32, 32), dpl.zeros(32, 32)) end, "3 x H x W or N x 3 x H x W")
  t:raises(function() m:features(dpl.zeros(1, 1, 32, 32)) end, "N x 3 x H x W")
  t:raises(function() perceptual.new({lpips = "alex", lin_weights = "/nonexistent/alex.pth", weights = "random:1"}) end,
    "/nonexistent/alex.pth")
end)

return suite

-- The 56 loss networks through the public path users take: dpl.lossnet.new(arch, layer, {weights = <a torch.save
-- file>}), against torchvision 0.14 (the conformance bar of issue 4).
--  * tests/ref/lossnets_ref.py (Debian python3-torch / python3-torchvision, run in the background while this suite
--    works through the archs it has finished) saves, per arch, one seeded random state_dict (BatchNorm affine
--    parameters and running statistics randomised too) with torch.save in the zip format and in the legacy
--    (pre-1.6) format, and the reference truncation's outputs (docs/benchmarks/lossnets.md, computed in float64) at E,
--    S, M and L for a random 2 x 3 x 64 x 64 input. resnet18 and squeezenet1_1 files are the whole model's state_dict
--    (classifier included, as torchvision's own files); the others hold the keys up to the L layer only (AlexNet's
--    whole file would be 2 x 244 MB of temporary disk). Each arch's files are deleted once both devices read them.
--  * Every arch x layer is checked (max |error| <= 1e-4 x max |reference|) on the CPU and, where there is one, on
--    Vulkan, and every arch x layer x format on at least one of them: the small archs (BOTH) read both files on
--    both devices, the others the zip file on the CPU and the legacy file on Vulkan, to keep the suite short on
--    small machines (without Vulkan the CPU reads both).
--  * A file that lacks tensors the network needs is refused with the file and the missing names; random:SEED
--    networks are labelled untrained; normalize = "imagenet" standardises the input with ImageNet's statistics.
--  * Real weights: the ImageNet SqueezeNet 1.1 of $DPL_SHARED/data/SqueezeNet1.1 (a directory of Gluon-named .npy
--    files) loads through the public path (weights = the directory, name_map = "gluon_squeezenet1_1", or the same map
--    as a text file); the full model reproduces the model zoo's three shipped outputs, and on Set14 monarch, pepper
--    and zebra - preprocessed as torchvision's classification transform (shorter side to 256, PIL bilinear; centre
--    crop 224; done by tests/ref/squeezenet_real_ref.py with Pillow, which also computes torchvision's references)
--    and normalised by the loss network's normalize = "imagenet" - the L features and the logits match torchvision
--    and the top-1 classes are ImageNet 323 (monarch), 945 (bell pepper) and 340 (zebra). On CPU and Vulkan.
local dpl = require "dpl"
local test = require "dpl.test"
local lossnet = require "dpl.models.lossnet"
-- default only: long; the device paths it uses are covered by the op suites in every configuration. 1800 s: it waits
-- for the float64 PyTorch references of 56 networks, which take long on a busy 2-core machine.
local suite = test.suite("lossnets", {configurations = {"default"}, timeout = 1800})

local vulkan = dpl.vulkan_available()
local TOL = 1e-4
-- archs whose files are read in both formats on both devices; the others read the zip file on the CPU and the legacy
-- one on Vulkan (the format is parsed on the host, so this still covers every arch x layer x format and device)
local BOTH = {alexnet = true, resnet18 = true, efficientnet_b0 = true, squeezenet1_1 = true}
local FULL = {resnet18 = true, squeezenet1_1 = true}
local WAIT_S = 900      -- longest wait for one arch's references (the script writes them one arch at a time)

-- Every test ends with the Vulkan queue drained (work pending at os.exit trips the validation layer at shutdown).
local S = suite

-- ---- references, made in the background ---------------------------------------------------------------------------
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local root = here .. "/.."
local tmp = os.tmpname()
local refdir = tmp .. "_lossnets"
os.execute(("/usr/bin/python3 %s/tests/ref/lossnets_ref.py %s >%s.log 2>&1 & echo $! >%s.pid"):format(root,
  refdir, refdir, refdir))
local pidf = io.open(refdir .. ".pid")
local pid = pidf and tonumber(pidf:read("*l"))
if pidf then pidf:close() end
-- the script is still running (it may still be writing when a filtered run ends early)
local function running()
  return pid ~= nil and os.execute(("kill -0 %d 2>/dev/null"):format(pid)) == 0
end
suite.teardown = function()
  if running() then os.execute(("kill %d 2>/dev/null; sleep 0.5"):format(pid)) end
  os.execute(("rm -rf '%s' '%s' '%s.log' '%s.pid'"):format(tmp, refdir, refdir, refdir))
end

local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

local function read(path)
  local f = io.open(path)
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

-- waits until the script has finished `arch` (fails with its log if it ended without doing so)
local function wait_for(t, arch)
  local start = os.time()
  while not exists(refdir .. "/" .. arch .. "/ok") do
    if not running() and not exists(refdir .. "/" .. arch .. "/ok") then
      t:ok(false, ("tests/ref/lossnets_ref.py ended without the %s references (python3-torch and " ..
        "python3-torchvision are installed by .ci/install-deps.sh): %s"):format(arch, read(refdir .. ".log"):sub(-600)))
    end
    t:ok(os.time() - start < WAIT_S, ("no %s references after %d s: %s"):format(arch, WAIT_S,
      read(refdir .. ".log"):sub(-600)))
    os.execute("sleep 0.2")
  end
  return refdir .. "/" .. arch .. "/"
end

-- max |got - ref| <= TOL x max |ref|, with both numbers in the message
local function check_close(t, got, ref, what)
  t:shape(got, ref:size(), what)
  local refmax = ref:abs():max():item()
  local err = (got:to(ref:device()) - ref):abs():max():item()
  t:ok(err == err and err <= TOL * refmax, ("%s: max abs error %.4g > %g x max |ref| %.4g = %.4g"):format(what, err,
    TOL, refmax, TOL * refmax))
  t:ok(refmax > 0, what .. ": the reference is all zeros")
end

-- the formats each device reads for an arch
local function formats(arch, device)
  if not BOTH[arch] and vulkan then return {device == "cpu" and "zip" or "legacy"} end
  return {"zip", "legacy"}
end

local function run_arch(t, arch, device)
  local dir = wait_for(t, arch)
  local x = dpl.load_npy(dir .. "input.npy", {device = device})
  for _, fmt in ipairs(formats(arch, device)) do
    local file = dir .. fmt .. ".pth"
    t:eq(require("dpl.weights").format(file), "pth-" .. fmt, file .. ": format as written by torch.save")
    for _, layer in ipairs(lossnet.LAYER_NAMES) do
      local what = ("%s layer %s from the %s file on %s"):format(arch, layer, fmt, device)
      local net = lossnet.new(arch, layer, {weights = file, device = device})
      t:eq(net.untrained, false, what .. ": labelled untrained")
      local y = dpl.no_grad(function() return net:forward(x) end)
      check_close(t, y, dpl.load_npy(("%sout_%d.npy"):format(dir, net.index)), what)
    end
  end
end

for _, arch in ipairs(lossnet.ORDER) do
  S:add(arch .. ": E, S, M, L from torch.save files on cpu", function(t) run_arch(t, arch, "cpu") end)
  S:add(arch .. ": E, S, M, L from torch.save files on vulkan", function(t)
    if not vulkan then t:skip("no Vulkan device") end
    run_arch(t, arch, "vulkan")
    -- both devices are done with the files: free the disk (the later tests read only FULL archs and upto_S.pth)
    if not FULL[arch] then
      os.remove(refdir .. "/" .. arch .. "/zip.pth")
      os.remove(refdir .. "/" .. arch .. "/legacy.pth")
    end
  end)
end

S:add("the full-checkpoint files hold more than the truncated networks need (the loader picks its keys)", function(t)
  local weights = require "dpl.weights"
  for arch in pairs(FULL) do
    local dir = wait_for(t, arch)
    local n = #weights.info(dir .. "zip.pth")
    local _, need = lossnet.new(arch, "L", {weights = "random:1"}).net:state_dict()
    t:ok(n > #need, ("%s: the file has %d tensors, the L network needs %d"):format(arch, n, #need))
    local has_classifier = false
    for _, e in ipairs(weights.info(dir .. "legacy.pth")) do
      if e.name:match("^classifier%.") or e.name:match("^fc%.") then has_classifier = true end
    end
    t:ok(has_classifier, arch .. ": the full legacy file has the classifier")
  end
end)

S:add("a file lacking tensors the layer needs is refused with the file and the missing names", function(t)
  local dir = wait_for(t, "resnet50")
  local file = dir .. "upto_S.pth"
  local net = lossnet.new("resnet50", "S", {weights = file})   -- enough for S
  t:eq(net.index, 4, "resnet50 S index")
  local msg = t:raises(function() lossnet.new("resnet50", "M", {weights = file}) end, file)
  t:ok(msg:find("layer2.0.conv1.weight", 1, true) ~= nil, "the error names a missing tensor: " .. msg)
end)

S:add("random:SEED networks are labelled untrained and are reproducible", function(t)
  local a = lossnet.new("squeezenet1_1", "S", {weights = "random:7"})
  local b = lossnet.new("squeezenet1_1", "S", {weights = "random:7"})
  local c = lossnet.new("squeezenet1_1", "S", {weights = "random:8"})
  t:eq(a.untrained, true, "random:7 untrained")
  t:ok(tostring(a):find("UNTRAINED", 1, true) ~= nil, "printed as untrained: " .. tostring(a))
  local x = dpl.rand({1, 3, 32, 32}, {seed = 3})
  local ya, yb, yc = a:forward(x), b:forward(x), c:forward(x)
  t:eq((ya - yb):abs():max():item(), 0, "same seed, same weights")
  t:ok((ya - yc):abs():max():item() > 0, "another seed, other weights")
end)

S:add("experiments/features.lua labels random:SEED runs untrained and writes that network's features", function(t)
  local i = -1
  while arg[i - 1] do i = i - 1 end
  local dplrun = arg[i]
  local x = dpl.rand({1, 3, 40, 40}, {seed = 6})
  local inp, outp = tmp .. "_in.npy", tmp .. "_out.npy"
  x:save_npy(inp)
  local p = io.popen(("DPL_NO_VULKAN=1 %s --quiet %s/experiments/features.lua --arch resnet18 --layer S " ..
    "--weights random:11 --input '%s' --out '%s' 2>&1; echo rc=$?"):format(dplrun, root, inp, outp))
  local log = p:read("*a")
  p:close()
  t:ok(log:find("rc=0", 1, true), log)
  t:ok(log:find("UNTRAINED weights (random:11)", 1, true), "features.lua output labels the run untrained: " .. log)
  local want = dpl.no_grad(function()
    return lossnet.new("resnet18", "S", {weights = "random:11", device = "cpu"}):forward(x)
  end)
  check_close(t, dpl.load_npy(outp), want, "features.lua random:11 output")
  os.remove(inp)
  os.remove(outp)
end)

S:add("normalize = imagenet standardises the input with ImageNet's mean and std", function(t)
  local dir = wait_for(t, "squeezenet1_1")
  local file = dir .. "zip.pth"
  local plain = lossnet.new("squeezenet1_1", "M", {weights = file})
  local norm = lossnet.new("squeezenet1_1", "M", {weights = file, normalize = "imagenet"})
  local x = dpl.rand({2, 3, 40, 40}, {seed = 4})
  local mean = dpl.tensor({0.485, 0.456, 0.406}):reshape(1, 3, 1, 1)
  local std = dpl.tensor({0.229, 0.224, 0.225}):reshape(1, 3, 1, 1)
  local want = dpl.no_grad(function() return plain:forward((x - mean) / std) end)
  local got = dpl.no_grad(function() return norm:forward(x) end)
  check_close(t, got, want, "imagenet normalisation")
  t:raises(function() lossnet.new("squeezenet1_1", "M", {weights = file, normalize = "bgr"}) end, "normalize")
end)

-- ---- ImageNet SqueezeNet 1.1 from a directory of .npy files -------------------------------------------------------
local shared = os.getenv("DPL_SHARED") or (root .. "/../shared")
local SQZ = shared .. "/data/SqueezeNet1.1/squeezenet1.1_nchw"
local SQZ_W = SQZ .. "/weights"
local IMAGES = {{"img_011", "monarch", 323}, {"img_012", "pepper", 945}, {"img_014", "zebra", 340}}
local sqref = tmp .. "_squeezenet"
local sq_made
local function squeezenet_refs(t)
  test.shared(t, "data/SqueezeNet1.1/squeezenet1.1_nchw/weights/squeezenet0_conv0_weight.npy")
  if sq_made == nil then
    local r = os.execute(("/usr/bin/python3 %s/tests/ref/squeezenet_real_ref.py %s/data %s >%s.log 2>&1"):format(root,
      shared, sqref, sqref))
    sq_made = r == 0 or r == true
  end
  t:ok(sq_made, "tests/ref/squeezenet_real_ref.py failed: " .. read(sqref .. ".log"):sub(-600))
end
local teardown = suite.teardown
suite.teardown = function()
  teardown()
  os.execute(("rm -rf '%s' '%s.log'"):format(sqref, sqref))
end

local function real_squeezenet(t, device)
  squeezenet_refs(t)
  local W = require "dpl.weights"
  -- the full model (classifier included) through the same directory loader
  local model = lossnet.build("squeezenet1_1", nil, {device = device})
  local _, names = model:state_dict()
  model:load_state_dict(W.load_npy_dir(SQZ_W, names, {name_map = "gluon_squeezenet1_1", device = device}))
  model:evaluate()
  for k = 0, 2 do
    local dir = ("%s/test_data_set_%d/"):format(SQZ, k)
    local y = dpl.no_grad(function() return model:forward(dpl.load_npy(dir .. "input_0.npy", {device = device})) end)
    check_close(t, y, dpl.load_npy(dir .. "output_0.npy"), ("model zoo test_data_set_%d on %s"):format(k, device))
  end
  local net = lossnet.new("squeezenet1_1", "L", {weights = SQZ_W, name_map = "gluon_squeezenet1_1",
                                                 normalize = "imagenet", device = device})
  t:eq(net.untrained, false, "ImageNet weights are not untrained")
  local mean = dpl.tensor({0.485, 0.456, 0.406}, {device = device}):reshape(1, 3, 1, 1)
  local std = dpl.tensor({0.229, 0.224, 0.225}, {device = device}):reshape(1, 3, 1, 1)
  for _, im in ipairs(IMAGES) do
    local x = dpl.load_npy(("%s/%s_input.npy"):format(sqref, im[1]), {device = device})
    t:shape(x, {1, 3, 224, 224}, im[2] .. " input")
    local f = dpl.no_grad(function() return net:forward(x) end)
    check_close(t, f, dpl.load_npy(("%s/%s_features.npy"):format(sqref, im[1])),
      ("%s L features on %s"):format(im[2], device))
    local y = dpl.no_grad(function() return model:forward((x - mean) / std) end)
    check_close(t, y, dpl.load_npy(("%s/%s_logits.npy"):format(sqref, im[1])), ("%s logits on %s"):format(im[2], device))
    local top1 = y:to("cpu"):argmax():item()
    t:eq(tonumber(read(("%s/%s_class.txt"):format(sqref, im[1]))), im[3], im[2] .. ": torchvision's top-1 class")
    t:eq(top1, im[3], ("%s: top-1 ImageNet class on %s"):format(im[2], device))
  end
end

S:add("squeezenet1_1: ImageNet .npy directory with a name map; Set14 monarch, pepper, zebra on cpu", function(t)
  real_squeezenet(t, "cpu")
end)
S:add("squeezenet1_1: ImageNet .npy directory with a name map; Set14 monarch, pepper, zebra on vulkan", function(t)
  if not vulkan then t:skip("no Vulkan device") end
  real_squeezenet(t, "vulkan")
end)

S:add("name maps: text files, unknown maps and directories without a map are clear errors", function(t)
  test.shared(t, "data/SqueezeNet1.1/squeezenet1.1_nchw/weights/squeezenet0_conv0_weight.npy")
  local W = require "dpl.weights"
  local mapfile = tmp .. "_map.txt"
  local f = assert(io.open(mapfile, "w"))
  f:write("# Gluon stem -> torchvision key\n\n")
  for stem, key in pairs(W.name_maps.gluon_squeezenet1_1()) do f:write(stem, " ", key, "\n") end
  f:close()
  local x = dpl.rand({1, 3, 48, 48}, {seed = 5})
  local a = lossnet.new("squeezenet1_1", "S", {weights = SQZ_W, name_map = mapfile})
  local b = lossnet.new("squeezenet1_1", "S", {weights = SQZ_W, name_map = "gluon_squeezenet1_1"})
  t:eq((a:forward(x) - b:forward(x)):abs():max():item(), 0, "text-file map = built-in map")
  f = assert(io.open(mapfile, "w"))
  f:write("squeezenet0_conv0_weight\n")
  f:close()
  t:raises(function() lossnet.new("squeezenet1_1", "E", {weights = SQZ_W, name_map = mapfile}) end, "line 1")
  os.remove(mapfile)
  t:raises(function() lossnet.new("squeezenet1_1", "E", {weights = SQZ_W, name_map = "nope"}) end,
    "gluon_squeezenet1_1")
  local msg = t:raises(function() lossnet.new("squeezenet1_1", "E", {weights = SQZ_W}) end, SQZ_W)
  t:ok(msg:find("features.0.weight", 1, true) ~= nil, "names the missing key: " .. msg)
  t:raises(function() lossnet.new("squeezenet1_1", "E", {weights = "random:1", name_map = "gluon_squeezenet1_1"}) end)
end)

return suite

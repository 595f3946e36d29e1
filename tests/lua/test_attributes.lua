-- dpl.attributes and experiments/attributes.lua: the loss-network attributes of the paper (section V, Tables I-II).
--  * References from tests/ref/attributes_ref.py (torchvision 0.14, made at test time): parameters of every whole
--    model and of the truncated children at E, S, M, L for all 14 architectures; for FLOPS_ARCHS at 224 x 224 the
--    forward cost counted by forward hooks on torch's leaf modules (ptflops's convention), the feature shapes, and
--    the depth as the longest conv / matmul chain in torch's own autograd graph. dpl must give the same integers.
--  * Cross-checks against the paper's Table I: MFLOPs within 1.5% (SqueezeNet 1.1 is 1.1% off, the others < 0.9%) and the depths where our definition reproduces them
--    (EfficientNet and Inception v3 come out 82 / 48: see lua/dpl/models/attributes.lua).
--  * Flags per architecture (skip connections, branching, 1x1 convolutions, batch norm) as the architectures are
--    built, and per layer (the ResNets' E layer has no skip connection yet).
--  * The script: the table, --csv, --layer, --size and errors.
local dpl = require "dpl"
local test = require "dpl.test"
local attributes = require "dpl.models.attributes"
local lossnet = require "dpl.models.lossnet"
local S = test.suite("attributes", {configurations = {"default"}})   -- default only: host-side counting

local FLOPS_ARCHS = {"squeezenet1_1", "resnet18", "googlenet", "efficientnet_b0", "inception_v3"}
-- paper Table I: depth and MFLOPs at 224 x 224
local PAPER = {
  vgg11 = {11, 7637}, vgg16 = {16, 15517}, vgg16_bn = {16, 15544}, vgg19 = {19, 19682}, resnet18 = {18, 1827},
  resnet50 = {50, 4143}, resnext50_32x4d = {50, 4298}, googlenet = {22, 1516}, inception_v3 = {49, 2850},
  efficientnet_b0 = {81, 407}, efficientnet_b7 = {271, 5308}, alexnet = {8, 717}, densenet121 = {121, 2899},
  squeezenet1_1 = {18, 360},
}
local DEPTH_DIFFERS = {inception_v3 = 48, efficientnet_b0 = 82, efficientnet_b7 = 274}

local here = arg[0]:match("^(.*)/[^/]*$") or "."
local root = here .. "/.."
local reffile = os.tmpname()
local made = os.execute(("/usr/bin/python3 %s/tests/ref/attributes_ref.py %s 224 %s >%s.log 2>&1"):format(root,
  reffile, table.concat(FLOPS_ARCHS, " "), reffile))
made = made == 0 or made == true
S.teardown = function() os.execute(("rm -f '%s' '%s.log' '%s.csv'"):format(reffile, reffile, reffile)) end

-- ref[kind][arch][index or "total"] = {numbers...}
local ref = {}
if made then
  for line in io.lines(reffile) do
    local w = {}
    for tok in line:gmatch("%S+") do w[#w + 1] = tok end
    local kind, arch = w[1], w[2]
    ref[kind] = ref[kind] or {}
    ref[kind][arch] = ref[kind][arch] or {}
    if kind:match("^layer_") then
      local v = {}
      for i = 4, #w do v[#v + 1] = tonumber(w[i]) end
      ref[kind][arch][tonumber(w[3])] = v
    else
      ref[kind][arch] = tonumber(w[3])
    end
  end
end

local function need_refs(t)
  if not made then
    local f = io.open(reffile .. ".log")
    local log = f and f:read("*a") or ""
    if f then f:close() end
    t:ok(false, "tests/ref/attributes_ref.py failed (python3-torch and python3-torchvision are installed by " ..
      ".ci/install-deps.sh): " .. log:sub(-600))
  end
end

S:add("reference generation with python3-torch and python3-torchvision", function(t) need_refs(t) end)

-- skip, branch, conv1x1, batchnorm of each whole model (see lua/dpl/models/attributes.lua for the definitions)
local FLAGS = {
  alexnet = {false, false, false, false}, vgg11 = {false, false, false, false},
  vgg16 = {false, false, false, false}, vgg16_bn = {false, false, false, true}, vgg19 = {false, false, false, false},
  resnet18 = {true, false, true, true}, resnet50 = {true, false, true, true},
  resnext50_32x4d = {true, true, true, true}, googlenet = {false, true, true, true},
  inception_v3 = {false, true, true, true}, efficientnet_b0 = {true, false, true, true},
  efficientnet_b7 = {true, false, true, true}, densenet121 = {true, false, true, true},
  squeezenet1_1 = {false, true, true, false},
}
local FLAG_KEYS = {"skip", "branch", "conv1x1", "batchnorm"}

S:add("all 14 archs: parameters (whole and up to each layer) equal torchvision's; flags", function(t)
  need_refs(t)
  for _, arch in ipairs(lossnet.ORDER) do
    local a = attributes.static(arch)
    t:eq(a.params, ref.params[arch], arch .. " parameters")
    for _, name in ipairs(lossnet.LAYER_NAMES) do
      local r = a.layers[name]
      t:eq(r.params, ref.layer_params[arch][r.index][1], ("%s parameters up to %s (child %d)"):format(arch, name,
        r.index))
    end
    for k, key in ipairs(FLAG_KEYS) do
      t:eq(a.flags[key], FLAGS[arch][k], arch .. " " .. key)
      -- at L every flag of the model is already there (the classifier heads add none)
      t:eq(a.layers.L.flags[key], a.flags[key], arch .. " " .. key .. " at L")
    end
    collectgarbage()
  end
end)

S:add("flags per layer", function(t)
  local r = attributes.static("resnet18", {layers = {"E", "S"}})
  t:eq(r.layers.E.flags.skip, false, "resnet18 E (conv1, bn1, relu): no skip connection yet")
  t:eq(r.layers.S.flags.skip, true, "resnet18 S (layer1): skip connections")
  t:eq(r.layers.E.flags.batchnorm, true, "resnet18 E: bn1")
  local s = attributes.static("squeezenet1_1", {layers = {"E", "S"}})
  t:eq(s.layers.E.flags.branch, false, "squeezenet E: no Fire module yet")
  t:eq(s.layers.E.flags.conv1x1, false, "squeezenet E: no 1x1 conv yet")
  t:eq(s.layers.S.flags.branch, true, "squeezenet S: Fire")
  t:eq(s.layers.S.flags.conv1x1, true, "squeezenet S: Fire's squeeze")
end)

for _, arch in ipairs(FLOPS_ARCHS) do
  S:add(arch .. ": FLOPs, feature shapes and depth equal torchvision's; Table I", function(t)
    need_refs(t)
    local a = attributes.compute(arch, {size = 224})
    t:eq(a.size, 224)
    t:eq(a.flops, ref.flops[arch], arch .. " forward FLOPs of the whole model")
    t:eq(a.depth, ref.depth[arch], arch .. " depth (longest conv / matmul chain in torch's autograd graph)")
    for _, name in ipairs(a.order) do
      local r = a.layers[name]
      local lf = ref.layer_flops[arch][r.index]
      local what = ("%s layer %s (child %d)"):format(arch, name, r.index)
      t:eq(r.flops, lf[1], what .. " FLOPs")
      t:eq(r.channels, lf[2], what .. " channels")
      t:eq(r.features, lf[2] * lf[3] * lf[4], what .. " features")
      t:eq(r.depth, ref.layer_depth[arch][r.index][1], what .. " depth")
      t:ok(r.flops <= a.flops and r.depth <= a.depth and r.params <= a.params, what .. " within the whole model")
    end
    local pd, pm = PAPER[arch][1], PAPER[arch][2]
    t:eq(a.depth, DEPTH_DIFFERS[arch] or pd, arch .. " depth against Table I")
    t:ok(math.abs(a.mflops - pm) <= 0.015 * pm, ("%s: %.1f MFLOPs, Table I %d"):format(arch, a.mflops, pm))
  end)
end

S:add("the other archs: depth and MFLOPs against Table I (alexnet, resnet50)", function(t)
  for _, arch in ipairs {"alexnet", "resnet50"} do
    local a = attributes.compute(arch, {size = 224, layers = {"E"}})
    t:eq(a.depth, PAPER[arch][1], arch .. " depth, Table I")
    t:ok(math.abs(a.mflops - PAPER[arch][2]) <= 0.015 * PAPER[arch][2],
      ("%s: %.1f MFLOPs, Table I %d"):format(arch, a.mflops, PAPER[arch][2]))
    collectgarbage()
  end
end)

S:add("layers by child index; bad layers and architectures are errors", function(t)
  local a = attributes.compute("alexnet", {size = 64, layers = {"3", 11}})
  t:eq(a.layers["3"].index, 3)
  t:eq(a.layers["11"].channels, 256)
  t:eq(a.layers["11"].features, 256 * 3 * 3, "alexnet L at 64: 256 x 3 x 3 (docs/benchmarks/lossnets.md)")
  t:raises(function() attributes.compute("alexnet", {layers = {99}}) end, "does not exist")
  t:raises(function() attributes.static("alexnet", {layers = {"Q"}}) end, "unknown layer")
  t:raises(function() attributes.static("nosuchnet") end, "unknown architecture")
end)

S:add("every architecture rejects a child index it does not have, naming itself and the valid range", function(t)
  for _, arch in ipairs(lossnet.ORDER) do
    for _, bad in ipairs {999, -1, 1.5} do
      local msg = t:raises(function() lossnet.build(arch, bad) end, arch .. ": upto must be an integer in 0..")
      t:ok(msg:find("children), got " .. tostring(bad), 1, true), msg)
    end
  end
  -- the constructors directly
  local vgg = require "dpl.models.vgg"
  t:raises(function() vgg.vgg16({upto = 31}) end, "vgg16: upto must be an integer in 0..30 (features has 31 children)")
  t:raises(function() vgg.vgg16({upto = "3"}) end, "vgg16: upto must be an integer in 0..30")
end)

S:add("experiments/attributes.lua: table and CSV", function(t)
  local i = -1
  while arg[i - 1] do i = i - 1 end
  local dplrun = arg[i]
  local csv = reffile .. ".csv"
  local p = io.popen(("DPL_NO_VULKAN=1 %s --quiet %s/experiments/attributes.lua --arch squeezenet1_1 --arch alexnet " ..
    "--size 64 --csv '%s' 2>&1; echo rc=$?"):format(dplrun, root, csv))
  local out = p:read("*a")
  p:close()
  t:ok(out:find("rc=0", 1, true), out)
  t:ok(out:find("squeezenet1_1%s+L%s+12"), "the table has squeezenet1_1 L: " .. out)
  local rows = {}
  local f = assert(io.open(csv))
  local header = f:read("*l")
  for line in f:lines() do rows[#rows + 1] = line end
  f:close()
  t:eq(header, "arch,layer,child,params_layer,params_total,params_frac,depth_layer,depth_total,mflops_layer," ..
    "mflops_total,channels,features,top1,skip,branch,conv1x1,batchnorm,size")
  t:eq(#rows, 8, "2 archs x 4 layers")
  local a = attributes.compute("alexnet", {size = 64, layers = {"M"}})
  local m = a.layers.M
  local want = ("alexnet,M,7,%d,%d,%.4g,%d,%d,%.1f,%.1f,%d,%d,56.52,no,no,no,no,64"):format(m.params, a.params,
    m.params / a.params, m.depth, a.depth, m.mflops, a.mflops, m.channels, m.features)
  t:eq(rows[7], want, "the alexnet M row")
  p = io.popen(("%s --quiet %s/experiments/attributes.lua --arch nosuchnet 2>&1; echo rc=$?"):format(dplrun, root))
  out = p:read("*a")
  p:close()
  t:ok(out:find("--arch nosuchnet: unknown architecture", 1, true) and out:find("rc=2", 1, true), out)
end)

return S

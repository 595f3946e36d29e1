-- Model definitions against torchvision 0.14: alexnet, vgg11, vgg16, vgg16_bn, vgg19 (lua/dpl/models/alexnet.lua,
-- vgg.lua), squeezenet1_1 (squeezenet.lua), resnet18, resnet50, resnext50_32x4d (resnet.lua) and densenet121
-- (densenet.lua).
--  * References made at test time by tests/ref/architectures_ref.py with Debian's python3-torch and python3-torchvision:
--    a seeded random state_dict per arch (BatchNorm weight, bias, running_mean and running_var randomised too), a
--    2 x 3 x 64 x 64 input, the reference truncation's output (docs/benchmarks/lossnets.md: the children of the list
--    attribute run in order) at the E, S, M and L indices, and the full model's logits. The AlexNet and VGG classifier
--    weights are low-rank (A @ B, written as A and B) to keep the files small; the test rebuilds them with a matmul.
--  * Per arch: the full model's state_dict has torchvision's keys in torchvision's order; opts.upto builds exactly the
--    children up to the index (its keys are the torchvision keys of those children, nothing else); the model built
--    with upto = L, loaded with its keys from the reference, reproduces every extraction output on the CPU and on
--    Vulkan (max |error| <= 1e-4 x max |reference|) with the shapes of docs/benchmarks/lossnets.md; BatchNorm archs
--    also in train mode (batch statistics) at the M index on the CPU; the input gradient of sum(out_M * g) through the
--    frozen model (as a loss network is used) matches PyTorch's float64 gradient in the L2 norm on the CPU (see
--    run_gradient); the full model's eval forward reproduces torchvision's logits on the CPU.
--  * dpl.cat keeps its own list of inputs (DenseNet appends to the list it passes).
--  * The real ImageNet SqueezeNet 1.1 of the ONNX model zoo ($DPL_SHARED/data/SqueezeNet1.1, Gluon names mapped to
--    torchvision's as in shared/data/SOURCES.md) loads strictly into squeezenet1_1 and reproduces the three shipped
--    outputs (raw 0..255 inputs, no normalisation) on the CPU and on Vulkan.
local dpl = require "dpl"
local test = require "dpl.test"
-- default only: long; the device paths it uses are covered by the op suites in every configuration
local suite = test.suite("architectures", {configurations = {"default"}})

local vulkan = dpl.vulkan_available()
local TOL = 1e-4
local GRAD_TOL = 2e-2

-- Every test ends with the Vulkan queue drained (work pending at os.exit trips the validation layer at shutdown).
local S = suite

-- ---- references ---------------------------------------------------------------------------------------------------
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local root = here .. "/.."
local refdir = os.tmpname() .. "_architectures"
local made = os.execute(("/usr/bin/python3 %s/tests/ref/architectures_ref.py %s >%s.log 2>&1"):format(root, refdir, refdir))
made = made == 0 or made == true
suite.teardown = function() os.execute(("rm -rf '%s' '%s.log'"):format(refdir, refdir)) end

local function lines(path)
  local out = {}
  local f = io.open(path)
  if not f then return nil end
  for l in f:lines() do if l ~= "" then out[#out + 1] = l end end
  f:close()
  return out
end

-- arch -> family module, E/S/M/L indices, whether it has BatchNorm, extraction shapes (C, H, W) at 64 x 64
-- (docs/benchmarks/lossnets.md)
local VGG_SHAPES = {{64, 64, 64}, {128, 32, 32}, {256, 16, 16}, {512, 4, 4}}
local RESNET_SHAPES = {{64, 32, 32}, {256, 16, 16}, {512, 8, 8}, {2048, 2, 2}}
local ARCHS = {
  {"alexnet", "alexnet", {1, 4, 7, 11}, false, {{64, 15, 15}, {192, 7, 7}, {384, 3, 3}, {256, 3, 3}}},
  {"vgg11", "vgg", {1, 4, 9, 19}, false, VGG_SHAPES},
  {"vgg16", "vgg", {3, 8, 15, 29}, false, VGG_SHAPES},
  {"vgg16_bn", "vgg", {5, 12, 22, 42}, true, VGG_SHAPES},
  {"vgg19", "vgg", {3, 8, 17, 35}, false, VGG_SHAPES},
  {"squeezenet1_1", "squeezenet", {1, 3, 7, 12}, false, {{64, 31, 31}, {128, 15, 15}, {256, 7, 7}, {512, 3, 3}}},
  {"resnet18", "resnet", {2, 4, 5, 7}, true, {{64, 32, 32}, {64, 16, 16}, {128, 8, 8}, {512, 2, 2}}},
  {"resnet50", "resnet", {2, 4, 5, 7}, true, RESNET_SHAPES},
  {"resnext50_32x4d", "resnet", {2, 4, 5, 7}, true, RESNET_SHAPES},
  {"densenet121", "densenet", {2, 4, 6, 10}, true, {{64, 32, 32}, {256, 16, 16}, {512, 8, 8}, {1024, 2, 2}}},
}

local function ctor(a) return require("dpl.models." .. a[2])[a[1]] end

-- loads the reference tensors named by the model's own state_dict (each must exist) and copies them in
local function load_ref(t, model, arch, device)
  local dir = refdir .. "/" .. arch .. "/"
  local lowrank = {}
  for _, k in ipairs(lines(dir .. "lowrank.txt") or {}) do lowrank[k] = true end
  local _, order = model:state_dict()
  local sd = {}
  for _, key in ipairs(order) do
    if lowrank[key] then
      local a = dpl.load_npy(dir .. key .. ".lowrank_a.npy", {device = device})
      local b = dpl.load_npy(dir .. key .. ".lowrank_b.npy", {device = device})
      sd[key] = a:matmul(b)
    else
      local f = io.open(dir .. key .. ".npy")
      t:ok(f ~= nil, ("%s: the model's key %s is not in torchvision's state_dict"):format(arch, key))
      f:close()
      sd[key] = dpl.load_npy(dir .. key .. ".npy", {device = device})
    end
  end
  model:load_state_dict(sd)
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

local function need_refs(t)
  if not made then
    local log = io.open(refdir .. ".log")
    local text = log and log:read("*a") or ""
    if log then log:close() end
    t:ok(false, "tests/ref/architectures_ref.py failed (python3-torch and python3-torchvision are installed by " ..
      ".ci/install-deps.sh): " .. text:sub(-600))
  end
end

S:add("reference generation with python3-torch and python3-torchvision", function(t) need_refs(t) end)

local function run_extraction(t, a, device, mode)
  need_refs(t)
  local arch, layers = a[1], a[3]
  local upto = mode == "train" and layers[3] or layers[4]
  local model = ctor(a)({upto = upto, device = device})
  t:eq(#model.extract_list, upto + 1, arch .. ": children built with upto = " .. upto)
  load_ref(t, model, arch, device)
  if mode == "train" then model:training() else model:evaluate() end
  local x = dpl.load_npy(refdir .. "/input.npy", {device = device})
  dpl.no_grad(function()
    local h = x
    for i, child in ipairs(model.extract_list) do
      h = child:forward(h)
      local idx = i - 1
      if mode == "train" then
        if idx == upto then
          check_close(t, h, dpl.load_npy(("%s/%s/train_%d.npy"):format(refdir, arch, idx)),
            ("%s train-mode child %d on %s"):format(arch, idx, device))
        end
      else
        for k, l in ipairs(layers) do
          if l == idx then
            local s = a[5][k]
            t:shape(h, {2, s[1], s[2], s[3]}, ("%s layer %s (child %d) shape, docs/benchmarks/lossnets.md"):format(arch,
              ({"E", "S", "M", "L"})[k], idx))
            check_close(t, h, dpl.load_npy(("%s/%s/out_%d.npy"):format(refdir, arch, idx)),
              ("%s layer %s (child %d) on %s"):format(arch, ({"E", "S", "M", "L"})[k], idx, device))
          end
        end
      end
    end
  end)
end

-- the input gradient through the frozen model truncated at M (eval mode), as a loss network is used
local function run_gradient(t, a, device)
  need_refs(t)
  local arch, m = a[1], a[3][3]
  local model = ctor(a)({upto = m, device = device})
  load_ref(t, model, arch, device)
  model:evaluate()
  model:freeze()
  local x = dpl.load_npy(refdir .. "/input.npy", {device = device}):requires_grad_()
  local h = x
  for _, child in ipairs(model.extract_list) do h = child:updateOutput(h) end
  local g = dpl.load_npy(("%s/%s/gradout_%d.npy"):format(refdir, arch, m), {device = device})
  h:backward(g)
  t:ok(x.grad ~= nil, arch .. ": no gradient reached the input")
  -- ReLU kinks: a pre-activation within rounding of zero may fall on the other side of the kink than in the
  -- reference, which moves gradient entries by O(1) (the forward is continuous there, the gradient is not): PyTorch's
  -- own float32 gradient for resnet50 here is off its float64 one by 1.03 (max |grad| 35), 0.6% in the L2 norm. So
  -- the reference is float64 and the gradient is compared in the L2 norm, ||got - ref|| <= GRAD_TOL x ||ref||; a
  -- wrong backward is off by far more (the cat-list bug fixed with this suite gave 72% on densenet121).
  local ref = dpl.load_npy(("%s/%s/gradin_%d.npy"):format(refdir, arch, m))
  t:shape(x.grad, ref:size(), arch .. " input gradient")
  local diff = x.grad:to("cpu") - ref
  local err, norm = math.sqrt((diff * diff):sum():item()), math.sqrt((ref * ref):sum():item())
  t:ok(err == err and err <= GRAD_TOL * norm, ("%s input gradient through child %d on %s: ||error|| %.4g > %g x ||ref|| %.4g"):format(
    arch, m, device, err, GRAD_TOL, norm))
  local with_grad = 0
  for _, p in ipairs(model:parameters()) do if p.grad ~= nil then with_grad = with_grad + 1 end end
  t:eq(with_grad, 0, arch .. ": frozen parameters with a gradient")
end

for _, a in ipairs(ARCHS) do
  local arch = a[1]

  S:add(arch .. ": state_dict keys and order as torchvision; full classification forward on cpu", function(t)
    need_refs(t)
    local keys = lines(refdir .. "/" .. arch .. "/keys.txt")
    local model = ctor(a)({device = "cpu", init = false})   -- every weight is loaded next
    local _, order = model:state_dict()
    t:eq(#order, #keys, arch .. ": number of state_dict keys")
    for i = 1, #keys do t:eq(order[i], keys[i], ("%s: state_dict key %d"):format(arch, i)) end
    t:eq(#model.extract_list, #require("dpl.models." .. a[2]).info[arch].children, arch .. ": full extract_list")
    load_ref(t, model, arch, "cpu")
    model:evaluate()
    local x = dpl.load_npy(refdir .. "/input.npy")
    local y = dpl.no_grad(function() return model:forward(x) end)
    check_close(t, y, dpl.load_npy(refdir .. "/" .. arch .. "/logits.npy"), arch .. " logits (eval) on cpu")
  end)

  S:add(arch .. ": upto builds only the children up to each extraction index", function(t)
    need_refs(t)
    local keys = lines(refdir .. "/" .. arch .. "/keys.txt")
    local info = require("dpl.models." .. a[2]).info[arch]
    local prefix = info.list == "features" and "features." or ""
    for _, upto in ipairs(a[3]) do
      local model = ctor(a)({upto = upto, device = "cpu", init = false})
      t:eq(#model.extract_list, upto + 1, ("%s upto %d: #extract_list"):format(arch, upto))
      local built = {}
      for i = 1, upto + 1 do built[prefix .. info.children[i]] = true end
      local expected = {}
      for _, k in ipairs(keys) do
        local head = prefix == "" and k:match("^([^.]+)%.") or k:match("^(features%.[^.]+)%.")
        if head and built[head] then expected[#expected + 1] = k end
      end
      local _, order = model:state_dict()
      t:eq(#order, #expected, ("%s upto %d: number of state_dict keys"):format(arch, upto))
      for i = 1, #expected do t:eq(order[i], expected[i], ("%s upto %d: key %d"):format(arch, upto, i)) end
      -- the model's own children: the list (and nothing else) for model-list archs, `features` alone otherwise
      local own = model:children()
      if prefix == "" then
        t:eq(#own, upto + 1, arch .. ": the truncated model's children")
      else
        t:eq(#own, 1, arch .. ": the truncated model has only `features`")
      end
    end
    t:raises(function() ctor(a)({upto = #info.children}) end, "upto")
  end)

  S:add(arch .. ": extraction layers E, S, M, L on cpu", function(t) run_extraction(t, a, "cpu", "eval") end)
  if a[4] then
    S:add(arch .. ": train mode (batch statistics) at M on cpu", function(t) run_extraction(t, a, "cpu", "train") end)
  end
  S:add(arch .. ": input gradient at M on cpu", function(t) run_gradient(t, a, "cpu") end)
  S:add(arch .. ": extraction layers E, S, M, L on vulkan", function(t)
    if not vulkan then t:skip("no Vulkan device") end
    run_extraction(t, a, "vulkan", "eval")
  end)
end

-- DenseNet's block appends each layer's output to the list it handed to cat: the cat node must keep its own inputs
-- (it took the caller's table, so the appended tensors became inputs too and made a cycle in the graph)
S:add("dpl.cat keeps its own input list when the caller's list grows afterwards", function(t)
  -- f_i = sum over channels of cat(f_0 .. f_(i-1)), times a weight; y = cat(f_0 .. f_4)
  local function grad(fresh)
    local x = dpl.randn({2, 3, 4, 4}, {seed = 1}):requires_grad_()
    local feats = {x}
    for i = 1, 4 do
      local h = dpl.cat(fresh and {unpack(feats)} or feats, 2)
      feats[i + 1] = h:sum(2, true) * (0.5 + i)
    end
    local y = dpl.cat(feats, 2)
    y:backward(dpl.randn(y:size(), {seed = 2}))
    return x.grad
  end
  local shared, copied = grad(false), grad(true)
  local err = (shared - copied):abs():max():item()
  t:ok(err <= 1e-5 * copied:abs():max():item(), ("gradient with the caller's list %.4g off the one with copies"):format(err))
end)

-- ---- ImageNet SqueezeNet 1.1 (ONNX model zoo, Gluon names) ---------------------------------------------------------
local shared = os.getenv("DPL_SHARED") or (root .. "/../shared")
local SQZ = shared .. "/data/SqueezeNet1.1/squeezenet1.1_nchw"

-- Gluon squeezenet0_convN -> torchvision squeezenet1_1 names (shared/data/SOURCES.md)
local function gluon_name_map()
  local map = {conv0 = "features.0", conv25 = "classifier.1"}
  local fire_at = {3, 4, 6, 7, 9, 10, 11, 12}
  for i = 0, 7 do
    local base = "features." .. fire_at[i + 1]
    map["conv" .. (3 * i + 1)] = base .. ".squeeze"
    map["conv" .. (3 * i + 2)] = base .. ".expand1x1"
    map["conv" .. (3 * i + 3)] = base .. ".expand3x3"
  end
  return map
end

local function imagenet_squeezenet(t, device)
  test.shared(t, "data/SqueezeNet1.1/squeezenet1.1_nchw/weights/squeezenet0_conv0_weight.npy")
  local sd, n = {}, 0
  for gluon, tv in pairs(gluon_name_map()) do
    for _, kind in ipairs {"weight", "bias"} do
      sd[tv .. "." .. kind] = dpl.load_npy(("%s/weights/squeezenet0_%s_%s.npy"):format(SQZ, gluon, kind),
        {device = device})
      n = n + 1
    end
  end
  t:eq(n, 52, "SqueezeNet 1.1 tensors")
  local model = require("dpl.models.squeezenet").squeezenet1_1({device = device})
  model:load_state_dict(sd)      -- strict: every key of the model, nothing else
  model:evaluate()
  local params = 0
  for _, p in ipairs(model:parameters()) do params = params + p:numel() end
  t:eq(params, 1235496, "SqueezeNet 1.1 parameters")
  for k = 0, 2 do
    local dir = ("%s/test_data_set_%d/"):format(SQZ, k)
    local x = dpl.load_npy(dir .. "input_0.npy", {device = device})
    t:shape(x, {1, 3, 224, 224}, "input " .. k)
    local ref = dpl.load_npy(dir .. "output_0.npy")
    local y = dpl.no_grad(function() return model:forward(x) end)
    check_close(t, y, ref, ("ImageNet SqueezeNet 1.1 test_data_set_%d on %s"):format(k, device))
    t:eq(y:to("cpu"):argmax():item(), ref:argmax():item(), "top-1 class, test_data_set_" .. k)
  end
end

S:add("squeezenet1_1: ImageNet weights reproduce the model zoo outputs on cpu", function(t)
  imagenet_squeezenet(t, "cpu")
end)
S:add("squeezenet1_1: ImageNet weights reproduce the model zoo outputs on vulkan", function(t)
  if not vulkan then t:skip("no Vulkan device") end
  imagenet_squeezenet(t, "vulkan")
end)

return suite

-- Benchmark 3's pieces (lua/dpl/models/unet.lua, lua/dpl/benchmarks/delineation.lua, lua/dpl/metrics/delineation.lua)
-- against PyTorch and numpy (tests/ref/delineation_ref.py):
--  * the U-Net: the reference's state_dict keys in order; a torch.save checkpoint (batch-norm statistics and affine
--    parameters randomised) loads and gives PyTorch's outputs in eval and train mode, the input gradient and every
--    parameter gradient of sum(y * g) in train mode, and the K = 3 refinement; a file dpl writes loads back.
--  * Training parity: from the same initial weights and the same 2 batches (2 x 3 x 32 x 32, masks in {0, 1}), 2
--    Adam(1e-3) steps of the full loss (K = 3, iteration-weighted BCE + 0.5 x iteration-weighted feature MSE, the loss
--    network in training mode with ImageNet normalisation) with vgg16 M (a network with .features, which the reference
--    code can run) and resnet18 M (which it cannot), against PyTorch's float64 run (the exact result every float32 run
--    approximates), on the CPU and on Vulkan. Tolerances: the loss and its two parts within 1e-4 relative at the first
--    step and 2e-3 at the second; every weight tensor within 5% of the exact update, ||w - w64|| <= 0.05 ||w64 - w0||
--    (measured: 0.8% on the CPU, 1.4% on lavapipe, with resnet18)
--    (PyTorch's own float32 run is printed beside); the loss network's running statistics (updated by the 4 forwards of
--    each step, in the reference's order) within 1e-4.
--  * The scores against numpy on hand-made maps, strict and relaxed (tolerance 0, 1, 1.5, 2): a random pair, empty
--    ground truth, empty prediction, both empty, values exactly at the thresholds.
local dpl = require "dpl"
local test = require "dpl.test"
local unet = require "dpl.models.unet"
local D = require "dpl.benchmarks.delineation"
local delin = require "dpl.metrics.delineation"
local perceptual = require "dpl.perceptual"
local optim = require "dpl.optim"
local S = test.suite("delineation", {configurations = {"default"}})   -- compares the CPU and Vulkan itself

local vulkan = dpl.vulkan_available()   -- after_each: dpl.test's default (collect garbage, drain Vulkan)
local function devices() return vulkan and {"cpu", "vulkan"} or {"cpu"} end

local refs = test.torch_refs("delineation_ref.py", "delineation", {runs = {"make"}})
local need_refs, ref, refdir = refs.need, refs.ref, refs.dir
local root = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/.."
S.teardown = refs.remove

local function norm(x) return math.sqrt(x:square():sum():item()) end

S:add("structure: the reference's state_dict keys in order, shapes, seeded initialisation", function(t)
  need_refs(t)
  local net = unet.new({seed = 1, device = "cpu"})
  local _, order = net:state_dict()
  local keys = {}
  for line in io.lines(refdir .. "/keys.txt") do keys[#keys + 1] = line end
  t:eq(table.concat(order, "\n"), table.concat(keys, "\n"), "state_dict keys")
  for _, dev in ipairs(devices()) do
    local b = unet.new({seed = 1, device = dev}):state_dict()
    for name, v in pairs(net:state_dict()) do t:close(b[name], v, {atol = 0, rtol = 0}, dev .. " " .. name) end
  end
  local maps = dpl.no_grad(function() return unet.refine(net, dpl.rand({2, 3, 48, 32}, {seed = 2}), 2) end)
  t:eq(#maps, 2)
  t:shape(maps[2], {2, 1, 48, 32})
  t:ok(maps[2]:min():item() > 0 and maps[2]:max():item() < 1, "maps outside (0, 1)")
  local w = net:state_dict()["u2.layer.up_3_tconv.weight"]   -- ConvTranspose2d: fan_in from dim 1 (16 x 4 x 4)
  t:ok(w:abs():max():item() <= 1 / math.sqrt(16 * 16) and w:abs():max():item() > 0.9 / math.sqrt(16 * 16), "init bound")
  t:raises(function() net:forward(dpl.rand({1, 4, 40, 40})) end, "multiples of 16")
  t:raises(function() unet.refine(net, dpl.rand({1, 4, 32, 32}), 1) end, "N x 3 x H x W")
end)

S:add("a PyTorch checkpoint loads and gives PyTorch's outputs (eval, train), gradients and refinement", function(t)
  need_refs(t)
  for _, dev in ipairs(devices()) do
    local net = D.load_model(refdir .. "/unet.pth", {device = dev})
    local x = ref("x", dev)
    local y = dpl.no_grad(function() return net:forward(x) end)
    t:close(y, ref("eval"), {atol = 2e-6, rtol = 1e-4}, dev .. " eval")
    net:training()
    local xg = ref("x", dev):requires_grad_()
    local yt = net:updateOutput(xg)
    t:close(yt, ref("train"), {atol = 2e-6, rtol = 1e-4}, dev .. " train")
    local probe = (yt * ref("g", dev)):sum()
    probe:backward()
    t:close(xg.grad, ref("grad_x"), {atol = 1e-5, rtol = 1e-3}, dev .. " input gradient")
    local worst, worst_name = 0, ""
    for name, p in pairs(net:state_dict()) do
      if p.requires_grad then
        local want = ref("grad_" .. name)
        local r = norm(p.grad:to("cpu") - want) / norm(want)
        if r > worst then worst, worst_name = r, name end
        t:ok(r <= 1e-3, ("%s gradient of %s: %.2g relative"):format(dev, name, r))
      end
    end
    io.stderr:write(("    %s: parameter gradients within %.2g of PyTorch's (%s)\n"):format(dev, worst, worst_name))
    local fresh = D.load_model(refdir .. "/unet.pth", {device = dev})
    fresh:training()
    local m3 = dpl.no_grad(function() return unet.refine(fresh, x:narrow(2, 1, 3):contiguous(), 3)[3] end)
    t:close(m3, ref("refine_3"), {atol = 1e-5, rtol = 1e-4}, dev .. " K = 3 refinement")
  end
  -- a file dpl writes loads back (with its provenance); a file of another network is refused in one line
  local net = D.load_model(refdir .. "/unet.pth", {device = "cpu"})
  D.save_model(net, refdir .. "/dpl_unet.safetensors", {arch = "vgg16", layer = "M", epoch = 3})
  local back, meta = D.load_model(refdir .. "/dpl_unet.safetensors")
  t:eq(meta.arch, "vgg16")
  t:eq(meta.layer, "M")
  local x = ref("x", "cpu")
  t:close(dpl.no_grad(function() return back:forward(x) end), dpl.no_grad(function() return net:forward(x) end),
    {atol = 0, rtol = 0}, "reloaded")
  local wrapped = D.load_model(refdir .. "/wrapped.t7")   -- the reference's {"net": state_dict}
  t:close(dpl.no_grad(function() return wrapped:forward(x) end), ref("eval"), {atol = 2e-6, rtol = 1e-4}, "wrapped")
  local ok, err = pcall(D.load_model, refdir .. "/parity_vgg16_M_loss.pth")
  t:ok(not ok and tostring(err):find("not a U-Net of this benchmark", 1, true), tostring(err))
end)

-- the runs compared with the exact one: the CPU, and Vulkan with its default convolution families
local RUNS = {{device = "cpu", allowed = 0.05}, {device = "vulkan", allowed = 0.05}}

for _, case in ipairs {{"vgg16", "M"}, {"resnet18", "M"}} do
  local arch, layer = case[1], case[2]
  S:add(("training parity with PyTorch: 2 Adam steps of the K = 3 loss with a %s-%s loss network"):format(arch, layer),
    function(t)
    need_refs(t)
    local p = ("parity_%s_%s_"):format(arch, layer)
    local expected = {loss = ref(p .. "losses"):tolist(), bce = ref(p .. "bce"):tolist(), mse = ref(p .. "mse"):tolist()}
    local init = dpl.load_tensors(refdir .. "/" .. p .. "init.pth", "cpu")
    local function parity(dev, allowed)
      local net = unet.new({device = dev})
      net:load_state_dict(init)
      net:training()
      local crit = perceptual.loss{arch = arch, layer = layer, weights = refdir .. "/" .. p .. "loss.pth", normalize = true,
                                   mode = "train", device = dev}
      crit:training()
      local opt = optim.Adam(net:parameters(), {lr = 1e-3})
      for k = 0, 1 do
        opt:zero_grad()
        local loss, bce, mse = D.loss(net, crit, ref(p .. "rgb_" .. k, dev), ref(p .. "mask_" .. k, dev), {K = 3, mu = 0.5})
        loss:backward()
        opt:step()
        local tol = k == 0 and 1e-4 or 2e-3
        t:near(loss:item(), expected.loss[k + 1], tol, ("%s loss at step %d"):format(dev, k + 1))
        t:near(bce:item(), expected.bce[k + 1], tol, ("%s BCE at step %d"):format(dev, k + 1))
        t:near(mse:item(), expected.mse[k + 1], tol, ("%s feature MSE at step %d"):format(dev, k + 1))
      end
      local sd, order = net:state_dict()
      local worst, worst32, worst_name = 0, 0, ""
      for _, name in ipairs(order) do
        if not name:match("num_batches_tracked$") then
          local got, want = sd[name]:to("cpu"), ref(p .. "final_" .. name)
          if name:match("running_") then
            t:close(got, want, {atol = 1e-4, rtol = 1e-3}, dev .. " " .. name)
          else
            local step = norm(want - init[name])
            local r, r32 = norm(got - want) / step, norm(ref(p .. "final32_" .. name) - want) / step
            t:ok(r <= allowed, ("%s %s: %.3f of the update from the exact run (allowed %.2f; PyTorch float32 %.3f)")
              :format(dev, name, r, allowed, r32))
            if r > worst then worst, worst32, worst_name = r, r32, name end
          end
        end
      end
      -- the loss network's batch norms (resnet18): running statistics after 2 x 4 training-mode forwards
      local checked = 0
      for name, v in pairs(crit:state_dict()) do
        local tv = name:match("running_.*$") and name:gsub("^net%.net%.", ""):gsub("^net%.", "")
        local f = tv and io.open(("%s/%slossnet_%s.npy"):format(refdir, p, tv))
        if f then
          f:close()
          t:close(v:to("cpu"), ref(p .. "lossnet_" .. tv), {atol = 1e-4, rtol = 1e-3}, dev .. " loss network " .. tv)
          checked = checked + 1
        end
      end
      if arch == "resnet18" then t:ok(checked >= 10, ("only %d loss-network statistics compared"):format(checked)) end
      io.stderr:write(("    %s %s-%s: weights within %.3f of the exact update (%s; PyTorch float32 %.3f)\n"):format(
        dev, arch, layer, worst, worst_name, worst32))
    end
    for _, run in ipairs(RUNS) do
      if run.device == "cpu" or vulkan then parity(run.device, run.allowed) end
    end
  end)
end

S:add("scores against numpy: strict and relaxed, empty ground truth / prediction, thresholds", function(t)
  need_refs(t)
  local rng = dpl.rand({6, 1, 24, 20}, {seed = 7})
  local cases = {}
  local function case(id, pred, gt, tol) cases[#cases + 1] = {id = id, pred = pred, gt = gt, tol = tol} end
  local gt = dpl.rand({1, 24, 20}, {seed = 8}):gt(0.75)
  local pred = rng:select(1, 1)
  for _, tol in ipairs {0, 1, 1.5, 2} do case("random_tol" .. tol, pred, gt, tol) end
  case("empty_gt", pred, dpl.zeros({1, 24, 20}), 2)
  case("empty_pred", dpl.zeros({1, 24, 20}), gt, 2)
  case("both_empty", dpl.zeros({1, 24, 20}), dpl.zeros({1, 24, 20}), 1)
  -- exactly float32(0.3) is not above 0.3; exactly 0.5 in the ground truth is not road
  local edge = dpl.full({1, 24, 20}, 0.3)
  local edge_gt = dpl.full({1, 24, 20}, 0.5)
  case("at_thresholds", edge:add(rng:select(1, 2):gt(0.5) * 1e-6), edge_gt:add(rng:select(1, 3):gt(0.6) * 0.1), 1)
  local lines = {}
  for _, c in ipairs(cases) do
    local pf, gf = ("%s/m_%s_p.npy"):format(refdir, c.id), ("%s/m_%s_g.npy"):format(refdir, c.id)
    c.pred:save_npy(pf)
    c.gt:save_npy(gf)
    lines[#lines + 1] = table.concat({c.id, pf, gf, tostring(c.tol)}, "\t")
  end
  local f = io.open(refdir .. "/metric_cases.txt", "w")
  f:write(table.concat(lines, "\n") .. "\n")
  f:close()
  local ok = os.execute(("/usr/bin/python3 %s/tests/ref/delineation_ref.py %s metrics >>%s.log 2>&1"):format(root, refdir,
    refdir))
  t:ok(ok == 0 or ok == true, "tests/ref/delineation_ref.py metrics failed")
  local expected = {}
  for line in io.lines(refdir .. "/metric_expected.txt") do
    local id, m, v = line:match("^([^\t]+)\t([^\t]+)\t(.+)$")
    expected[id .. "/" .. m] = tonumber(v)
  end
  local function same(got, want, what)
    if want ~= want then t:ok(got ~= got, what .. ": expected NaN, got " .. tostring(got))
    else t:near(got, want, 1e-12, what) end
  end
  for _, c in ipairs(cases) do
    local s = delin.scores(c.pred, c.gt, {tolerance = c.tol})
    for _, m in ipairs {"completeness", "correctness", "quality"} do same(s[m], expected[c.id .. "/" .. m], c.id .. " " .. m) end
    if c.tol > 0 then
      for _, m in ipairs {"relaxed_completeness", "relaxed_correctness", "relaxed_quality"} do
        same(s[m], expected[c.id .. "/" .. m], c.id .. " " .. m)
      end
    else
      t:eq(s.relaxed_quality, nil, "tolerance 0 gives the strict scores only")
      -- with a zero buffer the relaxed definitions are the strict ones (numpy computed both)
      same(s.quality, expected[c.id .. "/relaxed_quality"], "relaxed quality at tolerance 0")
      same(s.completeness, expected[c.id .. "/relaxed_completeness"], "relaxed completeness at tolerance 0")
    end
  end
  -- what the measures are on empty maps (docs/benchmarks/delineation.md, "Scores")
  local e = delin.scores(pred, dpl.zeros({1, 24, 20}), {tolerance = 2})
  t:ok(e.completeness ~= e.completeness and e.correctness == 0 and e.quality == 0, "empty ground truth")
  local p0 = delin.scores(dpl.zeros({1, 24, 20}), gt, {tolerance = 2})
  t:ok(p0.completeness == 0 and p0.correctness ~= p0.correctness and p0.quality == 0, "empty prediction")
  -- averaged over images, an undefined measure leaves its image out (skip_undefined), the others count
  local m = delin.mean_scores({pred, pred}, {gt, dpl.zeros({1, 24, 20})}, {skip_undefined = true})
  t:near(m.completeness, delin.scores(pred, gt).completeness, 1e-15, "mean completeness over the defined image")
  t:eq(m.counted.completeness, 1)
  t:eq(m.counted.quality, 2)
end)

S:add("the analysis reads the fixed evaluation's scores and leaves the faithful ones out", function(t)
  local results, analysis = require "dpl.results", require "dpl.benchmarks.analysis"
  local store = refdir .. "_analysis.sqlite"
  os.remove(store)
  local db = results.open(store)
  local function record(eval, q)
    db:record({experiment = "delineation", arch = "vgg16", layer = "E", code_version = "test",
               config = {eval = eval, arch = "vgg16", layer = "E"},
               scores = {["test.quality"] = q, ["test.completeness"] = q, ["test.correctness"] = q}})
  end
  record("fixed", 0.5)
  record("faithful", 1.7)   -- newer, but the reference script's accumulation: not the paper's measure
  db:close()
  local data = analysis.load(store)
  os.remove(store)
  t:eq(data.values["delineation/quality"].vgg16.E, 0.5)
end)

return S

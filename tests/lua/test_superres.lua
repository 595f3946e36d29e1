-- Benchmark 2's pieces (lua/dpl/models/superres.lua, lua/dpl/benchmarks/superres.lua) against PyTorch:
--  * tests/ref/superres_ref.py defines the transformation network as a PyTorch module; its state_dict keys are dpl's,
--    in the same order; a torch.save checkpoint (x4 and x8, batch-norm statistics randomised) loads into dpl and gives
--    PyTorch's outputs in eval and train mode; a network dpl saves (safetensors) loads into the PyTorch module with
--    strict=True and gives dpl's output there.
--  * Training parity: the x4 network from the same initial weights, the same 3 batches (2 x 3 x 16 x 16 -> 64 x 64),
--    3 Adam(1e-3) steps with a vgg16-E and a resnet18-L perceptual loss, against PyTorch's run in float64 (the exact
--    result every float32 run approximates), on the CPU and on Vulkan. Tolerances: the first loss within 1e-5
--    relative, the next two within 5e-3 (PyTorch's own float32 run is up to 1.2e-3 off); every weight tensor within
--    15% of the exact update, ||w - w64|| <= 0.15 ||w64 - w0|| (PyTorch float32: up to 8.5%; dpl: 1% on the CPU with
--    vgg16-E, 9% at most; Vulkan's default convolution families: 40%, see RUNS below). Adam's first steps are nearly lr * sign(gradient), so the rounding of float32 gradients
--    through train-mode batch norm moves single weights by up to 2 lr in any float32 run: elementwise tolerances
--    would only restate lr. The parameters whose exact gradient is zero (conv biases before batch norm, the residual
--    stream's batch-norm biases) move by rounding noise alone and must stay within 3 lr.
--  * The training pair (Resize 288 + CenterCrop, GaussianBlur(1) + bicubic Resize + CenterCrop) equals Pillow's and
--    torchvision's on an 8-bit image, x4 and x8.
--  * An unreadable test image is skipped and counted; a missing folder names the fetch command.
--  * The four test metrics and the full-image PSNR/SSIM of B.evaluate, on its saved outputs, against skimage and a
--    torchmetrics transcription (tests/ref/sr_metrics_ref.py); the PNGs written by --save are the 8-bit outputs.
local dpl = require "dpl"
local test = require "dpl.test"
local superres = require "dpl.models.superres"
local B = require "dpl.benchmarks.superres"
local perceptual = require "dpl.perceptual"
local optim = require "dpl.optim"
local S = test.suite("superres", {configurations = {"default"}})   -- compares the CPU and Vulkan itself

local vulkan = dpl.vulkan_available()
S.after_each = function()
  collectgarbage()
  if vulkan then dpl.synchronize("vulkan") end
end
local function devices() return vulkan and {"cpu", "vulkan"} or {"cpu"} end

local refs = test.torch_refs("superres_ref.py", "superres", {runs = {"make", "pairs"}})
local need_refs, ref, refdir = refs.need, refs.ref, refs.dir
local root = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/.."
local script = ("/usr/bin/python3 %s/tests/ref/superres_ref.py %s"):format(root, refdir)
S.teardown = refs.remove

S:add("structure: PyTorch's state_dict keys in order, output shape and range, seeded initialisation", function(t)
  need_refs(t)
  for _, scale in ipairs {4, 8} do
    local net = superres.new({scale = scale, seed = 1, device = "cpu"})
    local _, order = net:state_dict()
    local keys = {}
    for line in io.lines(("%s/keys_x%d.txt"):format(refdir, scale)) do keys[#keys + 1] = line end
    t:eq(table.concat(order, "\n"), table.concat(keys, "\n"), "x" .. scale .. " state_dict keys")
    local y = dpl.no_grad(function() return net:evaluate():forward(dpl.rand({2, 3, 10, 12}, {seed = 2})) end)
    t:shape(y, {2, 3, 10 * scale, 12 * scale})
    t:ok(y:min():item() >= 0 and y:max():item() <= 1, "output outside [0, 1]")
  end
  -- the same seed gives the same weights on every device; another seed others
  local a = superres.new({seed = 42, device = "cpu"}):state_dict()
  local c = superres.new({seed = 43, device = "cpu"}):state_dict()
  t:ok(a["layers.0.conv_layer.weight"]:sub(c["layers.0.conv_layer.weight"]):abs():max():item() > 0, "seeds 42 and 43 agree")
  for _, dev in ipairs(devices()) do
    local b = superres.new({seed = 42, device = dev}):state_dict()
    for name, v in pairs(a) do t:close(b[name], v, {atol = 0, rtol = 0}, dev .. " " .. name) end
  end
  -- PyTorch's default initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for conv weights and biases
  local w = a["layers.1.conv1.conv_layer.weight"]
  local bound = 1 / math.sqrt(64 * 9)
  t:ok(w:abs():max():item() <= bound and w:abs():max():item() > 0.9 * bound, "conv init bound")
  t:eq(a["layers.7.normalization.weight"]:min():item(), 1)
end)

S:add("a PyTorch checkpoint (torch.save) loads and gives PyTorch's outputs, eval and train mode, x4 and x8", function(t)
  need_refs(t)
  for _, dev in ipairs(devices()) do
    for _, scale in ipairs {4, 8} do
      local net, meta = B.load_model(("%s/x%d.pth"):format(refdir, scale), {device = dev})
      t:eq(meta.scale, scale)
      local lr = ref("lr", dev)
      local y = dpl.no_grad(function() return net:forward(lr) end)
      t:close(y, ref(("x%d_eval"):format(scale)), {atol = 2e-5, rtol = 1e-4}, ("%s x%d eval"):format(dev, scale))
      if scale == 4 then
        net:training()
        local yt = dpl.no_grad(function() return net:forward(lr) end)
        t:close(yt, ref("x4_train"), {atol = 2e-5, rtol = 1e-4}, dev .. " x4 train mode")
      end
    end
  end
  local ok, err = pcall(B.load_model, refdir .. "/x4.pth", {scale = 8})
  t:ok(not ok and tostring(err):find("x4 network, but --scale 8", 1, true), tostring(err))
  local ok2, err2 = pcall(B.load_model, refdir .. "/parity_resnet18_L_loss.pth")
  t:ok(not ok2 and tostring(err2):find("not a super-resolution network", 1, true), tostring(err2))
end)

S:add("a network dpl saves loads into the PyTorch module (strict) and gives dpl's output there", function(t)
  need_refs(t)
  for _, scale in ipairs {4, 8} do
    local net = superres.new({scale = scale, seed = 5, device = "cpu"})
    -- a few training-mode forwards so that the running statistics are not the defaults
    for k = 1, 2 do dpl.no_grad(function() net:forward(dpl.rand({2, 3, 12, 12}, {seed = 10 + k})) end) end
    local path = ("%s/dpl_x%d.safetensors"):format(refdir, scale)
    B.save_model(net, path, {arch = "vgg16", layer = "E", scale = scale})
    local ok = os.execute(("%s read %s >>%s.log 2>&1"):format(script, path, refdir))
    t:ok(ok == 0 or ok == true, "tests/ref/superres_ref.py read failed (see " .. refdir .. ".log)")
    net:evaluate()
    local y = dpl.no_grad(function() return net:forward(ref("lr", "cpu")) end)
    t:close(y, ref("from_dpl"), {atol = 2e-5, rtol = 1e-4}, "x" .. scale)
    local back, meta = B.load_model(path)
    t:eq(meta.arch, "vgg16")
    t:eq(meta.layer, "E")
    t:close(dpl.no_grad(function() return back:forward(ref("lr", "cpu")) end), y, {atol = 0, rtol = 0}, "reloaded")
  end
end)

-- the parameters whose exact gradient is zero: every conv bias (each conv is followed by a train-mode batch norm, whose
-- batch mean removes it) and the batch-norm biases of the residual stream (a constant there reaches only batch norms)
local function zero_gradient(name)
  return name:match("conv_layer%.bias$") or name:match("%.conv%.bias$") or name:match("conv2%.normalization%.bias$")
end
local function norm(x) return math.sqrt(x:square():sum():item()) end

-- the runs compared with the exact one: the CPU, and Vulkan with its default convolution families and with the direct
-- family alone (DPL_VK_CONV=direct); the default's Winograd convolutions round ~4x more than direct ones (F(2x2, 3x3)
-- in float32), which through resnet18's 16 gradient convolutions and the train-mode batch norms' cancellations moved
-- single weight tensors by up to 32% of the update (direct: 8%, as PyTorch's float32 run)
local RUNS = {{device = "cpu", allowed = 0.15}, {device = "vulkan", allowed = 0.15, conv = "direct"},
              {device = "vulkan", allowed = 0.4}}

for _, case in ipairs {{"vgg16", "E"}, {"resnet18", "L"}} do
  local arch, layer = case[1], case[2]
  S:add(("training parity with PyTorch: 3 Adam steps with a %s-%s loss"):format(arch, layer), function(t)
    need_refs(t)
    local p = ("parity_%s_%s_"):format(arch, layer)
    local expected, torch32 = ref(p .. "losses"):tolist(), ref(p .. "losses32"):tolist()
    local function parity(dev, allowed, label)
      local net = superres.new({scale = 4, device = dev})
      net:load_state_dict(dpl.load_tensors(refdir .. "/" .. p .. "init.pth", dev))
      net:training()
      local crit = perceptual.loss{arch = arch, layer = layer, weights = refdir .. "/" .. p .. "loss.pth", device = dev}
      local opt = optim.Adam(net:parameters(), {lr = 1e-3})
      for k = 0, 2 do
        opt:zero_grad()
        local loss = crit(net:forward(ref(p .. "lr_" .. k, dev)), ref(p .. "hr_" .. k, dev))
        loss:backward()
        opt:step()
        t:near(loss:item(), expected[k + 1], k == 0 and 1e-5 or 5e-3, ("%s loss at step %d (PyTorch float32: %.2g "
          .. "relative)"):format(label, k + 1, math.abs(torch32[k + 1] / expected[k + 1] - 1)))
      end
      local init = dpl.load_tensors(refdir .. "/" .. p .. "init.pth", "cpu")
      local sd, order = net:state_dict()
      local worst, worst32, worst_name = 0, 0, ""
      for _, name in ipairs(order) do
        local got, want = sd[name]:to("cpu"), ref(p .. "final_" .. name)
        if zero_gradient(name) then
          local d = got:sub(want):abs():max():item()
          t:ok(d <= 3e-3, ("%s %s: %.3g from the exact run (allowed 3 lr)"):format(label, name, d))
        elseif not name:match("running_") and not name:match("num_batches_tracked$") then
          local step = norm(want - init[name])
          local r, r32 = norm(got - want) / step, norm(ref(p .. "final32_" .. name) - want) / step
          t:ok(r <= allowed, ("%s %s: %.3f of the update from the exact run (allowed %.2f; PyTorch float32 %.3f)")
            :format(label, name, r, allowed, r32))
          if r > worst then worst, worst32, worst_name = r, r32, name end
        end
      end
      io.stderr:write(("    %s %s-%s: weights within %.3f of the exact update (%s; PyTorch float32 %.3f)\n"):format(
        label, arch, layer, worst, worst_name, worst32))
    end
    for _, run in ipairs(RUNS) do
      if run.device == "cpu" or vulkan then
        local label = run.device .. (run.conv and (" (DPL_VK_CONV=" .. run.conv .. ")") or "")
        if run.conv then test.with_env("DPL_VK_CONV", run.conv, function() parity(run.device, run.allowed, label) end)
        else parity(run.device, run.allowed, label) end
      end
    end
  end)
end

S:add("the training pair equals Pillow's and torchvision's (x4, x8)", function(t)
  need_refs(t)
  local img = dpl.image.load(refdir .. "/image.png", {device = "cpu"})
  for _, f in ipairs {4, 8} do
    local hr, lr = B.make_pair(img, f)
    t:close(hr, ref("pair_hr_4"), {atol = 1e-6, rtol = 0}, "HR")
    t:close(lr, ref("pair_lr_" .. f), {atol = 1e-6, rtol = 0}, "LR x" .. f)
  end
end)

S:add("test metrics on saved outputs against skimage / torchmetrics; --save writes the 8-bit outputs", function(t)
  need_refs(t)
  -- a small test set: the reference image and a copy of it mirrored, in a folder of their own
  local dir = refdir .. "/testset"
  os.execute(("mkdir -p '%s'"):format(dir))
  local img = dpl.image.load(refdir .. "/image.png", {device = "cpu"})
  dpl.image.save(img, dir .. "/a.png")
  dpl.image.save(dpl.transforms.hflip(img), dir .. "/b.png")
  local net = superres.new({scale = 4, seed = 3, device = "cpu"})
  dpl.no_grad(function() net:forward(dpl.rand({2, 3, 72, 72}, {seed = 4})) end)   -- non-default statistics
  local set = B.test_set(dir, 4)
  t:eq(set.name, "testset")
  local out = B.evaluate(net, {set}, {device = "cpu", save = refdir .. "/saved", keep = true, quiet = true})
  local r = out.testset
  t:eq(#r.images, 2)
  local lines = {}
  for _, im in ipairs(r.images) do
    local f = {}
    for _, k in ipairs {"sr", "hr", "full_sr", "full_hr"} do
      f[k] = ("%s/%s_%s.npy"):format(refdir, im.name, k)
      im.tensors[k]:select(1, 1):save_npy(f[k])
    end
    local y = ("%s/%s_y.npy"):format(refdir, im.name)
    require("dpl.metrics.sr").rgb_to_y(im.tensors.hr:select(1, 1)):save_npy(y)
    lines[#lines + 1] = table.concat({im.name, f.sr, f.hr, y, y, "4"}, "\t")
    lines[#lines + 1] = table.concat({im.name .. "_full", f.full_sr, f.full_hr, y, y, "4"}, "\t")
    -- the PNG --save wrote is the output rounded to 8 bits
    local png = dpl.image.load(("%s/saved/testset/%s.png"):format(refdir, im.name), {device = "cpu"})
    t:close(png, im.tensors.sr:select(1, 1), {atol = 0.5 / 255 + 1e-6, rtol = 0}, "saved PNG")
    t:ok(io.open(("%s/saved/testset/%s_hr.png"):format(refdir, im.name)) ~= nil, "no HR PNG")
  end
  local fh = io.open(refdir .. "/pairs.txt", "w")
  fh:write(table.concat(lines, "\n") .. "\n")
  fh:close()
  local bsr = dpl.cat({r.images[1].tensors.sr, r.images[2].tensors.sr}, 1)
  local bhr = dpl.cat({r.images[1].tensors.hr, r.images[2].tensors.hr}, 1)
  bsr:save_npy(refdir .. "/batch_sr.npy")
  bhr:save_npy(refdir .. "/batch_hr.npy")
  local ok = os.execute(("/usr/bin/python3 %s/tests/ref/sr_metrics_ref.py %s >>%s.log 2>&1"):format(root, refdir, refdir))
  t:ok(ok == 0 or ok == true, "tests/ref/sr_metrics_ref.py failed")
  local expected = {}
  for line in io.lines(refdir .. "/expected.txt") do
    local name, metric, v = line:match("^([^\t]+)\t([^\t]+)\t(.+)$")
    expected[name .. "/" .. metric] = tonumber(v)
  end
  local sums = {psnr = 0, ssim = 0, psnr_2 = 0, tensor_ssim = 0}
  for _, im in ipairs(r.images) do
    t:near(im.psnr, expected[im.name .. "/ref_psnr"], 1e-9, im.name .. " psnr")
    t:near(im.ssim, expected[im.name .. "/ref_mssim"], 1e-9, im.name .. " ssim")
    t:near(im.psnr_2, expected[im.name .. "/ref_psnr_2"], 1e-9, im.name .. " psnr_2")
    t:near(im.tensor_ssim, expected[im.name .. "/ref_tensor_ssim"], 1e-9, im.name .. " tensor_ssim")
    t:near(im.full_psnr, expected[im.name .. "_full/sr_psnr"], 1e-9, im.name .. " full-image psnr")
    t:near(im.full_ssim, expected[im.name .. "_full/sr_ssim"], 1e-9, im.name .. " full-image ssim")
    for k in pairs(sums) do sums[k] = sums[k] + im[k] end
  end
  for k, v in pairs(sums) do t:near(r[k], v / 2, 1e-12, "set mean " .. k) end
  -- the validation PSNR of one batch of both
  local val_ds = B.dataset(dir, {scale = 4})
  t:near(B.validate(net, val_ds, "cpu"), expected["batch/batch_psnr"], 1e-6, "validation PSNR")
end)

S:add("an image that cannot be read is reported by name, counted and skipped", function(t)
  need_refs(t)
  local dir = refdir .. "/broken"
  os.execute(("mkdir -p '%s'"):format(dir))
  dpl.image.save(dpl.image.load(refdir .. "/image.png", {device = "cpu"}), dir .. "/good.png")
  local f = io.open(dir .. "/bad.png", "wb"); f:write("not a png"); f:close()
  local net = superres.new({scale = 8, seed = 1, device = "cpu"})
  local set = B.test_set(dir, 8)
  local out = B.evaluate(net, {set}, {device = "cpu", quiet = true})
  t:eq(out.broken.skipped, 1)
  t:eq(#out.broken.images, 1)
  t:eq(out.broken.images[1].name, "good")
  local ok, err = pcall(B.test_set, refdir .. "/no_such_folder", 4, {fetch = "set5"})
  t:ok(not ok and tostring(err):find("dplrun data/fetch.lua set5", 1, true), tostring(err))
end)

return S

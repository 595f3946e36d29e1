-- Benchmark 4's pieces (lua/dpl/models/autoencoder.lua, lua/dpl/benchmarks/autoencoder.lua) against PyTorch
-- (tests/ref/autoencoder_ref.py defines the autoencoder and the MLP as PyTorch modules with the same state_dict names):
--  * a torch.save checkpoint (side 64 and 96, batch norms randomised) loads and gives PyTorch's codes and
--    reconstructions in eval and train mode; so does a PyTorch Lightning checkpoint (.ckpt) of a module holding it;
--  * training parity of the autoencoder: from the same initial weights, the same 3 batches (4 x 3 x 64 x 64), 3
--    Adam(1e-3) steps with a resnet18-E loss in train mode (the input's features first, as the reference), a vgg16-E
--    loss and the pixel MSE, against PyTorch's run in float64. Tolerances as tests/lua/test_superres.lua: the first
--    loss within 1e-5 relative, the next two within 5e-3; every weight tensor within 15% of the exact update, ||w -
--    w64|| <= 0.15 ||w64 - w0|| (Adam's first steps are nearly lr * sign(gradient), so elementwise tolerances would only
--    restate lr; the autoencoder's batch-norm running statistics are held to the same rule); parameters whose exact
--    gradient is zero (the conv biases before train-mode batch norms) within 3 lr;
--    logvar (unused) unchanged; the loss network's running statistics (train mode) within 1e-4;
--  * one MLP ([64, 32]) trained 3 epochs by B.train_mlp on fixed codes (the benchmark's code path: the trainer, its
--    per-epoch shuffle, the best validation loss kept): per-epoch train and validation losses within 1e-5 relative of
--    the float64 run, the kept weights within 1e-5 (measured: ~1e-7; PyTorch's float32 run is as close);
--  * the seeded 80/20 split is numpy's RandomState(seed).permutation, the same on every run and device; selection
--    rules; a missing split or a wrong file is one line naming it.
local dpl = require "dpl"
local test = require "dpl.test"
local ae = require "dpl.models.autoencoder"
local B = require "dpl.benchmarks.autoencoder"
local perceptual = require "dpl.perceptual"
local optim = require "dpl.optim"
local S = test.suite("autoencoder", {configurations = {"default"}})   -- compares the CPU and Vulkan itself

local devices = test.devices   -- the default after_each collects garbage and drains Vulkan

local refs = test.torch_refs("autoencoder_ref.py", "autoencoder")
local need_refs, ref, refdir = refs.need, refs.ref, refs.dir
S.teardown = refs.remove

S:add("structure: the reference's state_dict keys in order, shapes, seeded initialisation", function(t)
  need_refs(t)
  for _, side in ipairs {64, 96} do
    local net = ae.new({side = side, seed = 1, device = "cpu"})
    local _, order = net:state_dict()
    local keys = {}
    for line in io.lines(("%s/keys%d.txt"):format(refdir, side)) do keys[#keys + 1] = line end
    if side == 64 then t:eq(table.concat(order, "\n"), table.concat(keys, "\n"), "state_dict keys") end
    local x = dpl.rand({2, 3, side, side}, {seed = 2})
    local y = dpl.no_grad(function() return net:evaluate():forward(x) end)
    t:shape(y, {2, 3, side, side})
    t:shape(net:encode(x), {2, 64})
  end
  t:raises(function() ae.new({side = 70}) end, "64 + 16 n")
  t:raises(function() ae.new({side = 64}):forward(dpl.rand({1, 3, 96, 96})) end, "expected images N x 3 x 64 x 64")
  local a = ae.new({seed = 42, device = "cpu"}):state_dict()
  for _, dev in ipairs(devices()) do
    local b = ae.new({seed = 42, device = dev}):state_dict()
    for name, v in pairs(a) do t:close(b[name], v, {atol = 0, rtol = 0}, dev .. " " .. name) end
  end
  -- PyTorch's default initialisation of a transposed convolution: U(+-1/sqrt(out * k * k))
  local w = a["decoder.conv1.weight"]
  local bound = 1 / math.sqrt(64 * 25)
  t:ok(w:abs():max():item() <= bound and w:abs():max():item() > 0.9 * bound, "transposed conv init bound")
  -- the MLPs: names, sizes
  t:eq(#ae.MLPS, 7)
  local names = {}
  for i, h in ipairs(ae.MLPS) do names[i] = ae.mlp_name(h) end
  t:eq(table.concat(names, " "), "linear 32 64 32-32 64-32 64-64 128-128")
  t:eq(#ae.mlp_hidden("64-32"), 2)
  t:eq(#ae.mlp_hidden("linear"), 0)
  t:eq(ae.mlp_hidden("6x"), nil)
  t:eq(ae.mlp_hidden("64-"), nil)
  t:eq(ae.mlp_hidden("0"), nil)
  t:eq(#ae.mlp_hidden("[128,128]"), 2)
  local _, order = ae.mlp({64, 32}):state_dict()
  t:eq(table.concat(order, " "), "0.weight 0.bias 2.weight 2.bias 4.weight 4.bias")
end)

S:add("a PyTorch checkpoint (torch.save) gives PyTorch's codes and reconstructions, eval and train mode", function(t)
  need_refs(t)
  for _, dev in ipairs(devices()) do
    for _, side in ipairs {64, 96} do
      local net = B.load_model(("%s/ae%d.pth"):format(refdir, side), {side = side, device = dev})
      local x = ref("x" .. side, dev)
      for _, mode in ipairs {"eval", "train"} do
        if mode == "train" then net:training() else net:evaluate() end
        local mu = dpl.no_grad(function() return net:encode(x) end)
        local rec = dpl.no_grad(function() return net:forward(x) end)
        t:close(mu, ref(("mu%d_%s"):format(side, mode)), {atol = 1e-4, rtol = 1e-4}, ("%s %d %s code"):format(dev, side, mode))
        t:close(rec, ref(("rec%d_%s"):format(side, mode)), {atol = 2e-5, rtol = 1e-4}, ("%s %d %s"):format(dev, side, mode))
      end
    end
  end
  -- a PyTorch Lightning checkpoint of a module holding the autoencoder (state_dict.autoencoder.*) beside its loss
  -- network (ignored), optimizer states, callbacks and loops (skipped): the same codes
  local lit = B.load_model(refdir .. "/ae64_lightning.ckpt", {side = 64})
  t:close(dpl.no_grad(function() return lit:encode(ref("x64", "cpu")) end), ref("mu64_eval"), {atol = 1e-4, rtol = 1e-4},
          "Lightning checkpoint, eval mode")
  local ok, err = pcall(B.load_model, refdir .. "/ae64.pth", {side = 96})
  t:ok(not ok and tostring(err):find("does not fit the 96 x 96 autoencoder", 1, true), tostring(err))
  local ok2, err2 = pcall(B.load_model, refdir .. "/mlp_init.pth")
  t:ok(not ok2 and tostring(err2):find("not an autoencoder", 1, true), tostring(err2))
  -- a network dpl saves reads back with its provenance
  local net = ae.new({side = 64, seed = 9, device = "cpu"})
  B.save_model(net, refdir .. "/dpl_ae.safetensors", {arch = "vgg16", layer = "S", dataset = "svhn", epoch = 3})
  local back, meta = B.load_model(refdir .. "/dpl_ae.safetensors", {side = 64})
  t:eq(meta.arch, "vgg16")
  t:eq(meta.layer, "S")
  local x = ref("x64", "cpu")
  net:evaluate()
  t:close(back:forward(x), net:forward(x), {atol = 0, rtol = 0}, "reloaded")
end)

-- the conv biases followed by a train-mode batch norm: their exact gradient is zero
local function zero_gradient(name)
  return name:match("^encoder%.conv%d%.bias$") or name:match("^decoder%.conv[012]%.bias$")
end

for _, case in ipairs {{"resnet18_E", "resnet18", "E", "train"}, {"vgg16_E", "vgg16", "E", "eval"}, {"pixel"}} do
  local id, arch, layer, mode = case[1], case[2], case[3], case[4]
  S:add(("training parity with PyTorch: 3 Adam steps, %s"):format(arch and (arch .. "-" .. layer .. " loss in " .. mode
    .. " mode") or "pixel MSE"), function(t)
    need_refs(t)
    local p = ("ae_%s_"):format(id)
    local expected, torch32 = ref(p .. "losses"):tolist(), ref(p .. "losses32"):tolist()
    local init = dpl.load_tensors(refdir .. "/ae_init.pth", "cpu")
    for _, dev in ipairs(devices()) do
      local net = ae.new({side = 64, device = dev})
      net:load_state_dict(dpl.load_tensors(refdir .. "/ae_init.pth", dev))
      net:training()
      local crit
      if arch then
        crit = perceptual.loss{arch = arch, layer = layer, weights = refdir .. "/" .. p .. "loss.pth", mode = mode,
                               device = dev}
        crit:training()
      end
      local opt = optim.Adam(net:parameters(), {lr = 1e-3})
      for k = 0, 2 do
        opt:zero_grad()
        local x = ref("ae_x_" .. k, dev)
        local loss = B.ae_loss(crit, net:forward(x), x)
        loss:backward()
        opt:step()
        t:near(loss:item(), expected[k + 1], k == 0 and 1e-5 or 5e-3, ("%s loss at step %d (PyTorch float32: %.2g "
          .. "relative)"):format(dev, k + 1, math.abs(torch32[k + 1] / expected[k + 1] - 1)))
      end
      local sd, order = net:state_dict()
      for _, name in ipairs {"logvar.weight", "logvar.bias"} do
        t:close(sd[name]:to("cpu"), init[name], {atol = 0, rtol = 0}, dev .. " " .. name .. " (unused) moved")
      end
      local worst, worst32, worst_name = test.update_parity(t, order, {
        got = function(name) return sd[name]:to("cpu") end, exact = function(name) return ref(p .. "final_" .. name) end,
        exact32 = function(name) return ref(p .. "final32_" .. name) end, init = init, allowed = 0.15, label = dev,
        zero_gradient = zero_gradient, zero_atol = 3e-3,
        skip = function(name) return name:match("^logvar%.") or name:match("num_batches_tracked$") end})
      if crit and mode == "train" then
        -- the loss network's running statistics moved as PyTorch's did (input first, then the reconstruction)
        local lsd = crit.net:state_dict()
        local found = 0
        for full, v in pairs(lsd) do
          local name = full:gsub("^net%.", "")
          if name:match("running_") then
            local f = io.open(("%s/%slossnet_%s.npy"):format(refdir, p, name))
            if f then
              f:close()
              found = found + 1
              t:close(v:to("cpu"), ref(p .. "lossnet_" .. name), {atol = 1e-4, rtol = 1e-4}, dev .. " loss network " .. name)
            end
          end
        end
        t:ok(found >= 2, "no running statistics of the loss network compared")
      end
      io.stderr:write(("    %s %s: weights within %.3f of the exact update (%s; PyTorch float32 %.3f)\n"):format(dev,
        id, worst, worst_name, worst32))
    end
  end)
end

S:add("training parity with PyTorch: one MLP, 3 epochs on fixed codes (B.train_mlp)", function(t)
  need_refs(t)
  local labels = function(name)
    local out = {}
    for i, v in ipairs(ref(name):tolist()) do out[i] = math.floor(v + 0.5) end
    return out
  end
  local codes = {train = B.codes(ref("mlp_x", "cpu"), labels("mlp_y")),
                 val = B.codes(ref("mlp_vx", "cpu"), labels("mlp_vy"))}
  local want_train, want_val, val32 = ref("mlp_train_loss"):tolist(), ref("mlp_val_loss"):tolist(),
    ref("mlp_val_loss32"):tolist()
  for _, dev in ipairs(devices()) do
    local r = B.train_mlp({64, 32}, codes, {epochs = 3, batch = 64, lr = 1e-3, seed = 7, device = dev, quiet = true,
      init = dpl.load_tensors(refdir .. "/mlp_init.pth", dev)})
    t:eq(r.epochs_run, 3)
    for e = 1, 3 do
      t:near(r.train_loss[e], want_train[e], 1e-5, ("%s train loss epoch %d"):format(dev, e))
      t:near(r.val_loss_curve[e], want_val[e], 1e-5, ("%s val loss epoch %d (PyTorch float32 %.2g relative)"):format(dev,
        e, math.abs(val32[e] / want_val[e] - 1)))
    end
    local best = 1
    for e = 2, 3 do if want_val[e] < want_val[best] then best = e end end
    t:eq(r.best_epoch, best)
    t:near(r.val_loss, want_val[best], 1e-5, dev .. " kept weights' val loss")
    local sd = r.net:state_dict()
    for _, name in ipairs {"0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"} do
      t:close(sd[name], ref("mlp_best_" .. name), {atol = 1e-5, rtol = 1e-5}, dev .. " " .. name)
    end
  end
end)

S:add("seeded splits: numpy's RandomState(seed).permutation, 80/20, disjoint and complete", function(t)
  local tr, va = B.split(10, 0.2, 42)
  -- numpy: RandomState(42).permutation(10) = [8 1 5 0 7 2 9 4 3 6]
  t:eq(table.concat(tr, " "), "9 2 6 1 8 3 10 5")
  t:eq(table.concat(va, " "), "4 7")
  local a, b = B.split(1001, 0.2, 3)
  t:eq(#b, 200)
  t:eq(#a, 801)
  local seen = {}
  for _, i in ipairs(a) do seen[i] = (seen[i] or 0) + 1 end
  for _, i in ipairs(b) do seen[i] = (seen[i] or 0) + 1 end
  for i = 1, 1001 do if seen[i] ~= 1 then t:ok(false, "index " .. i .. " seen " .. tostring(seen[i])) break end end
  local a2 = B.split(1001, 0.2, 3)
  t:eq(table.concat(a, ","), table.concat(a2, ","), "the same seed, the same split")
  local a3 = B.split(1001, 0.2, 4)
  t:ok(table.concat(a, ",") ~= table.concat(a3, ","), "another seed, another split")
end)

S:add("the reported MLP: best val accuracy or lowest val loss, first of ties; scores and JSON shape", function(t)
  local mlps = {{hidden = {}, val_loss = 0.08, val_accuracy = 0.5, test_accuracy = 0.51, test_loss = 0.1, epochs_run = 5,
                 best_epoch = 2},
                {hidden = {32}, val_loss = 0.07, val_accuracy = 0.6, test_accuracy = 0.58, test_loss = 0.09,
                 epochs_run = 7, best_epoch = 3},
                {hidden = {64}, val_loss = 0.06, val_accuracy = 0.6, test_accuracy = 0.57, test_loss = 0.08,
                 epochs_run = 9, best_epoch = 4}}
  t:eq(B.select(mlps, "val_accuracy"), 2)
  t:eq(B.select(mlps, "val_loss"), 3)
  local s = B.flat_scores(mlps, "val_accuracy", {val = {0.3, 0.2}, train_loss = {0.4, 0.3}, best_epoch = 2,
    epochs_run = 2, best_metric = 0.2})
  t:eq(s["test.accuracy"], 0.58)
  t:eq(s["by_val_loss.test_accuracy"], 0.57)
  t:eq(s["mlp.32.epochs_run"], 7)
  t:eq(s["ae.val_loss.002"], 0.2)
  local s2 = B.flat_scores(mlps, "val_loss")
  t:eq(s2["test.accuracy"], 0.57)
  local e = B.json_entry("vgg16", "S", {dataset = "svhn", mlps = {"linear", "32", "64"}, select = "val_accuracy"}, s)
  t:eq(e.dataset, "svhn")
  t:eq(#e.mlps, 3)
  t:eq(#e.mlps[1].hidden, 0)
  t:eq(e.mlps[2].hidden[1], 32)
  t:eq(e.selected.by, "val_accuracy")
  t:eq(e.selected.test_accuracy, 0.58)
  t:eq(e.selected_by_val_loss.test_accuracy, 0.57)
  t:eq(#e.ae.val_loss, 2)
  t:eq(e.ae.best_epoch, 2)
end)

return S

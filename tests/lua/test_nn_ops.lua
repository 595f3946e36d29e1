-- Activations, softmax, normalisation and losses (lua/dpl/nn/functional.lua, lua/dpl/nn/activations.lua,
-- lua/dpl/nn/losses.lua), forward and input gradient through dpl.autograd:
--  * against PyTorch: references made at test time by tests/ref/nn_ops_ref.py with Debian's python3-torch, on odd
--    shapes (2 x 13 x 9 x 7): relu and leaky_relu (inputs with exact zeros, where PyTorch's gradient is 0 and the
--    slope), silu, sigmoid, tanh, softmax and log_softmax (large logits), F.normalize (an all-zero pixel and one below
--    eps, where the gradient is x's 1/eps, not NaN), mse, binary cross-entropy (logs clamped at -100 for
--    probabilities 0 and 1), bce with logits (logits up to +-80) and cross-entropy; tolerance 1e-5 absolute + 2e-5
--    relative (float32 exp/log and sums in another order);
--  * on Vulkan against the same references and against the CPU;
--  * the nn modules (nn.LeakyReLU, nn.SiLU, nn.BCELoss, ...) against the same references;
--  * layers with parameters against PyTorch on both devices, with parameter gradients and the state after the
--    forward: BatchNorm2d in training (batch statistics, running-stat update with momentum 0.3) and evaluation,
--    Linear, ConvTranspose2d (tolerance 1e-4: batch norm's gradients sum 252 terms per channel);
--  * composite graphs against PyTorch on both devices, every input's gradient: EfficientNet's squeeze-and-excitation
--    (adaptive pooling, 1x1 convs, SiLU, sigmoid, broadcast multiply), broadcast add/multiply residuals, cat/split
--    with mean/sum reductions, an MLP head with leaky_relu and log_softmax;
--  * CPU gradients against central finite differences (step and tolerance documented at the test);
--  * argument errors and bad input (zero and negative sizes).
local dpl = require "dpl"
local nn = require "dpl.nn"
local F = nn.functional
local test = require "dpl.test"
local suite = test.suite("nn ops")

local vulkan = dpl.vulkan_available()

local S = suite

local refs = test.torch_refs("nn_ops_ref.py", "nn_ops")
local have_torch, made, ref = refs.have_torch, refs.made, refs.npy
local cases, mods, graphs = {}, {}, {}   -- functional cases; layers with parameters; composite graphs
do
  for _, c in ipairs(refs.cases) do
    if c.op == "module" then mods[#mods + 1] = c
    elseif c.op == "graph" then graphs[#graphs + 1] = c
    else cases[#cases + 1] = c end
  end
end

-- the dpl function of case c: functional (use_module false) or through the nn module
local function op_fn(c, use_module)
  if c.op == "leaky_relu" then
    return use_module and nn.LeakyReLU(c.slope) or function(x) return F.leaky_relu(x, c.slope) end
  elseif c.op == "softmax" or c.op == "log_softmax" then
    return function(x) return F[c.op](x, c.dim) end
  elseif c.op == "normalize" then
    return function(x) return F.normalize(x, {dim = c.dim, eps = c.eps}) end
  elseif c.target then
    if use_module then
      local names = {mse_loss = "MSELoss", binary_cross_entropy = "BCELoss",
                     binary_cross_entropy_with_logits = "BCEWithLogitsLoss", cross_entropy = "CrossEntropyLoss"}
      return nn[names[c.op]]({reduction = c.reduction})
    end
    return function(x, t) return F[c.op](x, t, c.reduction) end
  end
  if use_module then
    return ({relu = nn.ReLU, silu = nn.SiLU, sigmoid = nn.Sigmoid, tanh = nn.Tanh})[c.op]()
  end
  return F[c.op]
end

local function run_case(c, device, use_module)
  local x = ref(c, "x", device):requires_grad_()
  local fn = op_fn(c, use_module)
  local y
  if c.target then y = fn(x, ref(c, "t", device)) else y = fn(x) end
  if c.grad then
    if c.scalar then y:backward() else y:backward(ref(c, "g", device)) end
  end
  return y, x.grad
end

local TOL = {atol = 1e-5, rtol = 2e-5}

local function check(t, c, y, gx, label)
  if c.scalar then
    t:eq(y:numel(), 1, label .. ": a one-element loss")
    t:near(y:item(), ref(c, "y"):item(), 1e-5 + 2e-5 * math.abs(ref(c, "y"):item()), label .. " output")
  else
    t:close(y:cpu(), ref(c, "y"), TOL, label .. " output")
  end
  if c.grad then
    t:ok(gx ~= nil, label .. ": no input gradient")
    t:close(gx:cpu(), ref(c, "gx"), TOL, label .. " grad input")
  end
end

S:add("reference generation with python3-torch", function(t)
  if not have_torch then t:skip("/usr/bin/python3 cannot import torch (install python3-torch)") end
  t:ok(made, "tests/ref/nn_ops_ref.py failed")
  t:ok(#cases >= 21, "expected the reference cases, got " .. #cases)
  t:ok(#mods >= 4, "expected the layer cases, got " .. #mods)
  t:ok(#graphs >= 4, "expected the graph cases, got " .. #graphs)
end)

S:add("cpu matches PyTorch: output and input gradient", function(t)
  if not have_torch then t:skip("/usr/bin/python3 cannot import torch") end
  for _, c in ipairs(cases) do
    local y, gx = run_case(c, "cpu")
    check(t, c, y, gx, c.id)
  end
end)

S:add("nn modules match PyTorch", function(t)
  if not have_torch then t:skip("/usr/bin/python3 cannot import torch") end
  local n = 0
  for _, c in ipairs(cases) do
    if c.op ~= "softmax" and c.op ~= "log_softmax" and c.op ~= "normalize" then
      local y, gx = run_case(c, "cpu", true)
      check(t, c, y, gx, c.id .. " (module)")
      n = n + 1
    end
  end
  t:ok(n >= 15, "modules tested: " .. n)
end)

S:add("vulkan matches PyTorch and the CPU", function(t)
  if not vulkan then t:skip("no Vulkan device") end
  if not have_torch then t:skip("/usr/bin/python3 cannot import torch") end
  for _, c in ipairs(cases) do
    local y, gx = run_case(c, "vulkan")
    t:eq(y:device():sub(1, 6), "vulkan", c.id)
    check(t, c, y, gx, c.id .. " vulkan")
    local yc, gc = run_case(c, "cpu")
    t:close(y:cpu(), yc, TOL, c.id .. " vulkan vs cpu output")
    if c.grad then t:close(gx:cpu(), gc, TOL, c.id .. " vulkan vs cpu grad input") end
  end
end)

-- layers with parameters: output, input and parameter gradients, and the state after the forward (running stats)
local function run_module(c, device)
  local m
  if c.kind == "BatchNorm2d" then m = nn.BatchNorm2d(c.num_features, {momentum = c.momentum, affine = c.affine})
  elseif c.kind == "Linear" then m = nn.Linear(c.in_features, c.out_features)
  else m = nn.ConvTranspose2d(c.in_channels, c.out_channels, c.kernel, c.opts) end
  m = m:to(device)
  local sd = {}
  -- (the .npy reader gives PyTorch's 0-d num_batches_tracked as 1 element: shape it as the module's)
  for _, k in ipairs(c.state) do sd[k] = ref(c, "p_" .. k, device):reshape(m[k]:size()) end
  m:load_state_dict(sd)
  if c.train == false then m:evaluate() end
  local x = ref(c, "x", device):requires_grad_()
  local y = m(x)
  y:backward(ref(c, "g", device))
  return m, y, x.grad
end

S:add("layers (batch norm in training and evaluation, linear, transposed conv) match PyTorch, with gradients",
      function(t)
  if not have_torch then t:skip("/usr/bin/python3 cannot import torch") end
  t:ok(#mods > 0, "no layer cases")
  -- batch norm's gradients sum over N x H x W = 252 elements per channel: 1e-4 relative
  local tol = {atol = 1e-4, rtol = 1e-4}
  for _, dev in ipairs(dpl.devices()) do
    for _, c in ipairs(mods) do
      local label = dev .. " " .. c.id
      local m, y, gx = run_module(c, dev)
      t:close(y:cpu(), ref(c, "y"), tol, label .. " output")
      t:close(gx:cpu(), ref(c, "gx"), tol, label .. " grad input")
      for _, p in ipairs(c.params) do
        t:ok(m[p].grad ~= nil, label .. ": no gradient for " .. p)
        t:close(m[p].grad:cpu(), ref(c, "gp_" .. p), tol, label .. " grad " .. p)
      end
      for _, k in ipairs(c.state) do
        t:close(m[k]:cpu():reshape(-1), ref(c, "after_" .. k):reshape(-1), {atol = 1e-5, rtol = 1e-5}, label .. " " .. k .. " after forward")
      end
    end
  end
end)

-- Vulkan's batch norm kernels (shaders/batch_norm.comp) and the composed form (DPL_VK_BATCH_NORM=0) against the CPU's
-- fused kernel: outputs, statistics and the three gradients, on odd shapes, with and without weight and bias
S:add("batch norm in training on Vulkan, fused and composed, matches the CPU", function(t)
  if not vulkan then t:skip("no Vulkan device") end
  local ffi = require "ffi"
  pcall(ffi.cdef, "int setenv(const char *, const char *, int); int unsetenv(const char *);")
  local function run(dev, x, g, w, b)
    local xd = x:to(dev):requires_grad_()
    local wd, bd = w and w:to(dev):requires_grad_(), b and b:to(dev):requires_grad_()
    local rm, rv = dpl.zeros(x:size(2), {device = dev}), dpl.ones(x:size(2), {device = dev})
    local y = F.batch_norm(xd, rm, rv, wd, bd, true, 0.3)
    y:backward(g:to(dev))
    return {y = y:cpu(), gx = xd.grad:cpu(), gw = wd and wd.grad:cpu(), gb = bd and bd.grad:cpu(), rm = rm:cpu(),
            rv = rv:cpu()}
  end
  local tol = {atol = 1e-4, rtol = 1e-4}
  for i, shape in ipairs {{3, 5, 7, 9}, {2, 3, 1, 1}, {4, 70, 3, 5}, {2, 1, 33, 17}, {6, 4}} do
    local x = dpl.randn(shape, {seed = 40 + i}) * 2 + 3
    local g = dpl.randn(shape, {seed = 80 + i})
    local affine = i % 2 == 1
    local w = affine and dpl.randn(shape[2], {seed = 120 + i}) or nil
    local b = affine and dpl.randn(shape[2], {seed = 160 + i}) or nil
    local ref = run("cpu", x, g, w, b)
    for _, form in ipairs {"fused", "composed"} do
      if form == "composed" then ffi.C.setenv("DPL_VK_BATCH_NORM", "0", 1) end
      local ok, got = pcall(run, "vulkan", x, g, w, b)
      ffi.C.unsetenv("DPL_VK_BATCH_NORM")
      t:ok(ok, tostring(got))
      local label = ("%s %s"):format(table.concat(shape, "x"), form)
      for _, k in ipairs {"y", "gx", "gw", "gb", "rm", "rv"} do
        if ref[k] then t:close(got[k], ref[k], tol, label .. " " .. k) end
      end
    end
  end
  -- the fused forward is two dispatches (statistics, then the output); the composed one about ten
  local x = dpl.randn({3, 5, 7, 9}, {device = "vulkan"})
  local function dispatches()
    dpl.synchronize("vulkan")
    local d0 = dpl.stat("dispatches", "vulkan")
    dpl.no_grad(F.batch_norm, x, nil, nil, nil, nil, true)
    dpl.synchronize("vulkan")
    return dpl.stat("dispatches", "vulkan") - d0
  end
  t:eq(dispatches(), 2, "fused forward dispatches")
  ffi.C.setenv("DPL_VK_BATCH_NORM", "0", 1)
  local composed = dispatches()
  ffi.C.unsetenv("DPL_VK_BATCH_NORM")
  t:ok(composed > 4, "composed forward dispatches: " .. composed)
end)

-- composite graphs, written as in tests/ref/nn_ops_ref.py
local graph_fns = {
  squeeze_excitation = function(i)
    local s = dpl.adaptive_avg_pool2d(i.x, 1)
    s = F.silu(dpl.conv2d(s, i.w1, i.b1))
    return i.x * dpl.conv2d(s, i.w2, i.b2):sigmoid()
  end,
  broadcast_residual = function(i) return (i.x + i.b) * i.s + i.r end,
  cat_split_reduce = function(i)
    local parts = dpl.cat({i.a * 2, i.b:relu(), i.a:narrow(2, 2, 2)}, 2):split({4, 6, 2}, 2)
    return parts[2]:mean({3, 4}) + dpl.cat({i.a, i.b}, 2):sum(2, true):mean()
  end,
  mlp_head = function(i)
    local h = F.leaky_relu(i.x:matmul(i.w1:t()) + i.b1, 0.01)
    return F.log_softmax(h:matmul(i.w2:t()), 2)
  end,
}

S:add("composite graphs (squeeze-excitation, broadcasting, cat/split, MLP head) match PyTorch, all gradients",
      function(t)
  if not have_torch then t:skip("/usr/bin/python3 cannot import torch") end
  t:ok(#graphs > 0, "no graph cases")
  local tol = {atol = 2e-5, rtol = 1e-4}
  for _, dev in ipairs(dpl.devices()) do
    for _, c in ipairs(graphs) do
      local label = dev .. " " .. c.id
      local inputs = {}
      for _, k in ipairs(c.inputs) do inputs[k] = ref(c, "in_" .. k, dev):requires_grad_() end
      local y = graph_fns[c.id](inputs)
      t:close(y:cpu(), ref(c, "y"), tol, label .. " output")
      y:backward(ref(c, "g", dev))
      for _, k in ipairs(c.inputs) do
        t:ok(inputs[k].grad ~= nil, label .. ": no gradient for " .. k)
        t:close(inputs[k].grad:cpu(), ref(c, "grad_" .. k), tol, label .. " grad " .. k)
      end
    end
  end
end)

-- CPU gradients against central finite differences of L = sum(f(x) * R) for a fixed random R, step eps = 1e-2 in
-- float32: the truncation error is eps^2 |f'''| / 6 (< 1e-4 for these smooth functions on inputs kept 3 eps away from
-- kinks) and the rounding error about |L| 2^-24 / eps (~1e-5); tolerance 1e-3 absolute + 1e-3 relative.
local fd_ops = {
  {"relu", function(x) return F.relu(x) end, "away"},
  {"leaky_relu 0.2", function(x) return F.leaky_relu(x, 0.2) end, "away"},
  {"silu", F.silu}, {"sigmoid", F.sigmoid}, {"tanh", F.tanh},
  {"softmax dim 2", function(x) return F.softmax(x, 2) end},
  {"log_softmax dim -1", function(x) return F.log_softmax(x, -1) end},
  {"normalize", function(x) return F.normalize(x) end},
  {"mse_loss", function(x, t) return F.mse_loss(x, t) end, nil, "normal"},
  {"binary_cross_entropy", function(x, t) return F.binary_cross_entropy(x, t) end, "prob", "prob"},
  {"binary_cross_entropy_with_logits", function(x, t) return F.binary_cross_entropy_with_logits(x, t, "sum") end,
   nil, "prob"},
  {"cross_entropy", function(x, t) return F.cross_entropy(x, t, "sum") end, "2d", "classes"},
}

S:add("cpu gradients vs finite differences", function(t)
  local eps = 1e-2
  for i, e in ipairs(fd_ops) do
    local name, fn, xkind, tkind = e[1], e[2], e[3], e[4]
    local shape = xkind == "2d" and {3, 5} or {2, 3, 2, 2}
    local x = dpl.randn(shape, {seed = 900 + i})
    if xkind == "away" then x = x + x:sign() * (3 * eps) end          -- no input within 3 eps of the kink at 0
    if xkind == "prob" then x = dpl.uniform(0.1, 0.9, shape, {seed = 900 + i}) end
    local target
    if tkind == "normal" then target = dpl.randn(shape, {seed = 950 + i})
    elseif tkind == "prob" then target = dpl.uniform(0, 1, shape, {seed = 950 + i})
    elseif tkind == "classes" then target = dpl.tensor({4, 0, 2}) end
    local function f(xt) if target then return fn(xt, target) else return fn(xt) end end
    local xg = x:detach():requires_grad_()
    local y = f(xg)
    local R = dpl.randn(y:size(), {seed = 990 + i})
    ;(y * R):sum():backward()
    local num = test.numeric_grad(function(xt) return (f(xt) * R):sum():item() end, {x}, 1, eps)
    t:close(xg.grad, num, {atol = 1e-3, rtol = 1e-3}, name)
  end
end)

S:add("hand-computed values", function(t)
  local x = dpl.tensor({-2, -0.5, 0, 3}):requires_grad_()
  local y = F.leaky_relu(x, 0.1)
  t:close(y, {-0.2, -0.05, 0, 3}, {atol = 1e-7})
  y:sum():backward()
  t:close(x.grad, {0.1, 0.1, 0.1, 1}, {atol = 1e-7, rtol = 0}, "the slope at 0, as PyTorch")
  t:close(F.silu(dpl.tensor({0, 1})), {0, 1 / (1 + math.exp(-1))}, {atol = 1e-7})
  -- unit vectors along the channels; a zero vector stays zero
  local v = dpl.tensor({{{{3}}, {{4}}}, {{{0}}, {{0}}}})    -- 2 x 2 x 1 x 1
  t:close(F.normalize(v), {0.6, 0.8, 0, 0}, {atol = 1e-7})
  local s = F.softmax(dpl.tensor({{1000, 1000}, {0, math.log(3)}}), 2)
  t:close(s, {0.5, 0.5, 0.25, 0.75}, {atol = 1e-7}, "softmax is stable for large logits")
end)

S:add("argument errors", function(t)
  t:raises(function() F.normalize(dpl.ones(2, 3), {p = 1}) end, "normalize: only p = 2 is supported")
  t:raises(function() F.normalize(dpl.ones(2, 3), {dim = 3}) end, "normalize: dim 3 out of range for a 2-d tensor")
  t:raises(function() F.normalize(dpl.ones(2, 3), {eps = 0}) end, "eps must be a positive number")
  t:raises(function() F.binary_cross_entropy(dpl.ones(2, 3), dpl.ones(3, 2)) end,
           "binary_cross_entropy: input shape 2x3 and target shape 3x2 differ")
  t:raises(function() F.binary_cross_entropy_with_logits(dpl.ones(2), dpl.ones(3)) end, "target shape 3 differ")
  t:raises(function() F.cross_entropy(dpl.ones(2, 3), dpl.ones(3)) end, "cross_entropy: expected input (N, C)")
  t:raises(function() F.mse_loss(dpl.ones(2), dpl.ones(2), "avg") end, "unknown reduction 'avg'")
end)

S:add("bad input: zero and negative sizes are clear errors", function(t)
  t:raises(function() nn.Conv2d(0, 2, 3) end, "nn.Conv2d: in_channels must be a positive integer, got 0")
  t:raises(function() nn.Conv2d(3, -2, 3) end, "nn.Conv2d: out_channels must be a positive integer, got -2")
  t:raises(function() nn.Conv2d(3, 2, {3, 0}) end, "nn.Conv2d: kernel_size must be a positive integer or a pair of them")
  t:raises(function() nn.Conv2d(3, 3, 3, {groups = 0}) end, "nn.Conv2d: groups must be a positive integer, got 0")
  t:raises(function() nn.ConvTranspose2d(3, 2, 0) end, "nn.ConvTranspose2d: kernel_size must be a positive integer")
  t:raises(function() nn.Linear(0, 2) end, "nn.Linear: in_features must be a positive integer, got 0")
  t:raises(function() nn.Linear(4, 2.5) end, "nn.Linear: out_features must be a positive integer, got 2.5")
  t:raises(function() nn.BatchNorm2d(-1) end, "nn.BatchNorm2d: num_features must be a positive integer, got -1")
  local x = dpl.randn(1, 3, 5, 5)
  t:raises(function() dpl.split(x, 0, 2) end, "split: the split size must be a positive integer, got 0")
  t:raises(function() dpl.split(x, {4, -1}, 2) end, "split: sizes must be non-negative integers, got -1")
  t:raises(function() dpl.split(x, 1, 5) end, "split: dim 5 out of range for a 4-d tensor")
  t:raises(function() dpl.chunk(x, 0, 2) end, "chunk: the number of chunks must be a positive integer, got 0")
  t:raises(function() dpl.zeros(-1, 2) end, "negative size in shape [-1, 2]")
  t:raises(function() dpl.max_pool2d(x, 0) end, "max_pool2d: kernel size must be positive, got 0x0")
  t:raises(function() dpl.upsample2d(x, {0, 3}, "bilinear") end, "output size must be positive, got 0x3")
  t:raises(function() nn.Conv2d(3, 2, 3)(dpl.randn(1, 3, 0, 5)) end, "larger than the padded input 0x5")
  t:raises(function() nn.BatchNorm2d(4)(x) end, "nn.BatchNorm2d(4): expected input (N, 4, H, W), got 1x3x5x5")
  -- F.batch_norm's checks (lua/dpl/ops/norm.lua and the runtime's dpl_batch_norm_forward)
  t:raises(function() F.batch_norm(x, nil, nil, dpl.ones(4), nil, true) end,
           "batch_norm_forward: weight has 4 values for an input of shape [1, 3, 5, 5] (3 channels)")
  t:raises(function() F.batch_norm(dpl.randn(4, 3), nil, nil, nil, dpl.zeros(2), true) end,
           "batch_norm_forward: bias has 2 values")
  t:raises(function() F.batch_norm(dpl.randn(1, 3, 1, 1), nil, nil, nil, nil, true) end,
           "expected more than 1 value per channel")
  t:raises(function() F.batch_norm(dpl.randn(5), nil, nil, nil, nil, true) end,
           "batch_norm: expected an input N x C [x H x W], got a 1-d tensor of shape 5")
  t:raises(function() F.batch_norm(x, nil, nil, nil, nil, false) end, "needs running_mean and running_var")
end)

suite.teardown = refs.remove
return suite

-- 2-D convolution (dpl.conv2d and its gradients, runtime/src/ops/conv.c):
--  * a hand-computed 3x3 * 2x2 case;
--  * the CPU forward against a naive Lua loop, and the CPU backward against the adjoint identity
--    <conv(x, w), R> = <x, grad_input(R)> = <w, grad_weight(x, R)> (sums in double), on odd shapes, strides, paddings,
--    dilations and groups, with and without oneDNN (DPL_CPU_DNNL=0);
--  * CPU gradients against central finite differences of L = sum(conv(x, w, b) * R) for a fixed random R (so
--    dL/doutput = R): step eps = 1e-2 in float32. The convolution is linear, so the difference quotient is exact up to
--    the float32 rounding of the forward (about |L| * 2^-24 * sqrt(#outputs) / (2 eps), ~1e-4 here); the tolerance
--    is 2e-3 absolute + 2e-3 relative;
--  * Vulkan against the CPU for forward, grad input, grad weight and grad bias (tolerance 1e-4 relative plus 1e-4 x
--    sqrt(reduction length) absolute for float32 sums in another order), with the kernels chosen for the device and
--    with each kernel family forced (DPL_VK_CONV=direct|portable|winograd, docs/vulkan.md), and with the batch split
--    over several dispatches and over bindings of 128 MiB; the fused ReLU (activation = "relu") against relu(conv2d)
--    with its gradients; Winograd's cached transformed weights following weights changed in place;
--  * argument errors.
-- No PyTorch comparison: /usr/bin/python3 has no torch here (tested with `python3 -c "import torch"`).
local dpl = require "dpl"
local test = require "dpl.test"
local suite = test.suite("conv2d")

local vulkan = dpl.vulkan_available()

-- Every test ends with the Vulkan queue drained: with DPL_VALIDATION=1, work still pending when the runner calls
-- os.exit makes dpl_shutdown (run by atexit) crash inside the validation layer.
local S = suite

local with_env = test.with_env

local seed = 100
local function randn(shape, device)
  seed = seed + 1
  return dpl.randn(shape, {seed = seed, device = device or "cpu"})
end

local function pair(v, d)
  if v == nil then return d, d end
  if type(v) == "number" then return v, v end
  return v[1], v[2]
end

-- naive F.conv2d on flat Lua arrays (1-based, row-major)
local function ref_conv(x, xs, w, ws, b, opts)
  local N, Ci, H, W = xs[1], xs[2], xs[3], xs[4]
  local O, Cg, KH, KW = ws[1], ws[2], ws[3], ws[4]
  local sh, sw = pair(opts.stride, 1)
  local ph, pw = pair(opts.padding, 0)
  local dh, dw = pair(opts.dilation, 1)
  local G = opts.groups or 1
  local OH = math.floor((H + 2 * ph - dh * (KH - 1) - 1) / sh) + 1
  local OW = math.floor((W + 2 * pw - dw * (KW - 1) - 1) / sw) + 1
  local Og = O / G
  local y = {}
  for n = 0, N - 1 do
    for o = 0, O - 1 do
      local g = math.floor(o / Og)
      for oy = 0, OH - 1 do
        for ox = 0, OW - 1 do
          local acc = b and b[o + 1] or 0
          for cl = 0, Cg - 1 do
            local c = g * Cg + cl
            for ky = 0, KH - 1 do
              local iy = oy * sh - ph + ky * dh
              if iy >= 0 and iy < H then
                for kx = 0, KW - 1 do
                  local ix = ox * sw - pw + kx * dw
                  if ix >= 0 and ix < W then
                    acc = acc + x[((n * Ci + c) * H + iy) * W + ix + 1] * w[((o * Cg + cl) * KH + ky) * KW + kx + 1]
                  end
                end
              end
            end
          end
          y[#y + 1] = acc
        end
      end
    end
  end
  return y, {N, O, OH, OW}
end

local function dot(a, b)
  local s = 0
  for i = 1, #a do s = s + a[i] * b[i] end
  return s
end

-- The geometries: input shape, weight shape, options, bias or not.
local cases = {
  {name = "3x3 pad 1, 13 channels, 9x7, batch 1", x = {1, 13, 9, 7}, w = {5, 13, 3, 3}, opts = {padding = 1}, bias = true},
  {name = "3x3 stride 2 pad 1, batch 3", x = {3, 13, 9, 7}, w = {8, 13, 3, 3}, opts = {stride = 2, padding = 1}, bias = true},
  {name = "3x3 pad 2 dilation 2", x = {3, 6, 9, 7}, w = {9, 6, 3, 3}, opts = {padding = 2, dilation = 2}, bias = true},
  {name = "3x2 kernel, stride {2,1}, pad {1,2}, dilation {1,2}", x = {2, 5, 9, 7}, w = {4, 5, 3, 2},
   opts = {stride = {2, 1}, padding = {1, 2}, dilation = {1, 2}}, bias = false},
  {name = "groups 3", x = {2, 12, 9, 7}, w = {6, 4, 3, 3}, opts = {padding = 1, groups = 3}, bias = true},
  {name = "groups 3, 13 outputs per group, stride 2", x = {3, 9, 9, 7}, w = {39, 3, 3, 3},
   opts = {stride = 2, padding = 1, groups = 3}, bias = true},
  {name = "depthwise (groups = C = 13)", x = {3, 13, 9, 7}, w = {13, 1, 3, 3}, opts = {padding = 1, groups = 13}, bias = true},
  {name = "depthwise 5x3, stride {2,3}, pad {2,1}, dilation {1,2}", x = {2, 6, 11, 10}, w = {6, 1, 5, 3},
   opts = {stride = {2, 3}, padding = {2, 1}, dilation = {1, 2}, groups = 6}, bias = true},
  {name = "depthwise x2 multiplier, stride 2, dilation 2", x = {2, 4, 9, 7}, w = {8, 1, 3, 3},
   opts = {stride = 2, padding = 2, dilation = 2, groups = 4}, bias = false},
  {name = "1x1", x = {3, 13, 9, 7}, w = {7, 13, 1, 1}, opts = {}, bias = true},
  {name = "1x1 stride 2", x = {3, 13, 9, 7}, w = {7, 13, 1, 1}, opts = {stride = 2}, bias = false},
  {name = "1x1 pad 1 groups 13", x = {1, 13, 9, 7}, w = {13, 1, 1, 1}, opts = {padding = 1, groups = 13}, bias = true},
  {name = "11x11 stride 4 pad 2 (AlexNet conv1 on 35x35)", x = {2, 3, 35, 35}, w = {16, 3, 11, 11},
   opts = {stride = 4, padding = 2}, bias = true},
  {name = "kernel as large as the padded input", x = {2, 3, 4, 5}, w = {4, 3, 6, 7}, opts = {padding = 1}, bias = true},
  {name = "5x5 stride 3, 40 outputs", x = {1, 7, 13, 11}, w = {40, 7, 5, 5}, opts = {stride = 3, padding = 2}, bias = true},
  -- large enough for the CPU kernels' threaded paths: im2col/col2im and sgemm split within one image (batch 1) and
  -- whole images per thread with per-thread weight-gradient sums (batch 4)
  {name = "batch 1 split over threads, 3x3 pad 1", x = {1, 32, 40, 36}, w = {48, 32, 3, 3}, opts = {padding = 1},
   bias = true},
  {name = "batch 1 split over threads, 1x1", x = {1, 64, 30, 30}, w = {96, 64, 1, 1}, opts = {}, bias = true},
  {name = "batch 4, whole images per thread, stride 2", x = {4, 16, 33, 31}, w = {24, 16, 3, 3},
   opts = {stride = 2, padding = 1}, bias = true},
  -- small outputs: the CPU folds several images into one channels-last GEMM (conv_fold_cpu.c); here 2 images per
  -- fold, so 3 folds; the cases above with batch >= 2 and kernels other than a plain 1x1 fold too
  -- 3x3, stride 1, at least 8 channels in and out: the CPU's Winograd path (cpu/winograd_cpu.c), forward and grad
  -- input (a convolution with padding 2 - p), with ragged 2x2 tiles on odd sizes and several tile blocks
  {name = "Winograd 3x3 pad 1, 13 -> 11 channels, 9x7, batch 3", x = {3, 13, 9, 7}, w = {11, 13, 3, 3},
   opts = {padding = 1}, bias = true},
  {name = "Winograd 3x3 pad 0, 16 -> 12 channels, 10x9", x = {2, 16, 10, 9}, w = {12, 16, 3, 3}, opts = {}, bias = false},
  {name = "Winograd 3x3 pad 2, 9 -> 10 channels, 8x11", x = {1, 9, 8, 11}, w = {10, 9, 3, 3}, opts = {padding = 2},
   bias = true},
  {name = "Winograd 3x3 pad {0, 1}, 7x9", x = {2, 8, 7, 9}, w = {8, 8, 3, 3}, opts = {padding = {0, 1}}, bias = true},
  {name = "Winograd over several tile blocks, batch 2, 70x69", x = {2, 16, 70, 69}, w = {16, 16, 3, 3},
   opts = {padding = 1}, bias = true},
  {name = "batch 5 folded 2 images per GEMM", x = {5, 128, 30, 30}, w = {4, 128, 3, 3}, opts = {padding = 1},
   bias = true},
  -- many channels on few tiles: Vulkan's Winograd runs its product transposed (and lays out its result so), forward
  -- (261 outputs, not a multiple of 4) and grad input (258 inputs)
  {name = "Winograd many channels, few tiles, 16 -> 261", x = {2, 16, 6, 5}, w = {261, 16, 3, 3}, opts = {padding = 1},
   bias = true},
  {name = "Winograd many channels, few tiles, 258 -> 16", x = {1, 258, 5, 6}, w = {16, 258, 3, 3}, opts = {padding = 1},
   bias = false},
}

local function make(case, device)
  local x, w = randn(case.x, device), randn(case.w, device)
  local b = case.bias and randn({case.w[1]}, device) or nil
  return x, w, b
end

-- ---- hand-computed ----------------------------------------------------------------------------------------------
S:add("hand-computed 1x1x3x3 input, 2x2 kernel", function(t)
  for _, dev in ipairs(vulkan and {"cpu", "vulkan"} or {"cpu"}) do
    local x = dpl.tensor({{{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}}}, {device = dev})
    local w = dpl.tensor({{{{1, 2}, {3, 4}}}}, {device = dev})
    local b = dpl.tensor({10}, {device = dev})
    -- 1*1 + 2*2 + 4*3 + 5*4 = 37, ...
    local y = dpl.conv2d(x, w, b)
    t:shape(y, {1, 1, 2, 2})
    t:close(y, {47, 57, 77, 87}, {atol = 0, rtol = 0}, dev .. " forward")
    t:close(dpl.conv2d(x, w), {37, 47, 67, 77}, {atol = 0, rtol = 0}, dev .. " forward without bias")
    -- padding 1: a 4x4 output whose corner sees only x[1][1] * w[2][2]
    local yp = dpl.conv2d(x, w, nil, {padding = 1})
    t:shape(yp, {1, 1, 4, 4})
    t:close(yp, {4, 11, 18, 9, 18, 37, 47, 21, 36, 67, 77, 33, 14, 23, 26, 9}, {atol = 0, rtol = 0}, dev .. " padding 1")
    -- stride 2 with padding 1: rows/cols {-1, 1} -> 2x2 output
    t:close(dpl.conv2d(x, w, nil, {stride = 2, padding = 1}), {4, 18, 36, 77}, {atol = 0, rtol = 0}, dev .. " stride 2")
    local gy = dpl.tensor({{{{1, 2}, {3, 4}}}}, {device = dev})
    -- grad input: each output's gradient spread over its window by w
    t:close(dpl.conv2d_backward_input(gy, w, x:size()), {1, 4, 4, 6, 20, 16, 9, 24, 16}, {atol = 0, rtol = 0},
            dev .. " grad input")
    -- grad weight: w[i][j] gets sum over outputs of gy * x shifted by (i, j)
    t:close(dpl.conv2d_backward_weight(x, gy, w:size()), {37, 47, 67, 77}, {atol = 0, rtol = 0}, dev .. " grad weight")
    t:close(dpl.conv2d_backward_bias(gy), {10}, {atol = 0, rtol = 0}, dev .. " grad bias")
  end
end)

-- ---- CPU against a naive loop and the adjoint identity ------------------------------------------------------------
-- Twice: with the CPU's paths as chosen (oneDNN for most forwards when dpl is built with it, cpu/dnnl_cpu.c)
-- and with oneDNN off (DPL_CPU_DNNL=0: the OpenBLAS paths, im2col, batch fold and Winograd, for every case).
local dnnl_built = dpl.stat("dnnl_convs", "cpu") >= 0

local function cpu_vs_naive(t, label)
  for _, case in ipairs(cases) do
    local name = label .. case.name
    local x, w, b = make(case, "cpu")
    local y = dpl.conv2d(x, w, b, case.opts)
    local ref, rshape = ref_conv(x:tolist(), case.x, w:tolist(), case.w, b and b:tolist(), case.opts)
    t:shape(y, rshape, name)
    t:close(y, ref, {atol = 1e-4, rtol = 1e-4}, name .. ": forward")
    local R = randn(rshape)
    local yl = b and dpl.conv2d(x, w, nil, case.opts):tolist() or y:tolist()
    local rl = R:tolist()
    local lhs = dot(yl, rl)
    local gx = dpl.conv2d_backward_input(R, w, x:size(), case.opts)
    local gw = dpl.conv2d_backward_weight(x, R, w:size(), case.opts)
    t:shape(gx, case.x, name .. ": grad input shape")
    t:shape(gw, case.w, name .. ": grad weight shape")
    local tol = 1e-4 * (1 + math.sqrt(#rl))
    t:near(dot(x:tolist(), gx:tolist()), lhs, tol, name .. ": <x, grad_input(R)> = <conv(x), R>")
    t:near(dot(w:tolist(), gw:tolist()), lhs, tol, name .. ": <w, grad_weight(x, R)> = <conv(x), R>")
    if b then
      local gb = dpl.conv2d_backward_bias(R)
      t:close(gb, R:sum({1, 3, 4}), {atol = 1e-5, rtol = 1e-5}, name .. ": grad bias")
    end
  end
end

S:add("cpu forward vs naive loop, backward vs adjoint identity", function(t)
  local before = dpl.stat("dnnl_convs", "cpu")
  cpu_vs_naive(t, "")
  if dnnl_built then
    -- all but the Winograd cases' forwards (and the depthwise ones, which stay on dpl's direct loop) go to oneDNN
    t:ok(dpl.stat("dnnl_convs", "cpu") - before >= 10, "oneDNN ran the forward of most cases")
  end
end)

S:add("cpu with oneDNN off (DPL_CPU_DNNL=0): forward vs naive loop, backward vs adjoint identity", function(t)
  with_env("DPL_CPU_DNNL", "0", function()
    local before = dpl.stat("dnnl_convs", "cpu")
    cpu_vs_naive(t, "no oneDNN: ")
    t:eq(dpl.stat("dnnl_convs", "cpu"), before, "oneDNN ran no convolution")
  end)
end)

-- ---- CPU gradients against finite differences --------------------------------------------------------------------
local function fd_check(t, name, xs, ws, opts)
  local x, w, b = randn(xs), randn(ws), randn({ws[1]})
  local y = dpl.conv2d(x, w, b, opts)
  local R = randn(y:size())
  local rl = R:tolist()
  local function loss(xt, wt, bt) return dot(dpl.conv2d(xt, wt, bt, opts):tolist(), rl) end
  local eps = 1e-2
  -- numeric gradient with respect to one of the three tensors (k = 1, 2, 3)
  local function numeric(k) return test.numeric_grad(loss, {x, w, b}, k, eps) end
  local tol = {atol = 2e-3, rtol = 2e-3}
  t:close(dpl.conv2d_backward_input(R, w, x:size(), opts), numeric(1), tol, name .. ": grad input")
  t:close(dpl.conv2d_backward_weight(x, R, w:size(), opts), numeric(2), tol, name .. ": grad weight")
  t:close(dpl.conv2d_backward_bias(R), numeric(3), tol, name .. ": grad bias")
end

S:add("cpu gradients vs finite differences: stride 2, pad 1, groups 2", function(t)
  fd_check(t, "s2 p1 g2", {2, 4, 5, 4}, {4, 2, 3, 3}, {stride = 2, padding = 1, groups = 2})
end)

S:add("cpu gradients vs finite differences: dilation 2, pad {2,1}, 2x3 kernel", function(t)
  fd_check(t, "d2", {1, 3, 6, 5}, {2, 3, 2, 3}, {padding = {2, 1}, dilation = 2})
end)

S:add("cpu gradients vs finite differences: depthwise, stride {1,2}", function(t)
  fd_check(t, "depthwise", {2, 3, 4, 5}, {3, 1, 3, 3}, {stride = {1, 2}, padding = 1, groups = 3})
end)

S:add("cpu gradients vs finite differences: 3x3 pad 1, 8 channels (Winograd)", function(t)
  fd_check(t, "winograd", {1, 8, 5, 4}, {8, 8, 3, 3}, {padding = 1})
end)

-- ---- the CPU's Winograd path against its im2col path --------------------------------------------------------------
-- Same inputs both ways (DPL_CPU_WINOGRAD=0 turns Winograd off); F(2x2, 3x3) only adds and halves, so the two agree
-- to float rounding of sums in another order: 1e-5 relative + 1e-5 x sqrt(reduction length) absolute.
local function both_paths(opts, x, w, b, R)
  local out = {}
  for _, on in ipairs {"1", "0"} do
    with_env("DPL_CPU_WINOGRAD", on, function()
      out[on] = {y = dpl.conv2d(x, w, b, opts), gx = dpl.conv2d_backward_input(R, w, x:size(), opts)}
    end)
  end
  return out["1"], out["0"]
end

S:add("cpu Winograd path vs im2col path: forward and grad input", function(t)
  for _, c in ipairs {
    {x = {2, 24, 15, 13}, w = {40, 24, 3, 3}, opts = {padding = 1}},
    {x = {1, 64, 28, 28}, w = {64, 64, 3, 3}, opts = {padding = 1}},
    {x = {3, 8, 12, 11}, w = {9, 8, 3, 3}, opts = {padding = 0}},
  } do
    local x, w, b = randn(c.x), randn(c.w), randn({c.w[1]})
    local R = randn(dpl.conv2d(x, w, b, c.opts):size())
    local wino, direct = both_paths(c.opts, x, w, b, R)
    local name = ("%dx%dx%dx%d -> %d"):format(c.x[1], c.x[2], c.x[3], c.x[4], c.w[1])
    t:close(wino.y, direct.y, {atol = 1e-5 * math.sqrt(c.w[2] * 9), rtol = 1e-5}, name .. ": forward")
    t:close(wino.gx, direct.gx, {atol = 1e-5 * math.sqrt(c.w[1] * 9), rtol = 1e-5}, name .. ": grad input")
  end
end)

-- Data derived from the weights is cached per weight storage and version (cpu/kernel_cache.c): the Winograd
-- transforms (3x3 below) and the channels-last weights of the batch fold (5x5 on small images below). Weights changed
-- in place in any way (an optimizer step, copy_, a write through a view) must be seen on the next call, also after
-- they have changed often enough to stop being cached; a second weight tensor (its own entry) stays right too. The
-- input gradient is checked against the path without the cache (its environment switch).
local function cache_follows_weights(t, label, xs, ws, opts, off)
  local x, w, b = randn(xs), randn(ws), randn({ws[1]})
  local R = randn(dpl.conv2d(x, w, b, opts):size())
  local changes = {
    function() w:copy_(w * 1.5 + 0.25) end,
    function() w:mul_(-0.5) end,
    function() w:narrow(1, 3, 2):fill_(0.125) end,      -- through a view of the same storage
    function() w:add_(randn(ws)) end,
    function() w:relu_() end,
  }
  for step = 1, #changes + 1 do
    local y = dpl.conv2d(x, w, b, opts)
    local gx = dpl.conv2d_backward_input(R, w, x:size(), opts)
    local ry = ref_conv(x:tolist(), x:size(), w:tolist(), w:size(), b:tolist(), opts)
    t:close(y, ry, {atol = 1e-4, rtol = 1e-4}, ("%s step %d: forward"):format(label, step))
    with_env(off, "0", function()
      t:close(gx, dpl.conv2d_backward_input(R, w, x:size(), opts), {atol = 1e-4, rtol = 1e-4},
              ("%s step %d: grad input"):format(label, step))
    end)
    if changes[step] then changes[step]() end
  end
  local w2 = randn(ws)
  local y1, y2 = dpl.conv2d(x, w, b, opts), dpl.conv2d(x, w2, b, opts)
  t:close(y1, ref_conv(x:tolist(), x:size(), w:tolist(), w:size(), b:tolist(), opts), {atol = 1e-4, rtol = 1e-4},
          label .. ": first weights")
  t:close(y2, ref_conv(x:tolist(), x:size(), w2:tolist(), w2:size(), b:tolist(), opts), {atol = 1e-4, rtol = 1e-4},
          label .. ": second weights")
end

S:add("cpu kernel cache follows weights changed in place", function(t)
  cache_follows_weights(t, "Winograd", {2, 16, 9, 7}, {12, 16, 3, 3}, {padding = 1}, "DPL_CPU_WINOGRAD")
  with_env("DPL_CPU_DNNL", "0", function()
    cache_follows_weights(t, "batch fold", {3, 6, 8, 7}, {10, 6, 5, 5}, {padding = 2}, "DPL_CPU_CONV_FOLD")
  end)
  -- oneDNN's weights in its blocked layout; two shapes with the same weights (one entry per layout)
  local before = dpl.stat("dnnl_convs", "cpu")
  cache_follows_weights(t, "oneDNN", {3, 6, 8, 7}, {10, 6, 5, 5}, {padding = 2, stride = {1, 2}}, "DPL_CPU_DNNL")
  cache_follows_weights(t, "oneDNN grouped", {2, 6, 9, 7}, {12, 3, 3, 3}, {padding = 1, groups = 2}, "DPL_CPU_DNNL")
  if dnnl_built then t:ok(dpl.stat("dnnl_convs", "cpu") - before >= 14, "oneDNN ran these forwards") end
end)

-- ---- Vulkan against the CPU ---------------------------------------------------------------------------------------
local function vulkan_vs_cpu(t, case, label)
  label = (label or "") .. case.name
  local x, w, b = make(case, "cpu")
  local y = dpl.conv2d(x, w, b, case.opts)
  local R = randn(y:size())
  local gx = dpl.conv2d_backward_input(R, w, x:size(), case.opts)
  local gw = dpl.conv2d_backward_weight(x, R, w:size(), case.opts)
  local vx, vw, vb, vR = x:to("vulkan"), w:to("vulkan"), b and b:to("vulkan"), R:to("vulkan")
  local vy = dpl.conv2d(vx, vw, vb, case.opts)
  t:eq(vy:device(), "vulkan:0")
  local kred = case.w[2] * case.w[3] * case.w[4]
  local tol = {atol = 1e-4 * math.sqrt(kred), rtol = 1e-4}
  t:close(vy:cpu(), y, tol, label .. ": forward")
  local og = case.w[1] / (case.opts.groups or 1)
  tol.atol = 1e-4 * math.sqrt(og * case.w[3] * case.w[4])
  t:close(dpl.conv2d_backward_input(vR, vw, vx:size(), case.opts):cpu(), gx, tol, label .. ": grad input")
  tol.atol = 1e-4 * math.sqrt(y:numel() / case.w[1])
  t:close(dpl.conv2d_backward_weight(vx, vR, vw:size(), case.opts):cpu(), gw, tol, label .. ": grad weight")
  if b then
    t:close(dpl.conv2d_backward_bias(vR):cpu(), dpl.conv2d_backward_bias(R), tol, label .. ": grad bias")
  end
end

if vulkan then
  S:add("vulkan vs cpu: forward, grad input, grad weight on odd shapes", function(t)
    for _, case in ipairs(cases) do vulkan_vs_cpu(t, case) end
  end)

  -- Each family forced on every case; one that cannot run a case (Winograd for a 5x5 kernel) leaves it to the
  -- default choice. The family's counter shows it ran.
  for _, family in ipairs {"direct", "portable", "winograd", "tiled"} do
    S:add("vulkan vs cpu: kernel family " .. family .. " forced (DPL_VK_CONV=" .. family .. ")", function(t)
      local before = dpl.stat("conv_" .. family, "vulkan")
      with_env("DPL_VK_CONV", family, function()
        for _, case in ipairs(cases) do vulkan_vs_cpu(t, case, family .. ": ") end
      end)
      t:ok(dpl.stat("conv_" .. family, "vulkan") - before >= 8, family .. " ran the cases it applies to")
    end)
  end

  -- the tiled family (the GPU kernels) with each of its workgroup tiles, on the cases with groups, strides, dilation
  -- and padding
  S:add("vulkan vs cpu: tiled family with each workgroup tile (DPL_VK_TILE)", function(t)
    with_env("DPL_VK_CONV", "tiled", function()
      for tile = 0, 3 do
        with_env("DPL_VK_TILE", tostring(tile), function()
          for _, i in ipairs {2, 4, 6, 8, 13, 18} do vulkan_vs_cpu(t, cases[i], "tiled tile " .. tile .. ": ") end
        end)
      end
    end)
  end)

  -- --precision fp16 (DPL_PRECISION=fp16): the tiled family stages its tiles in float16 and accumulates in float32.
  -- Against the float32 CPU results, on unit-variance data: at most 2e-3 of the largest |value| (measured 2.4-4.2e-4
  -- for reductions of 27 to 2304 terms; docs/vulkan.md). Not bit-identical to float32: the fp16 variant did run.
  S:add("vulkan fp16 tiles (DPL_PRECISION=fp16) against float32: within 2e-3 of the largest value", function(t)
    local function rel(a, b) return (a - b):abs():max():item() / b:abs():max():item() end
    with_env("DPL_VK_CONV", "tiled", function()
      with_env("DPL_VK_MATMUL", "tiled", function()
        with_env("DPL_PRECISION", "fp16", function()
          local worst = 0
          for _, i in ipairs {2, 5, 10, 13, 16, 18} do
            local case = cases[i]
            local x, w, b = make(case, "cpu")
            local y = dpl.conv2d(x, w, b, case.opts)
            local R = randn(y:size())
            local gx = dpl.conv2d_backward_input(R, w, x:size(), case.opts)
            local gw = dpl.conv2d_backward_weight(x, R, w:size(), case.opts)
            local vx, vw, vR = x:to("vulkan"), w:to("vulkan"), R:to("vulkan")
            local errs = {rel(dpl.conv2d(vx, vw, b and b:to("vulkan"), case.opts):cpu(), y),
                          rel(dpl.conv2d_backward_input(vR, vw, x:size(), case.opts):cpu(), gx),
                          rel(dpl.conv2d_backward_weight(vx, vR, w:size(), case.opts):cpu(), gw)}
            for k, what in ipairs {"forward", "grad input", "grad weight"} do
              t:ok(errs[k] <= 2e-3, ("%s: fp16 %s error %.2g of the largest value"):format(case.name, what, errs[k]))
              worst = math.max(worst, errs[k])
            end
          end
          local a, b = randn({3, 70, 300}), randn({3, 300, 90})
          local e = rel(a:to("vulkan"):matmul(b:to("vulkan")):cpu(), a:matmul(b))
          t:ok(e <= 2e-3, ("matmul k = 300: fp16 error %.2g"):format(e))
          t:ok(worst > 1e-5, "the fp16 tiles ran (errors of float16 rounding, not float32's)")
        end)
      end)
    end)
    t:raises(function() dpl.set_precision("fp8") end, 'expected "fp32" or "fp16"')
  end)

  S:add("vulkan vs cpu: the older switch DPL_VK_CONV_PORTABLE=1 forces the portable family", function(t)
    local before = dpl.stat("conv_portable", "vulkan")
    with_env("DPL_VK_CONV_PORTABLE", "1", function() vulkan_vs_cpu(t, cases[2], "portable: ") end)
    t:eq(dpl.stat("conv_portable", "vulkan") - before, 3, "forward, grad input and grad weight")
  end)

  -- conv2d(..., {activation = "relu"}) is relu(conv2d(...)) in one pass (the forward kernels apply it; on the CPU a
  -- pass after the convolution), and its gradients are those of the two ops: exactly, since both compute the same
  -- sums and the same mask
  S:add("conv2d with activation relu equals relu(conv2d), forward and gradients, every family", function(t)
    local function grads(dev, fused, case, x, w, b)
      x, w, b = x:to(dev):requires_grad_(), w:to(dev):requires_grad_(), b:to(dev):requires_grad_()
      local opts = {}
      for k, v in pairs(case.opts) do opts[k] = v end
      local y
      if fused then
        opts.activation = "relu"
        y = dpl.conv2d(x, w, b, opts)
      else
        y = dpl.conv2d(x, w, b, opts):relu()
      end
      local R = dpl.randn(y:size(), {seed = 5, device = dev})
      ;(y * R):sum():backward()
      return {y:cpu(), x.grad:cpu(), w.grad:cpu(), b.grad:cpu()}
    end
    local exact = {atol = 0, rtol = 0}
    local devices = {"cpu", vulkan and "vulkan" or nil}
    for _, case in ipairs {cases[1], cases[2], cases[19], cases[13]} do
      local x, w, b = make(case, "cpu")
      for _, dev in ipairs(devices) do
        for _, family in ipairs(dev == "vulkan" and {"direct", "portable", "winograd", "tiled"} or {"default"}) do
          with_env("DPL_VK_CONV", family, function()
            local fused, separate = grads(dev, true, case, x, w, b), grads(dev, false, case, x, w, b)
            for k, what in ipairs {"forward", "grad input", "grad weight", "grad bias"} do
              t:close(fused[k], separate[k], exact, ("%s %s %s: %s"):format(case.name, dev, family, what))
            end
          end)
        end
      end
    end
    t:raises(function() return dpl.conv2d(randn({1, 2, 3, 3}), randn({1, 2, 1, 1}), nil, {activation = "gelu"}) end,
             'activation must be "relu" or "none"')
    t:raises(function() return dpl.conv2d_backward_input(randn({1, 1, 3, 3}), randn({1, 2, 1, 1}), {1, 2, 3, 3},
                                                        {activation = "relu"}) end, "unknown option 'activation'")
  end)

  -- Winograd keeps the transformed weights of a frozen network between calls (runtime/src/vulkan/weight_cache.c):
  -- weights changed in place in any way must be seen on the next call, also once they have changed often enough to
  -- stop being cached, and with the cache off.
  S:add("vulkan: Winograd's cached transformed weights follow weights changed in place", function(t)
    local function follow(label)
      local x, w, b = randn({2, 16, 9, 7}), randn({12, 16, 3, 3}), randn({12})
      local R = randn({2, 12, 9, 7})
      local vx, vw, vb, vR = x:to("vulkan"), w:to("vulkan"), b:to("vulkan"), R:to("vulkan")
      local changes = {
        function(v) v:copy_(v * 1.5 + 0.25) end,
        function(v) v:mul_(-0.5) end,
        function(v) v:narrow(1, 3, 2):fill_(0.125) end,      -- through a view of the same storage
        function(v) v:relu_() end,
      }
      local tol = {atol = 1e-4 * 12, rtol = 1e-4}
      for step = 1, #changes + 1 do
        for _ = 1, 2 do   -- the second call finds the cached transform
          t:close(dpl.conv2d(vx, vw, vb, {padding = 1}):cpu(), dpl.conv2d(x, w, b, {padding = 1}), tol,
                  ("%s step %d: forward"):format(label, step))
          t:close(dpl.conv2d_backward_input(vR, vw, vx:size(), {padding = 1}):cpu(),
                  dpl.conv2d_backward_input(R, w, x:size(), {padding = 1}), tol, ("%s step %d: grad input"):format(label, step))
        end
        if changes[step] then changes[step](w); changes[step](vw) end
      end
    end
    with_env("DPL_VK_CONV", "winograd", function()
      follow("cached")
      with_env("DPL_VK_KERNEL_CACHE_MB", "0", function() follow("cache off") end)
    end)
  end)

  -- lavapipe's loop limiter stops an invocation's loops after about 65535 iterations: the weight gradient over images
  -- of more pixels than that goes in blocks of rows (it was silently wrong before)
  S:add("vulkan vs cpu: weight gradient over images of more than 65535 pixels", function(t)
    vulkan_vs_cpu(t, {name = "2 x 3 x 300 x 290, 3x3", x = {2, 3, 300, 290}, w = {4, 3, 3, 3}, opts = {padding = 1},
                      bias = true}, "large image: ")
  end)

  -- the transformed input of 7 images of 64 x 200 x 200 (23 MB each) exceeds one binding (128 MiB on lavapipe): the
  -- work goes in chunks of images, forward and grad input alike
  S:add("vulkan vs cpu: Winograd over bindings of 128 MiB (chunks of images)", function(t)
    with_env("DPL_VK_CONV", "winograd", function()
      local before = dpl.stat("conv_winograd", "vulkan")
      vulkan_vs_cpu(t, {name = "7 x 64 x 200 x 200 -> 4", x = {7, 64, 200, 200}, w = {4, 64, 3, 3}, opts = {padding = 1},
                        bias = true}, "large: ")
      t:eq(dpl.stat("conv_winograd", "vulkan") - before, 2, "forward and grad input by Winograd")
    end)
  end)

  S:add("vulkan vs cpu: batch split over several dispatches (DPL_VK_CONV_MAX_IMAGES=2)", function(t)
    local d0 = dpl.stat("dispatches", "vulkan")
    with_env("DPL_VK_CONV_MAX_IMAGES", "2", function()
      vulkan_vs_cpu(t, {name = "batch 5 in chunks of 2", x = {5, 6, 9, 7}, w = {4, 3, 3, 3},
                        opts = {stride = 2, padding = 1, groups = 2}, bias = true}, "split: ")
    end)
    -- forward, grad input and grad weight: 3 dispatches each
    t:ok(dpl.stat("dispatches", "vulkan") - d0 >= 9, "expected the work to be split into several dispatches")
    -- Winograd: 3 chunks of transforms and products, forward and grad input
    d0 = dpl.stat("dispatches", "vulkan")
    with_env("DPL_VK_CONV_MAX_IMAGES", "2", function()
      with_env("DPL_VK_CONV", "winograd", function()
        vulkan_vs_cpu(t, {name = "Winograd batch 5 in chunks of 2", x = {5, 16, 9, 7}, w = {12, 16, 3, 3},
                          opts = {padding = 1}, bias = true}, "split: ")
      end)
    end)
    t:ok(dpl.stat("dispatches", "vulkan") - d0 >= 2 * 3 * 3, "expected Winograd's chunks in several dispatches")
    -- the tiled family: the weight gradient sums slices of pixels and accumulates over the chunks
    d0 = dpl.stat("dispatches", "vulkan")
    with_env("DPL_VK_CONV_MAX_IMAGES", "2", function()
      with_env("DPL_VK_CONV", "tiled", function()
        vulkan_vs_cpu(t, {name = "tiled batch 5 in chunks of 2", x = {5, 6, 19, 17}, w = {4, 3, 3, 3},
                          opts = {stride = 2, padding = 1, groups = 2}, bias = true}, "split: ")
      end)
    end)
    t:ok(dpl.stat("dispatches", "vulkan") - d0 >= 3 * 3, "expected the tiled chunks in several dispatches")
  end)

  S:add("vulkan: non-contiguous operands and results reused in later ops", function(t)
    local big = randn({3, 8, 9, 7})
    local x = big:narrow(2, 2, 5)                        -- 3 x 5 x 9 x 7, not contiguous
    local w = randn({4, 3, 5, 3}):transpose(2, 3)         -- 4 x 5 x 3 x 3, not contiguous
    local y = dpl.conv2d(x, w, nil, {padding = 1})
    local ref = ref_conv(x:contiguous():tolist(), {3, 5, 9, 7}, w:contiguous():tolist(), {4, 5, 3, 3}, nil, {padding = 1})
    t:close(y, ref, {atol = 1e-4, rtol = 1e-4}, "cpu")
    local vy = dpl.conv2d(x:to("vulkan"), w:to("vulkan"), nil, {padding = 1})
    t:close((vy * 2):cpu(), (y * 2), {atol = 2e-4, rtol = 1e-4}, "vulkan")
  end)

  S:add("vulkan: one image larger than a binding is a clear error", function(t)
    local x = dpl.empty({1, 1, 4100, 8192}, {device = "vulkan"})  -- 134.3 MB > 128 MiB
    local w = dpl.ones({1, 1, 1, 1}, {device = "vulkan"})
    t:raises(function() return dpl.conv2d(x, w, nil, {stride = 8}) end, "exceeds the device's maximum binding")
    x:free()
  end)
end

-- ---- errors -------------------------------------------------------------------------------------------------------
S:add("argument errors name the op and the shapes", function(t)
  local x = randn({1, 4, 5, 5})
  t:raises(function() return dpl.conv2d(x, randn({2, 3, 3, 3})) end, "conv2d: input [1, 4, 5, 5] has 4 channels but weight [2, 3, 3, 3]")
  t:raises(function() return dpl.conv2d(randn({1, 6, 5, 5}), randn({4, 2, 3, 3}), nil, {groups = 3}) end,
           "groups=3 must divide")
  t:raises(function() return dpl.conv2d(x, randn({3, 2, 3, 3}), nil, {groups = 2}) end, "output channels (3")
  t:raises(function() return dpl.conv2d(x, randn({2, 4, 3, 3}), nil, {groups = 0}) end, "groups must be positive")
  t:raises(function() return dpl.conv2d(x, randn({2, 4, 6, 3})) end, "larger than the padded input")
  t:raises(function() return dpl.conv2d(x, randn({2, 4, 3, 3}), nil, {dilation = 3}) end, "kernel 3x3 (dilated 7x7)")
  t:raises(function() return dpl.conv2d(x, randn({2, 4, 3, 3}), nil, {stride = 0}) end, "stride and dilation must be positive")
  t:raises(function() return dpl.conv2d(x, randn({2, 4, 3, 3}), nil, {stride = {1, -1}}) end, "must be positive")
  t:raises(function() return dpl.conv2d(x, randn({2, 4, 3, 3}), nil, {dilation = {0, 1}}) end, "must be positive")
  t:raises(function() return dpl.conv2d(x, randn({2, 4, 3, 3}), nil, {padding = -1}) end, "padding must be non-negative")
  t:raises(function() return dpl.conv2d(randn({4, 5, 5}), randn({2, 4, 3, 3})) end, "conv2d: input must be 4-D")
  t:raises(function() return dpl.conv2d(x, randn({2, 4, 3})) end, "conv2d: weight must be 4-D")
  t:raises(function() return dpl.conv2d(x, randn({2, 4, 3, 3}), randn({3})) end, "bias must have shape [2]")
  t:raises(function() return dpl.conv2d(x, randn({2, 4, 3, 3}), nil, {strides = 2}) end, "unknown option 'strides'")
  t:raises(function() return dpl.conv2d(x, randn({2, 4, 3, 3}), nil, {stride = 1.5}) end, "stride must be an integer")
  t:raises(function() return dpl.conv2d(x, randn({2, 4, 3, 3}), nil, {padding = {1, 2, 3}}) end, "pair of integers")
  -- gradients: grad_output must match the geometry
  local w = randn({2, 4, 3, 3})
  t:raises(function() return dpl.conv2d_backward_input(randn({1, 2, 4, 3}), w, {1, 4, 5, 5}) end,
           "conv2d_backward_input: grad_output is [1, 2, 4, 3] but the convolution's output is [1, 2, 3, 3]")
  t:raises(function() return dpl.conv2d_backward_input(randn({1, 2, 3, 3}), w, {1, 5, 5, 5}) end, "has 5 channels")
  t:raises(function() return dpl.conv2d_backward_input(randn({1, 2, 3, 3}), w, {1, 4, 5}) end, "input_size must be 4 sizes")
  t:raises(function() return dpl.conv2d_backward_weight(x, randn({1, 3, 3, 3}), {2, 4, 3, 3}) end,
           "conv2d_backward_weight: grad_output is [1, 3, 3, 3]")
  t:raises(function() return dpl.conv2d_backward_weight(x, randn({1, 2, 3, 3}), {2, 4, 0, 3}) end, "zero-size dim")
  t:raises(function() return dpl.conv2d_backward_bias(randn({2, 3})) end, "conv2d_backward_bias: grad_output must be 4-D")
  if vulkan then
    t:raises(function() return dpl.conv2d(x, randn({2, 4, 3, 3}, "vulkan")) end,
             "conv2d: input is on cpu but weight is on vulkan:0")
    t:raises(function() return dpl.conv2d(x, randn({2, 4, 3, 3}), randn({2}, "vulkan")) end, "bias is on vulkan:0")
    t:raises(function() return dpl.conv2d_backward_weight(x:to("vulkan"), randn({1, 2, 3, 3}), {2, 4, 3, 3}) end,
             "conv2d_backward_weight: input is on vulkan:0 but grad_output is on cpu")
  end
  -- an empty batch gives an empty output and a zero weight gradient
  local e = dpl.conv2d(randn({0, 4, 5, 5}), w)
  t:shape(e, {0, 2, 3, 3})
  t:close(dpl.conv2d_backward_weight(randn({0, 4, 5, 5}), e, w:size()), dpl.zeros(2, 4, 3, 3), {}, "empty batch")
  t:eq(select(1, dpl.conv2d_output_size(224, 224, 11, 11, {stride = 4, padding = 2})), 55)
end)

return suite

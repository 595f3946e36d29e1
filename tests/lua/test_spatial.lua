-- Spatial ops (lua/dpl/ops/spatial.lua, runtime/src/ops/spatial.c): max_pool2d, avg_pool2d, adaptive_avg_pool2d, pad2d
-- and upsample2d, forward and backward (through dpl.autograd, whose gradients come from the backward kernels):
--  * the CPU against PyTorch: references made at test time by tests/ref/spatial_ref.py with Debian's python3-torch
--    (outputs, max pooling's argmax indices, and the input gradient of sum(y * g) for a fixed random g) on odd shapes:
--    9x7 planes, 13 channels, strides, dilation, ceil_mode windows partly outside the input (and the rule dropping a
--    window that would start in the right padding), both count_include_pad choices, adaptive sizes that do not divide
--    the input, reflect/replicate/constant pads (constant with a value, and negative pads that crop), nearest and
--    bilinear resizing up and down by non-integer factors, given as sizes or as scale factors;
--  * Vulkan against the CPU (and PyTorch) on the same cases, on a 2-D dispatch grid (> 65535 workgroups), with the
--    planes split over several dispatches (DPL_VK_SPATIAL_MAX_PLANES), on strided inputs and with NaNs;
--  * argument errors.
local dpl = require "dpl"
local test = require "dpl.test"
local suite = test.suite("spatial ops")

local vulkan = dpl.vulkan_available()

-- Every test ends with the Vulkan queue drained (work pending at os.exit trips the validation layer at shutdown).
local S = suite

local with_env = test.with_env

-- ---- references ---------------------------------------------------------------------------------------------------
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local root = here .. "/.."
local refdir = os.tmpname() .. "_spatial"
local made = os.execute(("/usr/bin/python3 %s/tests/ref/spatial_ref.py %s >/dev/null 2>&1"):format(root, refdir))
local cases = {}
do
  local chunk = loadfile(refdir .. "/cases.lua")
  if chunk then cases = chunk() end
end
local function ref(name, device) return dpl.load_npy(refdir .. "/" .. name .. ".npy", {device = device}) end

local function copy(t)
  local r = {}
  for k, v in pairs(t or {}) do r[k] = v end
  return r
end

-- runs case c on `device`: output, input gradient (of sum(y * g)), indices (max pooling)
local function run_case(c, device)
  local x = ref(c.id .. "_x", device):requires_grad_()
  local y, idx
  if c.op == "max_pool2d" then
    local o = copy(c.opts)
    o.return_indices = true
    y, idx = dpl.max_pool2d(x, c.kernel, o)
  elseif c.op == "avg_pool2d" then
    y = dpl.avg_pool2d(x, c.kernel, c.opts)
  elseif c.op == "adaptive_avg_pool2d" then
    y = dpl.adaptive_avg_pool2d(x, c.size)
  elseif c.op == "pad2d" then
    y = dpl.pad2d(x, c.pads, c.mode, c.value)
  elseif c.op == "upsample2d" then
    y = dpl.upsample2d(x, c.size or c.scale, c.mode)
  else
    error("unknown op " .. tostring(c.op))
  end
  y:backward(ref(c.id .. "_g", device))
  return y, x.grad, idx
end

local function family(op)
  local list = {}
  for _, c in ipairs(cases) do if c.op == op then list[#list + 1] = c end end
  return list
end

local TOL = {atol = 1e-5, rtol = 1e-5}          -- vs PyTorch: float sums in another order, weights 1/count
local TIGHT = {atol = 2e-6, rtol = 2e-6}        -- Vulkan vs CPU: the same tables and order (up to fma contraction)
local EXACT = {atol = 0, rtol = 0}

S:add("reference generation with python3-torch", function(t)
  t:ok(made == 0 or made == true, "tests/ref/spatial_ref.py failed: is python3-torch installed (.ci/install-deps.sh)?")
  t:ok(#cases >= 40, "expected the reference cases, got " .. #cases)
end)

for _, op in ipairs {"max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "pad2d", "upsample2d"} do
  S:add(op .. ": CPU matches PyTorch (output" .. (op == "max_pool2d" and ", indices" or "") .. ", input gradient)",
        function(t)
    local list = family(op)
    t:ok(#list > 0, "no reference cases for " .. op)
    for _, c in ipairs(list) do
      local y, gx, idx = run_case(c, "cpu")
      local exact = op == "max_pool2d" or op == "pad2d" or (op == "upsample2d" and c.mode == "nearest")
      t:close(y, ref(c.id .. "_y"), exact and EXACT or TOL, c.id .. " output")
      t:close(gx, ref(c.id .. "_gx"), TOL, c.id .. " grad input")
      if idx then t:close(idx, ref(c.id .. "_idx"), EXACT, c.id .. " indices") end
    end
  end)

  S:add(op .. ": Vulkan matches the CPU and PyTorch", function(t)
    if not vulkan then t:skip("no Vulkan device") end
    for _, c in ipairs(family(op)) do
      local yc, gc, ic = run_case(c, "cpu")
      local yv, gv, iv = run_case(c, "vulkan")
      t:eq(yv:device():sub(1, 6), "vulkan")
      t:close(yv, yc, op == "max_pool2d" and EXACT or TIGHT, c.id .. " output")
      t:close(gv, gc, op == "max_pool2d" and EXACT or TIGHT, c.id .. " grad input")
      if ic then t:close(iv, ic, EXACT, c.id .. " indices") end
      t:close(yv, ref(c.id .. "_y"), TOL, c.id .. " output vs PyTorch")
      t:close(gv, ref(c.id .. "_gx"), TOL, c.id .. " grad input vs PyTorch")
    end
  end)
end

-- ---- Vulkan dispatch geometry ----------------------------------------------------------------------------------------
-- every op forward and backward on `x`, as a list of {name, tensor} (for device comparisons); `tall`: ops on
-- N x C x H x 1 inputs
-- grad_outputs, made once on the CPU for every device (randn on Vulkan may differ in the last bits)
local grads = {}
local function all_ops(x, tall)
  local out = {}
  local function fb(name, f)
    local xi = x:detach():requires_grad_()
    local y = f(xi)
    local key = name .. " " .. tostring(y:size())
    grads[key] = grads[key] or dpl.randn(y:size(), {seed = #out + 7, device = "cpu"})
    local g = grads[key]:to(y:device())
    y:backward(g)
    out[#out + 1] = {name, y}
    out[#out + 1] = {name .. " grad", xi.grad}
  end
  if tall then
    fb("max_pool2d", function(v) return dpl.max_pool2d(v, {3, 1}, {stride = 1, padding = {1, 0}}) end)
    fb("avg_pool2d", function(v) return dpl.avg_pool2d(v, {3, 1}, {stride = 1, padding = {1, 0}}) end)
    fb("pad2d reflect", function(v) return dpl.pad2d(v, {0, 0, 1, 2}, "reflect") end)
    fb("upsample2d bilinear", function(v) return dpl.upsample2d(v, {v:size(3) + 3, 1}, "bilinear") end)
    return out
  end
  fb("max_pool2d", function(v) return dpl.max_pool2d(v, 3, {stride = 2, padding = 1, ceil_mode = true}) end)
  fb("avg_pool2d", function(v) return dpl.avg_pool2d(v, 3, {stride = 2, padding = 1, count_include_pad = false}) end)
  fb("adaptive_avg_pool2d", function(v) return dpl.adaptive_avg_pool2d(v, {5, 3}) end)
  fb("pad2d reflect", function(v) return dpl.pad2d(v, {3, 1, 2, 3}, "reflect") end)
  fb("pad2d zero", function(v) return dpl.pad2d(v, {3, 1, 2, 3}, "zero", 0.25) end)
  fb("upsample2d nearest", function(v) return dpl.upsample2d(v, {17, 12}, "nearest") end)
  fb("upsample2d bilinear", function(v) return dpl.upsample2d(v, {17, 12}, "bilinear") end)
  return out
end

-- t:close for large tensors, computed with tensor ops on the CPU (no Lua tables of millions of numbers)
local function close_big(t, a, b, tol, msg)
  a, b = a:to("cpu"), b:to("cpu")
  t:eq(tostring(a:size()), tostring(b:size()), msg .. " shape")
  local d = (a - b):abs()
  local bad = (d - (b:abs() * tol.rtol + tol.atol)):gt(0):sum():item()
  if bad > 0 then
    t:ok(false, ("%s: %d values differ, the largest |diff| is %.3g"):format(msg, bad, d:max():item()))
  end
end

local function compare_devices(t, make, label, tall)
  local xc = make("cpu")
  local xv = xc:to("vulkan")
  local rc, rv = all_ops(xc, tall), all_ops(xv, tall)
  grads = {}
  for i = 1, #rc do
    local exact = rc[i][1]:find("max_pool2d", 1, true) ~= nil
    close_big(t, rv[i][2], rc[i][2], exact and EXACT or TIGHT, label .. " " .. rc[i][1])
  end
end

S:add("Vulkan: a 2-D grid of workgroups (> 65535 x 64 invocations) matches the CPU", function(t)
  if not vulkan then t:skip("no Vulkan device") end
  -- one invocation per row of up to 8 outputs: 64 x 65600 rows of width 1 need 65600 workgroups of 64
  compare_devices(t, function(d) return dpl.randn({1, 64, 65600, 1}, {seed = 3, device = d}) end, "tall", true)
end)

S:add("Vulkan: large resizes match the CPU", function(t)
  if not vulkan then t:skip("no Vulkan device") end
  local xc = dpl.randn({1, 17, 256, 256}, {seed = 12, device = "cpu"})
  local xv = xc:to("vulkan")
  for _, m in ipairs {"nearest", "bilinear"} do
    close_big(t, dpl.upsample2d(xv, 2, m), dpl.upsample2d(xc, 2, m), TIGHT, m .. " up")
    close_big(t, dpl.upsample2d(xv, 0.3, m), dpl.upsample2d(xc, 0.3, m), TIGHT, m .. " down")
  end
end)

S:add("Vulkan: planes split over several dispatches (DPL_VK_SPATIAL_MAX_PLANES=4) match the CPU", function(t)
  if not vulkan then t:skip("no Vulkan device") end
  with_env("DPL_VK_SPATIAL_MAX_PLANES", "4", function()
    local n0 = dpl.stat("dispatches", "vulkan")
    compare_devices(t, function(d) return dpl.randn({3, 13, 9, 7}, {seed = 4, device = d}) end, "split")
    t:ok(dpl.stat("dispatches", "vulkan") - n0 >= 14 * 10, "expected at least 10 dispatches per op")
  end)
end)

S:add("strided inputs (a transposed view) give the same results as contiguous ones, on every device", function(t)
  for _, dev in ipairs(dpl.devices()) do
    local base = dpl.randn({2, 5, 7, 9}, {seed = 5, device = dev})
    local strided = base:transpose(3, 4)
    t:ok(not strided:is_contiguous())
    local a, b = all_ops(strided), all_ops(strided:contiguous())
    for i = 1, #a do t:close(a[i][2], b[i][2], EXACT, dev .. " " .. a[i][1]) end
  end
end)

S:add("C x H x W inputs work as 1 x C x H x W", function(t)
  local x = dpl.randn({3, 9, 7}, {seed = 6, device = "cpu"})
  local y, idx = dpl.max_pool2d(x, 3, {stride = 2, return_indices = true})
  t:shape(y, {3, 4, 3})
  t:shape(idx, {3, 4, 3})
  t:close(y, dpl.max_pool2d(x:unsqueeze(1), 3, {stride = 2}):squeeze(1), EXACT)
  t:shape(dpl.avg_pool2d(x, 2), {3, 4, 3})
  t:shape(dpl.adaptive_avg_pool2d(x, 2), {3, 2, 2})
  t:shape(dpl.pad2d(x, 1, "replicate"), {3, 11, 9})
  t:shape(dpl.upsample2d(x, {5, 5}, "bilinear"), {3, 5, 5})
  local xg = x:detach():requires_grad_()
  dpl.avg_pool2d(xg, 2):sum():backward()
  t:shape(xg.grad, {3, 9, 7})
end)

S:add("max_pool2d: NaN wins its windows (with its index) on every device", function(t)
  for _, dev in ipairs(dpl.devices()) do
    local x = dpl.tensor({{{{1, 2, 3, 4}, {5, 0 / 0, 7, 8}, {9, 10, 11, 12}, {13, 14, 15, 16}}}}, {device = dev})
    local y, idx = dpl.max_pool2d(x, 2, {stride = 1, return_indices = true})
    local yl, il = y:tolist(), idx:tolist()
    t:ok(yl[1] ~= yl[1] and yl[2] ~= yl[2] and yl[4] ~= yl[4] and yl[5] ~= yl[5], dev .. ": NaN outputs")
    t:eq(il[1], 5, dev .. " index of the NaN")
    t:eq(yl[9], 16, dev .. " last window")
  end
end)

S:add("overlapping max windows accumulate the gradient; empty batches give empty results", function(t)
  for _, dev in ipairs(dpl.devices()) do
    -- the centre element is the max of all four overlapping 2x2 windows
    local x = dpl.tensor({{{{0, 0, 0}, {0, 5, 0}, {0, 0, 0}}}}, {device = dev}):requires_grad_()
    dpl.max_pool2d(x, 2, {stride = 1}):sum():backward()
    t:close(x.grad, {0, 0, 0, 0, 4, 0, 0, 0, 0}, EXACT, dev)
    local e = dpl.zeros({0, 3, 9, 7}, {device = dev}):requires_grad_()
    local y = dpl.max_pool2d(e, 3, {stride = 2})
    t:shape(y, {0, 3, 4, 3})
    y:sum():backward()
    t:shape(e.grad, {0, 3, 9, 7})
    t:shape(dpl.upsample2d(e, {4, 4}, "bilinear"), {0, 3, 4, 4})
  end
end)

S:add("backward functions called directly match autograd", function(t)
  local x = ref("mp_k3s2p1_x", "cpu")
  local g = ref("mp_k3s2p1_g", "cpu")
  local _, idx = dpl.max_pool2d(x, 3, {stride = 2, padding = 1, return_indices = true})
  t:close(dpl.max_pool2d_backward(g, idx, x:size(), 3, {stride = 2, padding = 1}), ref("mp_k3s2p1_gx"), EXACT)
  local ga = ref("ap_k3s2p1_ceil_nocip_g", "cpu")
  t:close(dpl.avg_pool2d_backward(ga, x, 3, {stride = 2, padding = 1, ceil_mode = true, count_include_pad = false}),
          ref("ap_k3s2p1_ceil_nocip_gx"), TOL)
  t:close(dpl.adaptive_avg_pool2d_backward(ref("aap_9x7_4x3_g"), x), ref("aap_9x7_4x3_gx"), TOL)
  t:close(dpl.pad2d_backward(ref("pad_reflect_1213_g"), x, {1, 2, 3, 1}, "reflect"), ref("pad_reflect_1213_gx"), TOL)
  t:close(dpl.upsample2d_backward(ref("up_bilinear_scale1.7_g"), x, "bilinear", 1.7), ref("up_bilinear_scale1.7_gx"), TOL)
  local oh, ow = dpl.pool2d_output_size(4, 10, 2, {stride = 3, padding = 1, ceil_mode = true})
  t:eq(oh, 2); t:eq(ow, 4)
end)

-- ---- errors -----------------------------------------------------------------------------------------------------------
S:add("bad arguments give errors naming the op and the shapes", function(t)
  local x = dpl.randn({2, 3, 9, 7}, {seed = 8, device = "cpu"})
  local small = dpl.randn({1, 1, 2, 2}, {seed = 9, device = "cpu"})
  t:raises(function() dpl.max_pool2d(dpl.randn({9, 7}), 2) end, "max_pool2d: input must be 4-D")
  t:raises(function() dpl.avg_pool2d(dpl.randn({1, 2, 3, 9, 7}), 2) end, "avg_pool2d: input must be 4-D")
  t:raises(function() dpl.max_pool2d(small, 3) end, "larger than the padded input 2x2")
  t:raises(function() dpl.max_pool2d(small, 3, {dilation = 2, padding = 1}) end, "larger than the padded input 4x4")
  t:raises(function() dpl.max_pool2d(x, 0) end, "kernel size must be positive")
  t:raises(function() dpl.avg_pool2d(x, {3, -1}) end, "kernel size must be positive")
  t:raises(function() dpl.max_pool2d(x, 3, {stride = 0}) end, "stride must be positive")
  t:raises(function() dpl.avg_pool2d(x, 3, {stride = -2}) end, "stride must be positive")
  t:raises(function() dpl.max_pool2d(x, 3, {padding = 2}) end, "at most half the kernel size")
  t:raises(function() dpl.avg_pool2d(x, {2, 4}, {padding = {1, 3}}) end, "at most half the kernel size")
  t:raises(function() dpl.max_pool2d(x, 3, {dilation = 0}) end, "dilation must be positive")
  t:raises(function() dpl.max_pool2d(x, 3, {strides = 2}) end, "unknown option 'strides'")
  t:raises(function() dpl.avg_pool2d(x, 3, {dilation = 2}) end, "unknown option 'dilation'")
  t:raises(function() dpl.max_pool2d(x) end, "kernel size is required")
  t:raises(function() dpl.adaptive_avg_pool2d(x, {0, 3}) end, "adaptive_avg_pool2d: output size must be positive")
  t:raises(function() dpl.adaptive_avg_pool2d(dpl.randn({1, 2, 0, 3}), 2) end, "empty spatial dim")
  local msg = t:raises(function() dpl.pad2d(x, {7, 0, 0, 0}, "reflect") end, "must be smaller than the input's")
  t:ok(msg:find("[2, 3, 9, 7]", 1, true), "the message names the shape: " .. msg)
  t:raises(function() dpl.pad2d(x, {0, 0, 9, 0}, "reflect") end, "must be smaller")
  t:raises(function() dpl.pad2d(x, {-1, 0, 0, 0}, "replicate") end, "must be non-negative")
  t:raises(function() dpl.pad2d(x, {-4, -3, 0, 0}, "zero") end, "gives an output of 9x0")
  t:raises(function() dpl.pad2d(x, {1, 1, 1, 1}, "circular") end, "unknown mode 'circular'")
  t:raises(function() dpl.upsample2d(x, {0, 4}) end, "upsample_nearest2d: output size must be positive")
  t:raises(function() dpl.upsample2d(x, {4, 4}, "bicubic") end, "unknown mode 'bicubic'")
  t:raises(function() dpl.upsample2d(x, 0.05, "bilinear") end, "output size must be positive")
  -- backward shape checks
  local g = dpl.randn({2, 3, 4, 4}, {seed = 10, device = "cpu"})
  local _, idx = dpl.max_pool2d(x, 3, {stride = 2, return_indices = true})
  msg = t:raises(function() dpl.max_pool2d_backward(g, idx, x, 3, {stride = 2}) end, "max_pool2d_backward: grad_output is")
  t:ok(msg:find("[2, 3, 4, 4]", 1, true) and msg:find("[2, 3, 4, 3]", 1, true), msg)
  t:raises(function() dpl.avg_pool2d_backward(g, {2, 3, 9}, 3) end, "input_size must be 4 sizes")
  t:raises(function() dpl.pad2d_backward(g, x, {1, 1, 1, 1}, "reflect") end, "pad2d_backward: grad_output is")
  if vulkan then
    local gv = dpl.randn({2, 3, 4, 3}, {seed = 11, device = "vulkan"})
    t:raises(function() dpl.max_pool2d_backward(gv, idx, x, 3, {stride = 2}) end, "is on vulkan")
  end
end)

return suite

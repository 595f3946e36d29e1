-- Every op as a row of one case table (dpl.test.op_cases, as ggml's test-backend-ops): each case runs on the CPU and
-- on Vulkan, and its output and the gradients of sum(y * g) are compared with PyTorch in float64
-- (tests/ref/ops_ref.py) and Vulkan with the CPU. The unary and binary ops come from dpl.h's enums, so an op added to
-- the header is checked here without a new case (its PyTorch twin is torch.<name> or F.<name>; inputs in -2..2, or
-- in 0.2..3 where the op needs positive numbers). Odd shapes throughout (9, 7, 13, 5); broadcasting, scalars on
-- either side, reductions over several dims, batched matmul, views, joins, convolutions and the spatial ops.
-- Other suites check what a table cannot: NaN/inf and in-place forms (test_elementwise.lua), the CPU convolution paths
-- and their switches (test_conv2d.lua), finite differences (test_autograd.lua).
local dpl = require "dpl"
local test = require "dpl.test"
local E = require("dpl.ops").elementwise
local F = dpl.F
local S = test.suite("ops")

local cases = {}
local function case(c) cases[#cases + 1] = c end

-- ---- unary: every op of dpl_unary_op ------------------------------------------------------------------------------
local POSITIVE = {log = true, sqrt = true, rsqrt = true}
local names = {}
for name in pairs(E.unary) do names[#names + 1] = name end
table.sort(names)
for _, name in ipairs(names) do
  local shape = {3, 13, 7}
  case {id = "unary_" .. name, fn = function(x) return x[name](x) end,
        torch = ("op('%s', x0)"):format(name),
        inputs = {POSITIVE[name] and {shape = shape, lo = 0.2, hi = 3} or shape},
        grad = name ~= "sign", tol = {atol = 2e-6, rtol = 1e-5}}
end
case {id = "unary_clamp", fn = function(x) return x:clamp(-0.5, 0.7) end, torch = "torch.clamp(x0, -0.5, 0.7)",
      inputs = {{9, 7}}}
case {id = "unary_clamp_low_only", fn = function(x) return x:clamp(0.25) end, torch = "torch.clamp(x0, min=0.25)",
      inputs = {{9, 7}}}
case {id = "unary_affine", fn = function(x) return x:affine(1.5, -0.25) end, torch = "x0 * 1.5 - 0.25", inputs = {{9, 7}}}

-- ---- binary: every op of dpl_binary_op, broadcast and with a scalar on either side ---------------------------------
local BINARY_TORCH = {add = "x0 + x1", sub = "x0 - x1", mul = "x0 * x1", div = "x0 / x1", pow = "x0 ** x1",
                      maximum = "torch.maximum(x0, x1)", minimum = "torch.minimum(x0, x1)",
                      eq = "(x0 == x1).double()", ne = "(x0 != x1).double()", lt = "(x0 < x1).double()",
                      le = "(x0 <= x1).double()", gt = "(x0 > x1).double()", ge = "(x0 >= x1).double()",
                      relu_grad = "x0 * (x1 > 0).double()"}
-- no gradient: the comparisons, and relu_grad (a gradient itself)
local COMPARISON = {eq = true, ne = true, lt = true, le = true, gt = true, ge = true, relu_grad = true}
local bnames = {}
for name in pairs(E.BINARY) do bnames[#bnames + 1] = name end
table.sort(bnames)
for _, name in ipairs(bnames) do
  local a = name == "pow" and {shape = {3, 1, 5}, lo = 0.3, hi = 2} or {3, 1, 5}
  local b = name == "div" and {shape = {4, 5}, lo = 0.5, hi = 2} or {4, 5}
  case {id = "binary_" .. name, fn = function(x, y) return x[name](x, y) end,
        torch = BINARY_TORCH[name] or ("torch.%s(x0, x1)"):format(name),
        inputs = {a, b}, grad = not COMPARISON[name]}
end
case {id = "scalar_rsub", fn = function(x) return 2 - x end, torch = "2 - x0", inputs = {{9, 7}}}
case {id = "scalar_rdiv", fn = function(x) return 2 / x end, torch = "2 / x0", inputs = {{shape = {9, 7}, lo = 0.5, hi = 2}}}
case {id = "scalar_pow", fn = function(x) return x ^ 3 end, torch = "x0 ** 3", inputs = {{9, 7}}}
case {id = "scalar_rpow", fn = function(x) return 2 ^ x end, torch = "2 ** x0", inputs = {{9, 7}}}
case {id = "scalar_mul_add", fn = function(x) return x * 0.5 + 1 end, torch = "x0 * 0.5 + 1", inputs = {{9, 7}}}

-- ---- three operands -------------------------------------------------------------------------------------------------
case {id = "where", fn = function(c, a, b) return dpl.where(c:gt(0), a, b) end, torch = "torch.where(x0 > 0, x1, x2)",
      inputs = {{3, 1, 7}, {5, 7}, {3, 5, 1}}, grad = {false, true, true}}
case {id = "muladd", fn = dpl.muladd, torch = "x0 * x1 + x2", inputs = {{2, 13, 5, 3}, {1, 13, 1, 1}, {1, 13, 1, 1}}}

-- ---- reductions and matmul --------------------------------------------------------------------------------------------
local RED = {sum = "torch.sum(x0, (%s), keepdim=%s)", mean = "torch.mean(x0, (%s), keepdim=%s)",
             max = "torch.amax(x0, (%s), keepdim=%s)", min = "torch.amin(x0, (%s), keepdim=%s)",
             var = "torch.var(x0, (%s), keepdim=%s)", std = "torch.std(x0, (%s), keepdim=%s)"}
for _, name in ipairs {"sum", "mean", "max", "min", "var", "std"} do
  for _, d in ipairs {{dims = {2}, torch = "1,"}, {dims = {1, 3}, torch = "0, 2"}} do
    for _, keep in ipairs {false, true} do
      case {id = ("reduce_%s_%s%s"):format(name, table.concat(d.dims), keep and "_keep" or ""),
            fn = function(x) return x[name](x, d.dims, keep) end,
            torch = RED[name]:format(d.torch, keep and "True" or "False"), inputs = {{5, 13, 7}}}
    end
  end
end
case {id = "reduce_sum_all", fn = function(x) return x:sum() end, torch = "torch.sum(x0)", inputs = {{5, 13, 7}}}
case {id = "reduce_var_biased", fn = function(x) return x:var(3, false, false) end,
      torch = "torch.var(x0, 2, unbiased=False)", inputs = {{5, 13, 7}}}
case {id = "reduce_argmax", fn = function(x) return x:argmax(2) end, torch = "torch.argmax(x0, 1).double()",
      inputs = {{5, 13, 7}}, grad = false}
case {id = "reduce_argmin", fn = function(x) return x:argmin(-1) end, torch = "torch.argmin(x0, -1).double()",
      inputs = {{5, 13, 7}}, grad = false}
case {id = "matmul_2d", fn = dpl.matmul, torch = "x0 @ x1", inputs = {{9, 13}, {13, 7}}}
case {id = "matmul_batched_broadcast", fn = dpl.matmul, torch = "x0 @ x1", inputs = {{3, 1, 5, 13}, {4, 13, 7}}}
case {id = "matmul_vector_left", fn = dpl.matmul, torch = "x0 @ x1", inputs = {{13}, {2, 13, 7}}}
case {id = "matmul_vector_right", fn = dpl.matmul, torch = "x0 @ x1", inputs = {{9, 13}, {13}}}

-- ---- views, copies, joins ---------------------------------------------------------------------------------------------
case {id = "permute", fn = function(x) return x:permute(3, 1, 2):contiguous() * 1 end,
      torch = "x0.permute(2, 0, 1) * 1", inputs = {{5, 3, 7}}}
case {id = "transpose_narrow_select", fn = function(x) return x:transpose(1, 3):narrow(2, 2, 2):select(1, 4) * 2 end,
      torch = "x0.transpose(0, 2).narrow(1, 1, 2).select(0, 3) * 2", inputs = {{5, 3, 7}}}
case {id = "expand_reshape", fn = function(x) return x:expand(4, 3, 7):reshape(12, 7) * 1 end,
      torch = "x0.expand(4, 3, 7).reshape(12, 7) * 1", inputs = {{1, 3, 7}}}
case {id = "cat", fn = function(a, b) return dpl.cat({a, b, a}, 2) end, torch = "torch.cat([x0, x1, x0], 1)",
      inputs = {{2, 3, 5}, {2, 7, 5}}}

-- ---- convolutions -------------------------------------------------------------------------------------------------------
-- tolerance: float32 sums of N(0, 1) products in another order grow with sqrt(terms)
local function conv_tol(terms) return {atol = 1e-5 * math.sqrt(terms), rtol = 1e-4} end
local function conv(id, xs, ws, opts, bias)
  local torch_opts = {}
  for _, k in ipairs {"stride", "padding", "dilation", "groups"} do
    local v = opts[k]
    if type(v) == "table" then v = ("(%d, %d)"):format(v[1], v[2]) end
    if v then torch_opts[#torch_opts + 1] = k .. "=" .. v end
  end
  local inputs = {{shape = xs}, {shape = ws}}
  if bias then inputs[3] = {ws[1]} end
  case {id = "conv2d_" .. id, inputs = inputs, tol = conv_tol(ws[2] * ws[3] * ws[4] * 8),
        fn = function(x, w, b) return F.conv2d(x, w, b, opts) end,
        torch = ("F.conv2d(x0, x1, %s, %s)"):format(bias and "x2" or "None", table.concat(torch_opts, ", "))}
end
conv("p1_13ch", {2, 13, 9, 7}, {5, 13, 3, 3}, {padding = 1}, true)
conv("s2_p1", {3, 13, 9, 7}, {8, 13, 3, 3}, {stride = 2, padding = 1}, true)
conv("d2_p2", {2, 6, 9, 7}, {9, 6, 3, 3}, {padding = 2, dilation = 2}, true)
conv("k32_s21_p12_d12", {2, 5, 9, 7}, {4, 5, 3, 2}, {stride = {2, 1}, padding = {1, 2}, dilation = {1, 2}})
conv("g3", {2, 12, 9, 7}, {6, 4, 3, 3}, {padding = 1, groups = 3}, true)
conv("g3_13out_s2", {3, 9, 9, 7}, {39, 3, 3, 3}, {stride = 2, padding = 1, groups = 3}, true)
conv("depthwise_13", {3, 13, 9, 7}, {13, 1, 3, 3}, {padding = 1, groups = 13}, true)
conv("depthwise_x2_s2_d2", {2, 4, 9, 7}, {8, 1, 3, 3}, {stride = 2, padding = 2, dilation = 2, groups = 4})
conv("resnext_32g", {2, 64, 7, 5}, {64, 2, 3, 3}, {stride = 2, padding = 1, groups = 32})
conv("k1", {3, 13, 9, 7}, {7, 13, 1, 1}, {}, true)
conv("k1_s2", {3, 13, 9, 7}, {7, 13, 1, 1}, {stride = 2})
conv("alexnet_k11_s4", {2, 3, 35, 35}, {16, 3, 11, 11}, {stride = 4, padding = 2}, true)
conv("kernel_eq_padded", {2, 3, 4, 5}, {4, 3, 6, 7}, {padding = 1}, true)
conv("k5_s3_40out", {1, 7, 13, 11}, {40, 7, 5, 5}, {stride = 3, padding = 2}, true)
case {id = "conv_transpose2d_s2_op1", inputs = {{2, 6, 5, 4}, {6, 4, 3, 3}, {4}}, tol = conv_tol(6 * 9 * 8),
      fn = function(x, w, b) return F.conv_transpose2d(x, w, b, {stride = 2, padding = 1, output_padding = 1}) end,
      torch = "F.conv_transpose2d(x0, x1, x2, stride=2, padding=1, output_padding=1)"}

-- ---- batch norm with the batch's statistics (the runtime's dpl_batch_norm_forward / _backward) ------------------
case {id = "batch_norm_train", inputs = {{3, 5, 4, 7}, {5}, {5}}, tol = conv_tol(84),
      fn = function(x, w, b) return F.batch_norm(x, nil, nil, w, b, true) end,
      torch = "F.batch_norm(x0, None, None, x1, x2, training=True)"}
case {id = "batch_norm_train_2d_plain", inputs = {{6, 4}}, tol = conv_tol(6),
      fn = function(x) return F.batch_norm(x, nil, nil, nil, nil, true) end,
      torch = "F.batch_norm(x0, None, None, None, None, training=True)"}

-- ---- pooling, padding, resizing ------------------------------------------------------------------------------------------
case {id = "max_pool2d_ceil", fn = function(x) return F.max_pool2d(x, 3, {stride = 2, ceil_mode = true}) end,
      torch = "F.max_pool2d(x0, 3, 2, ceil_mode=True)", inputs = {{2, 3, 9, 7}}}
case {id = "avg_pool2d_pad_exclude", inputs = {{2, 3, 9, 7}},
      fn = function(x) return F.avg_pool2d(x, 3, {stride = 2, padding = 1, count_include_pad = false}) end,
      torch = "F.avg_pool2d(x0, 3, 2, 1, count_include_pad=False)"}
case {id = "adaptive_avg_pool2d", fn = function(x) return F.adaptive_avg_pool2d(x, {4, 3}) end,
      torch = "F.adaptive_avg_pool2d(x0, (4, 3))", inputs = {{2, 3, 9, 7}}}
case {id = "pad2d_reflect", fn = function(x) return F.pad2d(x, {1, 2, 3, 1}, "reflect") end,
      torch = "F.pad(x0, (1, 2, 3, 1), mode='reflect')", inputs = {{2, 3, 9, 7}}}
case {id = "upsample2d_bilinear", fn = function(x) return F.upsample2d(x, {13, 11}, "bilinear") end,
      torch = "F.interpolate(x0, size=(13, 11), mode='bilinear', align_corners=False)", inputs = {{2, 3, 9, 7}}}

test.op_cases(S, cases, {tag = "ops"})
return S

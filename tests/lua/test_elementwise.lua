-- test_elementwise.lua: every binary and unary op, where and the in-place forms, Vulkan against the CPU reference on
-- identical inputs (built on the CPU, copied with :to("vulkan")), on odd shapes, broadcast, non-contiguous inputs and
-- outputs, plus hand-computed values and NaN/inf edge cases on every device, and one large tensor (160 MB) that must
-- be split across bindings. Without Vulkan the CPU checks still run and each comparison test passes with a note.
local dpl = require "dpl"
local ffi = require "ffi"
local test = require "dpl.test"
local S = test.suite("elementwise")

local HAVE_VK = dpl.vulkan_available()
local no_vulkan_note = test.no_vulkan_note
local DEVICES = test.devices()
local each_device = test.each_device
local NAN, INF = 0 / 0, math.huge
local BINARY = {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge"}
local COMPARE = {eq = true, ne = true, lt = true, le = true, gt = true, ge = true}

-- Tolerances of Vulkan vs CPU. +, -, *, /, comparisons, min/max, copies are exact IEEE float ops on both sides; the
-- transcendental functions of GLSL are allowed a few ulp (exp: 3 + 2|x| ulp, log: 3 ulp or 2^-21 absolute near 1).
local EXACT = {atol = 0, rtol = 0}
local ARITH = {atol = 1e-7, rtol = 1e-6}
local TRANSC = {atol = 1e-6, rtol = 1e-5}

-- ---- inputs (always built on the CPU) ----------------------------------------------------------------------------
local seed_counter = 100
local function next_seed() seed_counter = seed_counter + 1; return seed_counter end

local function uniform(shape, lo, hi)
  return dpl.uniform(lo or -2, hi or 2, shape, {seed = next_seed(), device = "cpu"})
end

-- small integers in [lo, hi] (ties for comparisons, zeros for sign)
local function ints(shape, lo, hi)
  lo, hi = lo or -2, hi or 2
  local u = dpl.rand(shape, {seed = next_seed(), device = "cpu"})
  local vals = u:tolist()
  for i = 1, #vals do vals[i] = lo + math.floor(vals[i] * (hi - lo + 1)) end
  local buf = ffi.new("float[?]", math.max(#vals, 1), vals)
  return dpl.from_pointer(buf, shape, {device = "cpu"})
end

-- input for binary op `name` (which = 1 for the left operand, 2 for the right)
local function operand(name, which, shape)
  if COMPARE[name] then return ints(shape) end
  if name == "pow" then return which == 1 and uniform(shape, 0.25, 3) or uniform(shape, -2, 2) end
  if name == "div" and which == 2 then return uniform(shape, 0.5, 2) end
  return uniform(shape)
end

local function tol_of(name)
  if name == "pow" then return TRANSC end
  if COMPARE[name] or name == "maximum" or name == "minimum" then return EXACT end
  return ARITH
end

local function to_vk(x)
  if dpl.is_tensor(x) then return x:to("vulkan") end
  return x
end

-- fn(...) on the CPU inputs and on Vulkan copies of them; the results must agree. Returns the CPU result.
local function same_on_vulkan(t, tol, what, fn, ...)
  local args = {...}
  local n = select("#", ...)
  local ref = fn(unpack(args, 1, n))
  if HAVE_VK then
    local vargs = {}
    for i = 1, n do vargs[i] = to_vk(args[i]) end
    local got = fn(unpack(vargs, 1, n))
    t:ok(got:device():find("vulkan") ~= nil, what .. ": result on vulkan")
    t:close(got, ref, tol, what)
  end
  return ref
end

local function shape_str(s) return table.concat(s, "x") end

local SHAPES = {{1}, {7}, {9, 13}, {3, 5, 7}, {2, 13, 9, 7}}
local BROADCASTS = {
  {{9, 13}, {13}}, {{9, 1}, {1, 13}}, {{13}, {9, 13}}, {{3, 5, 7}, {5, 1}}, {{2, 13, 9, 7}, {13, 1, 7}},
  {{2, 1, 9, 1}, {13, 1, 7}}, {{1}, {2, 3}}, {{7}, {1}},
}

-- ---- binary ops -----------------------------------------------------------------------------------------------------
S:add("binary ops, same shapes", function(t)
  for _, name in ipairs(BINARY) do
    for _, shape in ipairs(SHAPES) do
      local a, b = operand(name, 1, shape), operand(name, 2, shape)
      same_on_vulkan(t, tol_of(name), name .. " " .. shape_str(shape), function(x, y) return x[name](x, y) end, a, b)
    end
  end
  no_vulkan_note(t)
end)

S:add("binary ops with broadcasting", function(t)
  for _, name in ipairs(BINARY) do
    for _, pair in ipairs(BROADCASTS) do
      local a, b = operand(name, 1, pair[1]), operand(name, 2, pair[2])
      local r = same_on_vulkan(t, tol_of(name), ("%s %s with %s"):format(name, shape_str(pair[1]), shape_str(pair[2])),
                               function(x, y) return x[name](x, y) end, a, b)
      -- the result has the broadcast shape
      local n = math.max(#pair[1], #pair[2])
      t:eq(r:dim(), n)
    end
  end
  no_vulkan_note(t)
end)

S:add("binary ops with a scalar on either side", function(t)
  local T = dpl.Tensor
  for _, name in ipairs(BINARY) do
    for _, shape in ipairs {{1}, {7}, {9, 13}, {2, 13, 9, 7}} do
      local x = operand(name, 1, shape)
      local s = COMPARE[name] and 1 or (name == "pow" and 2 or 1.75)
      same_on_vulkan(t, tol_of(name), name .. "(x, s) " .. shape_str(shape), function(v) return T[name](v, s) end, x)
      local y = operand(name, 2, shape)   -- as the right operand: positive for div, small for pow
      local s2 = name == "pow" and 1.5 or s
      same_on_vulkan(t, tol_of(name), name .. "(s, x) " .. shape_str(shape), function(v) return T[name](s2, v) end, y)
    end
  end
  -- operators with numbers on the left
  local x = uniform({9, 13}, 0.5, 2)
  same_on_vulkan(t, ARITH, "2 - x", function(v) return 2 - v end, x)
  same_on_vulkan(t, ARITH, "3 / x", function(v) return 3 / v end, x)
  same_on_vulkan(t, ARITH, "0.5 * x + 4", function(v) return 0.5 * v + 4 end, x)
  same_on_vulkan(t, TRANSC, "2 ^ x", function(v) return 2 ^ v end, x)
  same_on_vulkan(t, TRANSC, "x ^ 3", function(v) return v ^ 3 end, x)
  same_on_vulkan(t, ARITH, "-x", function(v) return -v end, x)
  no_vulkan_note(t)
end)

S:add("binary ops: hand-computed values", function(t)
  each_device(t, function(t, dev)
    local o = {device = dev}
    local a = dpl.tensor({1, 2, 3}, o)
    local b = dpl.tensor({{10}, {20}}, o)
    t:close(a + b, {11, 12, 13, 21, 22, 23}, EXACT)
    t:shape(a + b, {2, 3})
    t:close(b - a, {9, 8, 7, 19, 18, 17}, EXACT)
    t:close(a * b, {10, 20, 30, 20, 40, 60}, EXACT)
    t:close(a / dpl.tensor({2, 4, 8}, o), {0.5, 0.5, 0.375}, EXACT)
    t:close(2 - a, {1, 0, -1}, EXACT)
    t:close(6 / a, {6, 3, 2}, EXACT)
    t:close(a - 1, {0, 1, 2}, EXACT)
    t:close(a ^ 2, {1, 4, 9}, {atol = 1e-6, rtol = 1e-6})
    t:close(2 ^ a, {2, 4, 8}, {atol = 1e-6, rtol = 1e-6})
    t:close(a:maximum(dpl.tensor({3, 1, 2}, o)), {3, 2, 3}, EXACT)
    t:close(a:minimum(2), {1, 2, 2}, EXACT)
    t:close(a:eq(2), {0, 1, 0}, EXACT)
    t:close(a:ne(2), {1, 0, 1}, EXACT)
    t:close(a:lt(2), {1, 0, 0}, EXACT)
    t:close(a:le(2), {1, 1, 0}, EXACT)
    t:close(a:gt(2), {0, 0, 1}, EXACT)
    t:close(a:ge(2), {0, 1, 1}, EXACT)
    t:close(dpl.Tensor.lt(2, a), {0, 0, 1}, EXACT, "2 < a")
    t:close(dpl.Tensor.sub(10, a), {9, 8, 7}, EXACT, "10 - a")
    t:close(dpl.Tensor.maximum(2.5, a), {2.5, 2.5, 3}, EXACT)
  end)
end)

S:add("binary ops: NaN and inf", function(t)
  each_device(t, function(t, dev)
    local o = {device = dev}
    -- pow follows C's powf: integral exponents of negative bases are fine, fractional ones give NaN
    local base = dpl.tensor({-2, -2, -2, -2, -0.5, -2, 0, 0, 2, NAN, -8, 1, 3}, o)
    local ex = dpl.tensor({3, 2, -1, -2, 3, 0.5, -1, 0, -1, 0, 1 / 3, 5, 0}, o)
    t:close(base:pow(ex), {-8, 4, -0.5, 0.25, -0.125, NAN, INF, 1, 0.5, 1, NAN, 1, 1}, {atol = 1e-6, rtol = 1e-6})
    t:close(dpl.tensor({-3, -1.5}, o) ^ 2, {9, 2.25}, {atol = 1e-6, rtol = 1e-6})
    t:close(dpl.Tensor.pow(-2, dpl.tensor({3, 4, 0.5}, o)), {-8, 16, NAN}, {atol = 1e-6, rtol = 1e-6})
    -- maximum and minimum propagate NaN from either side
    local x = dpl.tensor({NAN, 1, -INF, INF, NAN}, o)
    local y = dpl.tensor({1, NAN, 0, 2, NAN}, o)
    t:close(x:maximum(y), {NAN, NAN, 0, INF, NAN}, EXACT)
    t:close(x:minimum(y), {NAN, NAN, -INF, 2, NAN}, EXACT)
    t:close(x:maximum(0), {NAN, 1, 0, INF, NAN}, EXACT)
    -- division by zero
    t:close(dpl.tensor({1, -1, 0}, o) / dpl.tensor({0, 0, 0}, o), {INF, -INF, NAN}, EXACT)
    t:close(dpl.tensor({INF, -INF}, o) - dpl.tensor({INF, 1}, o), {NAN, -INF}, EXACT)
    -- comparisons with NaN are false, except ne
    local n = dpl.tensor({NAN, NAN, 1}, o)
    local m = dpl.tensor({NAN, 1, NAN}, o)
    t:close(n:eq(m), {0, 0, 0}, EXACT)
    t:close(n:ne(m), {1, 1, 1}, EXACT)
    t:close(n:lt(m), {0, 0, 0}, EXACT)
    t:close(n:ge(m), {0, 0, 0}, EXACT)
    -- relu_grad(g, x): g where x > 0, exactly 0 elsewhere, even for an infinite or NaN g (not g * 0 = NaN); a NaN x
    -- is not > 0
    local g = dpl.tensor({INF, NAN, -3, 2.5, NAN, INF, 7}, o)
    local xr = dpl.tensor({-1, 0, 0, 1e-30, 2, 5, NAN}, o)
    t:close(g:relu_grad(xr), {0, 0, 0, 2.5, NAN, INF, 0}, EXACT)
    t:close(dpl.tensor({-INF, INF}, o):lt(dpl.tensor({INF, INF}, o)), {1, 0}, EXACT)
  end)
end)

-- ---- unary ops ------------------------------------------------------------------------------------------------------
local UNARY = {
  {"neg", function(x) return x:neg() end, -3, 3, EXACT},
  {"exp", function(x) return x:exp() end, -5, 5, TRANSC},
  {"log", function(x) return x:log() end, 0.01, 10, TRANSC},
  {"sqrt", function(x) return x:sqrt() end, 0, 10, TRANSC},
  {"abs", function(x) return x:abs() end, -3, 3, EXACT},
  {"square", function(x) return x:square() end, -3, 3, ARITH},
  {"rsqrt", function(x) return x:rsqrt() end, 0.01, 10, TRANSC},
  {"sign", function(x) return x:sign() end, "ints", nil, EXACT},
  {"relu", function(x) return x:relu() end, -3, 3, EXACT},
  {"sigmoid", function(x) return x:sigmoid() end, -12, 12, TRANSC},
  {"silu", function(x) return x:silu() end, -12, 12, TRANSC},
  {"tanh", function(x) return x:tanh() end, -20, 20, TRANSC},
  {"clamp", function(x) return x:clamp(-0.5, 0.7) end, -3, 3, EXACT},
  {"clamp min only", function(x) return x:clamp(-1) end, -3, 3, EXACT},
  {"clamp max only", function(x) return x:clamp(nil, 0.25) end, -3, 3, EXACT},
  {"affine", function(x) return x:affine(2.5, -1) end, -3, 3, ARITH},
}

S:add("unary ops on odd shapes", function(t)
  for _, u in ipairs(UNARY) do
    for _, shape in ipairs(SHAPES) do
      local x = u[3] == "ints" and ints(shape) or uniform(shape, u[3], u[4])
      same_on_vulkan(t, u[5], u[1] .. " " .. shape_str(shape), u[2], x)
    end
  end
  no_vulkan_note(t)
end)

S:add("unary ops on non-contiguous inputs", function(t)
  for _, u in ipairs(UNARY) do
    local lo, hi = u[3] == "ints" and -2 or u[3], u[4] or 2
    local m = uniform({13, 9}, lo, hi)
    same_on_vulkan(t, u[5], u[1] .. " transposed", function(x) return u[2](x:t()) end, m)
    same_on_vulkan(t, u[5], u[1] .. " narrowed", function(x) return u[2](x:narrow(2, 3, 5)) end, m)
    same_on_vulkan(t, u[5], u[1] .. " expanded", function(x) return u[2](x:narrow(2, 1, 1):expand(13, 6)) end, m)
    local q = uniform({2, 13, 9, 7}, lo, hi)
    same_on_vulkan(t, u[5], u[1] .. " permuted 4-d", function(x) return u[2](x:permute(4, 2, 1, 3)) end, q)
  end
  no_vulkan_note(t)
end)

S:add("unary ops: hand-computed values, NaN and inf", function(t)
  each_device(t, function(t, dev)
    local o = {device = dev}
    local x = dpl.tensor({-2, -0.5, 0, 1, 4}, o)
    t:close(x:neg(), {2, 0.5, 0, -1, -4}, EXACT)
    t:close(x:abs(), {2, 0.5, 0, 1, 4}, EXACT)
    t:close(x:square(), {4, 0.25, 0, 1, 16}, EXACT)
    t:close(x:sign(), {-1, -1, 0, 1, 1}, EXACT)
    t:close(x:relu(), {0, 0, 0, 1, 4}, EXACT)
    t:close(x:clamp(-1, 1), {-1, -0.5, 0, 1, 1}, EXACT)
    t:close(x:affine(2, 1), {-3, 0, 1, 3, 9}, EXACT)
    t:close(x:exp(), {math.exp(-2), math.exp(-0.5), 1, math.exp(1), math.exp(4)}, TRANSC)
    t:close(x:sigmoid(), {1 / (1 + math.exp(2)), 1 / (1 + math.exp(0.5)), 0.5, 1 / (1 + math.exp(-1)),
                          1 / (1 + math.exp(-4))}, TRANSC)
    t:close(x:tanh(), {-0.9640275800758169, -0.46211715726000974, 0, 0.7615941559557649, 0.999329299739067}, TRANSC)
    local p = dpl.tensor({0.25, 1, 4, 100}, o)
    t:close(p:sqrt(), {0.5, 1, 2, 10}, TRANSC)
    t:close(p:rsqrt(), {2, 1, 0.5, 0.1}, TRANSC)
    t:close(p:log(), {math.log(0.25), 0, math.log(4), math.log(100)}, TRANSC)
    -- edge values
    local e = dpl.tensor({0, -1, INF, -INF, NAN}, o)
    t:close(e:log(), {-INF, NAN, INF, NAN, NAN}, EXACT, "log")
    t:close(e:sqrt(), {0, NAN, INF, NAN, NAN}, EXACT, "sqrt")
    t:close(dpl.tensor({0, INF}, o):rsqrt(), {INF, 0}, EXACT, "rsqrt")
    t:close(dpl.tensor({100, -100, -INF, INF}, o):exp(), {INF, 0, 0, INF}, {atol = 1e-30, rtol = 0}, "exp")
    t:close(e:abs(), {0, 1, INF, INF, NAN}, EXACT, "abs")
    t:close(e:neg(), {0, 1, -INF, INF, NAN}, EXACT, "neg")
    t:close(e:relu(), {0, 0, INF, 0, 0}, EXACT, "relu (NaN gives 0, as the CPU reference)")
    t:close(e:sign(), {0, -1, 1, -1, NAN}, EXACT, "sign")
    t:close(e:clamp(-3, 3), {0, -1, 3, -3, NAN}, EXACT, "clamp keeps NaN")
    t:close(dpl.tensor({INF, -INF, 100, -100, NAN}, o):sigmoid(), {1, 0, 1, 0, NAN}, {atol = 1e-30, rtol = 0},
            "sigmoid")
    t:close(dpl.tensor({INF, -INF, 50, -50, NAN}, o):tanh(), {1, -1, 1, -1, NAN}, EXACT, "tanh")
  end)
end)

-- The CPU hands sigmoid, SiLU and tanh of large contiguous tensors to oneDNN when dpl is built with it
-- (cpu/dnnl_cpu.c; the small tensors above stay on dpl's loops): both paths against a double-precision formula, and
-- against each other, on an odd length with the edge values spread through it. exp stays on dpl's loop (oneDNN 2.6
-- gives inf for NaN): checked here too, for the path it must not take.
S:add("cpu activations through oneDNN and through dpl's loops (DPL_CPU_DNNL=0)", function(t)
  local n = 9973
  local x = uniform({n}, -30, 30)
  local edges = {INF, -INF, NAN, 0, -0.0, 88.5, -88.5, 1e-20, -1e-20, 20, -20}
  for i, v in ipairs(edges) do x:narrow(1, i * 700, 1):fill_(v) end
  local xs = x:tolist()
  local ref = {
    sigmoid = function(v) return 1 / (1 + math.exp(-v)) end,
    silu = function(v) return v / (1 + math.exp(-v)) end,
    tanh = function(v) if v ~= v then return v end if math.abs(v) > 20 then return v > 0 and 1 or -1 end
                       local e = math.exp(2 * v) return (e - 1) / (e + 1) end,
    exp = function(v) return math.exp(v) end,
  }
  local built = dpl.stat("dnnl_activations", "cpu") >= 0
  for _, op in ipairs {"sigmoid", "silu", "tanh", "exp"} do
    local want = {}
    for i, v in ipairs(xs) do
      local r = ref[op](v)
      if op == "silu" and v == -INF then r = NAN end      -- -inf * sigmoid(-inf) = -inf * 0, as in PyTorch
      if op == "silu" and v == INF then r = INF end
      want[i] = r
    end
    local before = dpl.stat("dnnl_activations", "cpu")
    local fast = x[op](x)
    local via = (built and op ~= "exp") and 1 or 0
    t:eq(dpl.stat("dnnl_activations", "cpu"), before + via, op .. (via == 1 and ": ran through oneDNN" or ": not through oneDNN"))
    local plain
    test.with_env("DPL_CPU_DNNL", "0", function() plain = x[op](x) end)
    t:eq(dpl.stat("dnnl_activations", "cpu"), before + via, op .. ": DPL_CPU_DNNL=0 keeps it off oneDNN")
    t:close(fast, want, TRANSC, op .. " (as chosen) vs the formula in double")
    t:close(plain, want, TRANSC, op .. " (dpl's loop) vs the formula in double")
    t:close(fast, plain, TRANSC, op .. ": the two paths")
  end
end)

-- ---- muladd ---------------------------------------------------------------------------------------------------------
-- x * a + b in one pass: the CPU against the two ops it replaces (the same roundings, so exactly equal), Vulkan
-- against the CPU, on batch norm's broadcast, full shapes, mixed broadcasts and non-contiguous operands
S:add("muladd with broadcasting and non-contiguous operands", function(t)
  local function two_ops(x, a, b) return x * a + b end
  local function check(what, x, a, b)
    local y = same_on_vulkan(t, ARITH, "muladd " .. what, dpl.muladd, x, a, b)
    t:close(y, two_ops(x, a, b), EXACT, "muladd " .. what .. " = x * a + b on the cpu")
  end
  check("batch norm (2x13x9x7 by 1x13x1x1)", uniform({2, 13, 9, 7}), uniform({1, 13, 1, 1}), uniform({1, 13, 1, 1}))
  check("same shapes", uniform({9, 13}), uniform({9, 13}), uniform({9, 13}))
  check("mixed broadcast", uniform({13, 1, 7}), uniform({9, 1}), uniform({7}))
  check("transposed x", uniform({13, 9}):t(), uniform({13}), uniform({9, 1}))
  check("permuted 4-d x", uniform({2, 13, 9, 7}):permute(4, 2, 1, 3), uniform({1, 13, 1, 1}), uniform({2, 1}))
  check("scalar-like a and b", uniform({3, 5, 7}), uniform({1}), uniform({1}))
  each_device(t, function(t, dev)
    local o = {device = dev}
    local y = dpl.muladd(dpl.tensor({1, -2, INF, NAN}, o), dpl.tensor({{2}, {0}}, o), dpl.tensor({0.5}, o))
    t:shape(y, {2, 4})
    t:close(y, {2.5, -3.5, INF, NAN, 0.5, 0.5, NAN, NAN}, EXACT, "hand-computed, inf * 0 and NaN")
    t:raises(function() dpl.muladd(dpl.tensor({1, 2, 3}, o), dpl.tensor({1, 2}, o), dpl.tensor({1}, o)) end,
             "muladd", "shape mismatch names the op")
  end)
  no_vulkan_note(t)
end)

-- ---- where ----------------------------------------------------------------------------------------------------------
S:add("where with broadcasting and non-contiguous operands", function(t)
  local function w(c, a, b) return dpl.where(c, a, b) end
  local c = ints({9, 13}, 0, 1)
  same_on_vulkan(t, EXACT, "where same shapes", w, c, uniform({9, 13}), uniform({9, 13}))
  same_on_vulkan(t, EXACT, "where broadcast", w, ints({9, 1}, 0, 1), uniform({13}), uniform({9, 13}))
  same_on_vulkan(t, EXACT, "where scalar-like", w, ints({2, 13, 9, 7}, -1, 1), uniform({1}), uniform({13, 1, 7}))
  same_on_vulkan(t, EXACT, "where transposed", function(cc, a, b) return dpl.where(cc:t(), a:t(), b) end,
                 ints({13, 9}, 0, 1), uniform({13, 9}), uniform({9, 13}))
  same_on_vulkan(t, EXACT, "where of a comparison", function(a) return dpl.where(a:gt(0), a, a * 0.1) end,
                 uniform({3, 5, 7}))
  each_device(t, function(t, dev)
    local o = {device = dev}
    local r = dpl.where(dpl.tensor({{1}, {0}}, o), dpl.tensor({1, 2, 3}, o), dpl.tensor({-1}, o))
    t:shape(r, {2, 3})
    t:close(r, {1, 2, 3, -1, -1, -1}, EXACT)
    t:close(dpl.where(dpl.tensor({NAN, 0, -2}, o), dpl.tensor({5}, o), dpl.tensor({7}, o)), {5, 7, 5}, EXACT,
            "any nonzero (NaN too) selects a")
  end)
  no_vulkan_note(t)
end)

-- ---- non-contiguous inputs ---------------------------------------------------------------------------------------------
S:add("binary ops on non-contiguous inputs", function(t)
  for _, name in ipairs {"add", "sub", "mul", "div", "pow", "maximum", "lt"} do
    local tol = tol_of(name)
    local f = function(x, y) return x[name](x, y) end
    local a, b = operand(name, 1, {13, 9}), operand(name, 2, {9, 13})
    same_on_vulkan(t, tol, name .. " transposed + contiguous", function(x, y) return f(x:t(), y) end, a, b)
    same_on_vulkan(t, tol, name .. " transposed both", function(x, y) return f(x, y:t()) end, a, b)
    local c, d = operand(name, 1, {9, 20}), operand(name, 2, {11, 13})
    same_on_vulkan(t, tol, name .. " narrowed", function(x, y) return f(x:narrow(2, 4, 13), y:narrow(1, 2, 9)) end, c, d)
    local e = operand(name, 1, {9, 1})
    same_on_vulkan(t, tol, name .. " expanded", function(x, y) return f(x:expand(9, 13), y) end, e, b)
    local p, q = operand(name, 1, {2, 13, 9, 7}), operand(name, 2, {7, 9, 2, 13})
    same_on_vulkan(t, tol, name .. " permuted 4-d", function(x, y) return f(x:permute(4, 3, 1, 2), y) end, p, q)
    same_on_vulkan(t, tol, name .. " both permuted 4-d",
                   function(x, y) return f(x:permute(2, 4, 1, 3), y:permute(4, 1, 3, 2)) end, p, q)
    -- more dims than a shader takes (4): split into several dispatches
    local r5 = operand(name, 1, {2, 3, 4, 5, 6})
    local s5 = operand(name, 2, {3, 6, 5, 2, 4})
    same_on_vulkan(t, tol, name .. " permuted 5-d",
                   function(x, y) return f(x:permute(5, 3, 1, 4, 2), y:permute(2, 5, 4, 3, 1)) end, r5, s5)
    local r6 = operand(name, 1, {2, 3, 2, 3, 2, 3})
    same_on_vulkan(t, tol, name .. " permuted 6-d with a scalar",
                   function(x) return x:permute(6, 1, 5, 2, 4, 3)[name](x:permute(6, 1, 5, 2, 4, 3), 1.5) end, r6)
  end
  no_vulkan_note(t)
end)

-- ---- in place and non-contiguous outputs -------------------------------------------------------------------------------
S:add("in-place ops, also on non-contiguous views", function(t)
  local function run(...) return same_on_vulkan(t, ARITH, ...) end
  local base, y = uniform({9, 13}), uniform({9, 13})
  run("add_ tensor", function(x, z) return x:clone():add_(z) end, base, y)
  run("add_ scalar", function(x) return x:clone():add_(2.5) end, base)
  run("add_ broadcast", function(x, z) return x:clone():add_(z:narrow(1, 1, 1)) end, base, y)
  run("mul_ tensor", function(x, z) return x:clone():mul_(z) end, base, y)
  run("mul_ scalar", function(x) return x:clone():mul_(-3) end, base)
  run("relu_", function(x) return x:clone():relu_() end, base)
  run("clamp_", function(x) return x:clone():clamp_(-0.3, 0.4) end, base)
  run("add_ of itself", function(x) local c = x:clone(); return c:add_(c) end, base)
  -- into a narrowed view: only the view changes
  local function narrowed(op)
    return function(x, z)
      local c = x:clone()
      local v = c:narrow(2, 3, 7)
      if op == "add_" then v:add_(z:narrow(2, 1, 7))
      elseif op == "mul_" then v:mul_(2)
      elseif op == "relu_" then v:relu_()
      else v:clamp_(-0.5, 0.5) end
      return c
    end
  end
  for _, op in ipairs {"add_", "mul_", "relu_", "clamp_"} do run(op .. " on a narrowed view", narrowed(op), base, y) end
  run("add_ on a transposed view", function(x, z) local c = x:clone(); c:t():add_(z:t()); return c end, base, y)
  run("mul_ on a permuted 4-d view", function(x)
    local c = x:clone()
    c:permute(3, 1, 4, 2):narrow(1, 2, 5):mul_(-2)
    return c
  end, uniform({2, 13, 9, 7}))
  -- hand-computed, on every device: the region outside the view is untouched
  each_device(t, function(t, dev)
    local c = dpl.zeros(3, 4, {device = dev})
    c:narrow(2, 2, 2):add_(dpl.tensor({1, 2}, {device = dev}))
    t:close(c, {0, 1, 2, 0, 0, 1, 2, 0, 0, 1, 2, 0}, EXACT)
    c:select(1, 2):mul_(10)
    t:close(c, {0, 1, 2, 0, 0, 10, 20, 0, 0, 1, 2, 0}, EXACT)
    c:t():narrow(1, 3, 1):clamp_(0, 1.5)
    t:close(c, {0, 1, 1.5, 0, 0, 10, 1.5, 0, 0, 1, 1.5, 0}, EXACT)
    local r = dpl.tensor({-1, 2, -3}, {device = dev})
    t:ok(r:relu_() == r, "in-place ops return their tensor")
    t:close(r, {0, 2, 0}, EXACT)
    for _, name in ipairs {"sub_", "div_", "pow_", "maximum_", "minimum_"} do
      t:ok(dpl.Tensor[name] ~= nil, name .. " exists")
    end
    t:close(dpl.tensor({1, 4}, {device = dev}):sub_(1):div_(dpl.tensor({2, 3}, {device = dev})), {0, 1}, EXACT)
  end)
  no_vulkan_note(t)
end)

S:add("empty tensors", function(t)
  each_device(t, function(t, dev)
    local o = {device = dev}
    local e = dpl.zeros(0, 3, o)
    t:shape(e + dpl.ones(3, o), {0, 3})
    t:shape(e:relu(), {0, 3})
    t:shape(e * 2, {0, 3})
    t:shape(dpl.where(e, e, dpl.ones(1, o)), {0, 3})
    t:shape(e:add_(1), {0, 3})
    t:shape(dpl.zeros(2, 0, o):t():clone(), {0, 2})
    t:eq(#e:tolist(), 0)
  end)
end)

-- ---- large tensors -------------------------------------------------------------------------------------------------
S:add("large tensors are split across bindings", function(t)
  if not HAVE_VK then
    t:skip("no Vulkan device (" .. ffi.string(dpl.C.dpl_vulkan_unavailable_reason()) .. ")")
  end
  local N = 40000000                                   -- 160 MB, more than lavapipe's 128 MiB maxStorageBufferRange
  local o = {device = "vulkan"}
  local function at(x, i) return x:view(-1):narrow(1, i, 1):item() end   -- 1-based flat index
  local probes = {1, 2, 16777216, 16777217, 20000000, 20000001, 33554431, 33554432, 33554433, N - 1, N}
  local x = dpl.full({N}, 1.5, o)
  for _, i in ipairs(probes) do t:eq(at(x, i), 1.5, "fill at " .. i) end
  local y = x + 2
  x:free()
  for _, i in ipairs(probes) do t:eq(at(y, i), 3.5, "add at " .. i) end
  t:near(y:sum():item(), 3.5 * N, 1e-6, "sum of everything")
  -- copy into a second large tensor; an in-place scalar op on a view that crosses the middle
  local z = dpl.empty({N}, o):copy_(y)
  z:narrow(1, 19999991, 20):mul_(2)
  t:eq(at(z, 19999990), 3.5)
  t:eq(at(z, 19999991), 7)
  t:eq(at(z, 20000010), 7)
  t:eq(at(z, 20000011), 3.5)
  t:near(z:sum():item(), 3.5 * N + 20 * 3.5, 1e-6, "sum after the copy")
  -- reductions with long rows and wide rows, and the mean
  local m = z:view(4, N / 4)
  local q = 3.5 * N / 4
  t:close(m:sum(2), {q, q + 35, q + 35, q}, {atol = 0, rtol = 1e-6}, "sum over dim 2")
  local w = z:view(2, N / 2):sum(1)                   -- w[j] = z[j] + z[j + N/2]: two rows of 80 MB, 20M outputs
  t:eq(w:numel(), N / 2)
  t:eq(at(w, 1), 10.5)
  t:eq(at(w, 11), 7)
  t:eq(at(w, 19999990), 7)
  t:eq(at(w, 19999991), 10.5)
  t:eq(at(w, N / 2), 10.5)
  -- over dim 1 of (4, 10M): each (r x inner) block is 160 MB; columns 9999990.. hold 7 in row 2 and columns ..9 in
  -- row 3, so the argmax of those columns comes from different chunks of the split reduction (var's chunk merge is
  -- tested on smaller tensors in test_reduce.lua: on lavapipe it would cost seconds here)
  local s1, a1 = m:sum(1), m:argmax(1)
  local col = {1, 6, 10, 11, 9999990, 9999991, 9999996, N / 4}   -- 1-based columns
  local want_s = {17.5, 17.5, 17.5, 14, 14, 17.5, 17.5, 17.5}
  local want_a = {2, 2, 2, 0, 0, 1, 1, 1}
  for i, c in ipairs(col) do
    t:eq(at(s1, c), want_s[i], "sum over dim 1 at column " .. c)
    t:eq(at(a1, c), want_a[i], "argmax over dim 1 at column " .. c)
  end
  s1:free(); a1:free()
  t:near(z:mean():item(), 3.5 + 70 / N, 1e-6, "mean")
  t:eq(z:max():item(), 7, "max")
  t:eq(z:argmax():item(), 19999990, "argmax: the first of the ties (0-based)")
  z:free()
  -- a transposed operand whose every row spans more than a binding
  local tr = y:view(N / 2, 2):t()                     -- 2 x 20M, strides (1, 2)
  local c = tr + 1
  t:shape(c, {2, N / 2})
  t:eq(at(c, 1), 4.5)
  t:eq(at(c, N), 4.5)
  t:near(c:sum():item(), 4.5 * N, 1e-6, "sum of the transposed operand plus one")
  y:free(); c:free(); tr:free(); w:free(); m:free()
  -- random numbers are generated in binding-sized chunks: element i is still the stream's element i
  local rn = dpl.randn({N}, {seed = 5, device = "vulkan"})
  for _, i in ipairs {1, 33554368, 33554369, 33554370, N} do
    t:near(at(rn, i), dpl.randn({1}, {seed = 5, offset = i - 1, device = "cpu"}):item(), 1e-5, "randn element " .. i)
  end
  rn:free()
  collectgarbage("collect")
end)

-- The CPU backend hands each innermost run to a loop chosen by its strides (contiguous, broadcast on either side,
-- strided); every pattern must match a per-element reference computed here in Lua from the operands' values.
S:add("CPU binary/unary runs and copies match a per-element reference", function(t)
  local function idx4(shape, i, j, k, l)   -- flat index into a contiguous (possibly broadcast) 4-d shape
    local function c(v, n) return n == 1 and 1 or v end
    return ((c(i, shape[1]) - 1) * shape[2] * shape[3] * shape[4] + (c(j, shape[2]) - 1) * shape[3] * shape[4]
            + (c(k, shape[3]) - 1) * shape[4] + c(l, shape[4]))
  end
  local ops = {add = function(x, y) return x + y end, sub = function(x, y) return x - y end,
               mul = function(x, y) return x * y end, div = function(x, y) return x / y end}
  local out = {2, 5, 6, 7}
  local pairs_ = {{{2, 5, 6, 7}, {1, 5, 1, 1}}, {{1, 5, 1, 1}, {2, 5, 6, 7}}, {{2, 5, 6, 7}, {2, 5, 1, 1}},
                  {{2, 5, 6, 7}, {1, 1, 6, 1}}, {{2, 5, 1, 7}, {2, 5, 6, 7}}, {{2, 5, 6, 7}, {2, 5, 6, 7}}}
  for name, f in pairs(ops) do
    for _, pr in ipairs(pairs_) do
      local a, b = uniform(pr[1]), uniform(pr[2], 0.5, 2)
      local av, bv, rv = a:tolist(), b:tolist(), a[name](a, b):contiguous():tolist()
      local bad = 0
      for i = 1, out[1] do for j = 1, out[2] do for k = 1, out[3] do for l = 1, out[4] do
        local want = f(av[idx4(pr[1], i, j, k, l)], bv[idx4(pr[2], i, j, k, l)])
        local got = rv[idx4(out, i, j, k, l)]
        if math.abs(got - want) > 1e-6 * math.max(1, math.abs(want)) then bad = bad + 1 end
      end end end end
      t:eq(bad, 0, ("%s %s with %s"):format(name, shape_str(pr[1]), shape_str(pr[2])))
    end
    -- a transposed (strided inner run) operand and output
    local a, b = uniform({6, 7}), uniform({7, 6}, 0.5, 2)
    local r = a[name](a, b:transpose(1, 2))
    local av, bv, rv = a:tolist(), b:tolist(), r:tolist()
    local bad = 0
    for i = 1, 6 do for j = 1, 7 do
      if math.abs(rv[(i - 1) * 7 + j] - f(av[(i - 1) * 7 + j], bv[(j - 1) * 6 + i])) > 1e-6 * 4 then bad = bad + 1 end
    end end
    t:eq(bad, 0, name .. " with a transposed operand")
  end
  -- unary ops on a contiguous and on a transposed (strided run) input
  local uref = {neg = function(x) return -x end, exp = math.exp, log = math.log, sqrt = math.sqrt, abs = math.abs,
                square = function(x) return x * x end, relu = function(x) return x > 0 and x or 0 end,
                sigmoid = function(x) return 1 / (1 + math.exp(-x)) end,
                silu = function(x) return x / (1 + math.exp(-x)) end}
  for name, f in pairs(uref) do
    local x = uniform({7, 6}, 0.25, 2)
    for _, v in ipairs {{x, "contiguous"}, {x:transpose(1, 2), "transposed"}} do
      local xv, rv = v[1]:contiguous():tolist(), v[1][name](v[1]):contiguous():tolist()
      local bad = 0
      for i = 1, #xv do
        if math.abs(rv[i] - f(xv[i])) > 1e-6 * math.max(1, math.abs(f(xv[i]))) then bad = bad + 1 end
      end
      t:eq(bad, 0, name .. " on a " .. v[2] .. " input")
    end
  end
  -- copies: into a narrowed view (contiguous runs with gaps) and from a transposed one
  local src, dst = uniform({3, 4, 5}), dpl.zeros({3, 9, 5}, {device = "cpu"})
  dst:narrow(2, 3, 4):copy_(src)
  local sv, dv = src:tolist(), dst:tolist()
  local bad = 0
  for i = 1, 3 do for j = 1, 9 do for k = 1, 5 do
    local want = (j >= 3 and j <= 6) and sv[((i - 1) * 4 + (j - 3)) * 5 + k] or 0
    if dv[((i - 1) * 9 + (j - 1)) * 5 + k] ~= want then bad = bad + 1 end
  end end end
  t:eq(bad, 0, "copy into a narrowed view")
  local tv = src:transpose(1, 3):contiguous():tolist()
  bad = 0
  for i = 1, 3 do for j = 1, 4 do for k = 1, 5 do
    if tv[((k - 1) * 4 + (j - 1)) * 3 + i] ~= sv[((i - 1) * 4 + (j - 1)) * 5 + k] then bad = bad + 1 end
  end end end
  t:eq(bad, 0, "copy from a transposed view")
end)

return S

-- test_reduce.lua: sum, mean, max, min, argmax, argmin, var (unbiased and biased) over one dim, several dims and all
-- dims, with and without keepdim, on non-contiguous inputs, short rows (one invocation per output), long rows (r >= 64:
-- a workgroup per output) and very long rows (r > 2^20 or rows beyond one binding: chunked partial reductions), ties
-- and NaN in argmax; Vulkan against the CPU reference on identical inputs.
--
-- Most inputs are multiples of 1/8 in a small range, so sums are exact in float32 whatever the summation order and
-- sum/max/min/argmax/argmin can be compared exactly; they also hold many ties, which checks that argmax/argmin return
-- the first index. Means may differ by one rounding; var by float accumulation (two-pass in the shader, double on CPU).
local dpl = require "dpl"
local ffi = require "ffi"
local test = require "dpl.test"
local S = test.suite("reduce")

local HAVE_VK = dpl.vulkan_available()
local no_vulkan_note = test.no_vulkan_note
local DEVICES = test.devices()
local each_device = test.each_device
local NAN = 0 / 0

local EXACT = {atol = 0, rtol = 0}
local TOL = {
  sum = EXACT, max = EXACT, min = EXACT, argmax = EXACT, argmin = EXACT,
  mean = {atol = 1e-7, rtol = 1e-6},
  var = {atol = 1e-6, rtol = 2e-5}, var_biased = {atol = 1e-6, rtol = 2e-5},
}
local OPS = {"sum", "mean", "max", "min", "argmax", "argmin", "var", "var_biased"}

-- reduce x with op name (var_biased: var with unbiased = false)
local function apply(x, name, dims, keepdim)
  if name == "var_biased" then return x:var(dims, keepdim, false) end
  if name == "var" then return x:var(dims, keepdim, true) end
  return x[name](x, dims, keepdim)
end

local seed_counter = 500
-- multiples of 1/8 in [lo, hi], on the CPU
local function eighths(shape, lo, hi)
  lo, hi = lo or -2, hi or 2
  seed_counter = seed_counter + 1
  local u = dpl.rand(shape, {seed = seed_counter, device = "cpu"})
  local buf, n = u:float_data()
  local steps = (hi - lo) * 8 + 1
  for i = 0, n - 1 do buf[i] = lo + math.floor(buf[i] * steps) / 8 end
  return dpl.from_pointer(buf, shape, {device = "cpu"})
end

local function same_on_vulkan(t, tol, what, fn, x)
  local ref = fn(x)
  if HAVE_VK then
    local got = fn(x:to("vulkan"))
    t:ok(got:device():find("vulkan") ~= nil, what .. ": result on vulkan")
    t:close(got, ref, tol, what)
  end
  return ref
end

local function str(v)
  if v == nil then return "all" end
  if type(v) == "table" then return "{" .. table.concat(v, ",") .. "}" end
  return tostring(v)
end

-- expected output shape of reducing `shape` over dims (1-based, negatives allowed; nil = all)
local function reduced_shape(shape, dims, keepdim)
  local red = {}
  if dims == nil then for d = 1, #shape do red[d] = true end
  else
    for _, d in ipairs(type(dims) == "table" and dims or {dims}) do red[d < 0 and #shape + 1 + d or d] = true end
  end
  local out = {}
  for d = 1, #shape do
    if not red[d] then out[#out + 1] = shape[d] elseif keepdim then out[#out + 1] = 1 end
  end
  return out
end

-- every op over `dims` of an input of `shape` (argmax/argmin only for one dim or all)
local function check_all_ops(t, shape, dims, keepdim, make)
  local x = make and make(shape) or eighths(shape)
  local single = dims == nil or type(dims) == "number" or #dims == 1
  for _, name in ipairs(OPS) do
    if single or not name:find("^arg") then
      local what = ("%s of %s over %s%s"):format(name, table.concat(shape, "x"), str(dims), keepdim and " keepdim" or "")
      local r = same_on_vulkan(t, TOL[name], what, function(v) return apply(v, name, dims, keepdim) end, x)
      t:shape(r, reduced_shape(shape, dims, keepdim), what)
    end
  end
end

-- ---- hand-computed ---------------------------------------------------------------------------------------------------
S:add("hand-computed values", function(t)
  each_device(t, function(t, dev)
    local x = dpl.tensor({{1, 5, 3}, {4, 2, 6}}, {device = dev})
    t:close(x:sum(1), {5, 7, 9}, EXACT)
    t:close(x:sum(2), {9, 12}, EXACT)
    t:close(x:sum(-1), {9, 12}, EXACT)
    t:close(x:sum(), {21}, EXACT)
    t:eq(x:sum():item(), 21)
    t:shape(x:sum(), {})
    t:shape(x:sum(2, true), {2, 1})
    t:shape(x:sum(nil, true), {1, 1})
    t:shape(x:sum({1, 2}), {})
    t:close(x:mean(2), {3, 4}, EXACT)
    t:close(x:mean(), {3.5}, EXACT)
    t:close(x:max(1), {4, 5, 6}, EXACT)
    t:close(x:min(2), {1, 2}, EXACT)
    t:close(x:argmax(2), {1, 2}, EXACT)
    t:close(x:argmin(1), {0, 1, 0}, EXACT)
    t:eq(x:argmax():item(), 5, "flat index, 0-based")
    t:eq(x:argmin():item(), 0)
    t:close(x:var(2), {4, 4}, {atol = 1e-6, rtol = 1e-6})
    t:close(x:var(2, false, false), {8 / 3, 8 / 3}, {atol = 1e-6, rtol = 1e-6})
    t:close(x:var(1), {4.5, 4.5, 4.5}, {atol = 1e-6, rtol = 1e-6})
    t:close(x:std(2), {2, 2}, {atol = 1e-6, rtol = 1e-6})
    t:close(x:var(), {3.5}, {atol = 1e-6, rtol = 1e-6})
    -- module-level functions
    t:close(dpl.sum(x, 1), {5, 7, 9}, EXACT)
    t:close(dpl.max(x), {6}, EXACT)
  end)
end)

S:add("ties: argmax and argmin return the first index", function(t)
  each_device(t, function(t, dev)
    local o = {device = dev}
    t:eq(dpl.tensor({1, 3, 3, 2, 3}, o):argmax():item(), 1)
    t:eq(dpl.tensor({2, 0, 1, 0, 0}, o):argmin():item(), 1)
    t:close(dpl.tensor({{7, 7, 7}, {1, 9, 9}}, o):argmax(2), {0, 1}, EXACT)
    t:close(dpl.tensor({{5, 5}, {5, 5}, {5, 4}}, o):argmax(1), {0, 0}, EXACT)
    t:close(dpl.tensor({{5, 5}, {5, 5}, {5, 4}}, o):argmin(1), {0, 2}, EXACT)
    -- long rows (a workgroup per output): ties spread over different invocations
    for _, r in ipairs {64, 65, 1000, 100000} do
      local buf = ffi.new("float[?]", r)
      for _, i in ipairs {r - 1, r - 2, 37, 36, 101} do if i < r then buf[i] = 4 end end
      buf[r - 1] = 4
      local v = dpl.from_pointer(buf, {r}, o)
      t:eq(v:argmax():item(), 36, "argmax, r = " .. r)
      t:eq(v:neg():argmin():item(), 36, "argmin, r = " .. r)
      t:eq(v:argmin():item(), 0, "argmin of zeros, r = " .. r)
      t:eq(v:max():item(), 4)
    end
    -- all equal
    t:eq(dpl.full({1000}, 2, o):argmax():item(), 0)
    t:close(dpl.full({3, 70}, 1, o):argmax(2), {0, 0, 0}, EXACT)
  end)
end)

S:add("NaN: max/min/argmax propagate the first NaN", function(t)
  each_device(t, function(t, dev)
    local o = {device = dev}
    local x = dpl.tensor({{1, NAN, 3, NAN}, {2, 5, 4, 1}}, o)
    t:close(x:max(2), {NAN, 5}, EXACT)
    t:close(x:min(2), {NAN, 1}, EXACT)
    t:close(x:argmax(2), {1, 1}, EXACT)
    t:close(x:argmin(2), {1, 3}, EXACT)
    t:close(x:sum(2), {NAN, 12}, EXACT)
    local buf = ffi.new("float[?]", 1000)
    for i = 0, 999 do buf[i] = i % 17 end
    buf[700], buf[300] = NAN, NAN
    local long = dpl.from_pointer(buf, {1000}, o)
    t:ok(long:max():item() ~= long:max():item(), "max of a long row with NaN is NaN")
    t:eq(long:argmax():item(), 300, "first NaN")
    t:eq(long:argmin():item(), 300, "first NaN")
  end)
end)

S:add("degenerate sizes", function(t)
  each_device(t, function(t, dev)
    local o = {device = dev}
    t:close(dpl.zeros(3, 0, o):sum(2), {0, 0, 0}, EXACT, "sum over an empty dim")
    t:close(dpl.zeros(0, 4, o):sum(1), {0, 0, 0, 0}, EXACT)
    t:close(dpl.zeros(3, 0, o):mean(2), {NAN, NAN, NAN}, EXACT, "mean over an empty dim")
    t:shape(dpl.zeros(0, 4, o):sum(2), {0})
    t:close(dpl.tensor({{2}, {3}}, o):var(2), {NAN, NAN}, EXACT, "unbiased var of one element")
    t:close(dpl.tensor({{2}, {3}}, o):var(2, false, false), {0, 0}, EXACT, "biased var of one element")
    t:close(dpl.tensor({{2}, {3}}, o):argmax(2), {0, 0}, EXACT)
    t:close(dpl.tensor({{2, 3}}, o):max(1), {2, 3}, EXACT, "reducing a size-1 dim")
    t:eq(dpl.tensor({5}, o):sum():item(), 5)
  end)
end)

-- ---- Vulkan vs CPU ---------------------------------------------------------------------------------------------------
S:add("single dims of 1-d to 4-d tensors, keepdim", function(t)
  for _, shape in ipairs {{7}, {9, 13}, {3, 5, 7}, {2, 13, 9, 7}} do
    for d = 1, #shape do
      check_all_ops(t, shape, d, false)
      check_all_ops(t, shape, d, true)
    end
    check_all_ops(t, shape, -1, false)
  end
  no_vulkan_note(t)
end)

S:add("several dims and all dims", function(t)
  local s4 = {2, 13, 9, 7}
  for _, dims in ipairs {{1, 3}, {2, 4}, {2, 3}, {3, 4}, {1, 2, 4}, {4, 1}, {1, 2, 3, 4}, {-1, -3}} do
    check_all_ops(t, s4, dims, false)
    check_all_ops(t, s4, dims, true)
  end
  for _, shape in ipairs {{7}, {9, 13}, {3, 5, 7}, {2, 13, 9, 7}} do
    check_all_ops(t, shape, nil, false)
    check_all_ops(t, shape, nil, true)
  end
  no_vulkan_note(t)
end)

S:add("non-contiguous inputs", function(t)
  local views = {
    {"transposed", {13, 9}, function(x) return x:t() end},
    {"narrowed", {9, 20}, function(x) return x:narrow(2, 4, 13) end},
    {"narrowed rows", {20, 13}, function(x) return x:narrow(1, 3, 9) end},
    {"expanded", {9, 1}, function(x) return x:expand(9, 13) end},
    {"permuted 4-d", {7, 9, 2, 13}, function(x) return x:permute(3, 4, 2, 1) end},
    {"selected", {3, 9, 13}, function(x) return x:select(1, 2) end},
  }
  for _, v in ipairs(views) do
    local x = eighths(v[2])
    for _, name in ipairs(OPS) do
      for _, dims in ipairs {1, 2, false} do
        local dd = dims or nil
        local what = ("%s of %s over %s"):format(name, v[1], str(dd))
        same_on_vulkan(t, TOL[name], what, function(a) return apply(v[3](a), name, dd, false) end, x)
      end
    end
    -- several dims of the permuted 4-d view
    if v[1] == "permuted 4-d" then
      for _, name in ipairs {"sum", "mean", "max", "min", "var"} do
        same_on_vulkan(t, TOL[name], name .. " of permuted 4-d over {1,3}",
                       function(a) return apply(v[3](a), name, {1, 3}, true) end, x)
      end
    end
  end
  no_vulkan_note(t)
end)

S:add("short rows and rows around the 64 boundary", function(t)
  for _, r in ipairs {1, 2, 3, 31, 63, 64, 65, 127} do
    check_all_ops(t, {5, r}, 2, false)          -- contiguous rows
    check_all_ops(t, {r, 6}, 1, false)          -- strided rows (inner = 6)
  end
  no_vulkan_note(t)
end)

S:add("long rows: r = 1000 and r = 100000", function(t)
  check_all_ops(t, {3, 1000}, 2, false)
  check_all_ops(t, {1000, 5}, 1, true)
  check_all_ops(t, {2, 1000, 3}, 2, false)
  check_all_ops(t, {100000}, nil, false)
  check_all_ops(t, {100000}, 1, false)
  check_all_ops(t, {2, 100000}, 2, false)
  check_all_ops(t, {100000, 2}, 1, false)
  check_all_ops(t, {2, 50000}, nil, false)
  -- random normal data: float sums in a different order, so with a tolerance
  local x = dpl.randn({4, 100000}, {seed = 77, device = "cpu"})
  same_on_vulkan(t, {atol = 2e-3, rtol = 1e-5}, "sum of randn rows", function(v) return v:sum(2) end, x)
  same_on_vulkan(t, {atol = 1e-7, rtol = 1e-5}, "mean of randn rows", function(v) return v:mean(2) end, x)
  same_on_vulkan(t, {atol = 1e-6, rtol = 1e-4}, "var of randn rows", function(v) return v:var(2) end, x)
  same_on_vulkan(t, EXACT, "max of randn rows", function(v) return v:max(2) end, x)
  same_on_vulkan(t, EXACT, "argmin of randn rows", function(v) return v:argmin(2) end, x)
  no_vulkan_note(t)
end)

S:add("very long rows: chunked partial reductions (r > 2^20)", function(t)
  local function unit(shape) return eighths(shape, 0, 1) end   -- sums stay below 2^21: exact
  check_all_ops(t, {2, 1100000}, 2, false, unit)          -- with a remainder chunk
  check_all_ops(t, {2, 2097152}, 2, true, unit)           -- whole chunks only
  check_all_ops(t, {1100000, 3}, 1, false, unit)          -- r > 2^20 with inner > 1
  check_all_ops(t, {3, 700000}, nil, false, unit)         -- all dims
  -- ties across chunks: the earliest wins
  each_device(t, function(t, dev)
    local n = 3000000
    local buf = ffi.new("float[?]", n)
    for _, i in ipairs {2500000, 1048580, 1048575, 2097152} do buf[i] = 9 end
    buf[1048577] = -9
    buf[2999999] = -9
    local x = dpl.from_pointer(buf, {n}, {device = dev})
    t:eq(x:argmax():item(), 1048575, "argmax")
    t:eq(x:argmin():item(), 1048577, "argmin")
    t:eq(x:max():item(), 9)
    t:eq(x:sum():item(), 18, "sum")
    t:close({x:mean():item()}, {18 / n}, {atol = 0, rtol = 1e-5}, "mean")
    -- chunks with different means: var = (sum x^2 - (sum x)^2 / n) / (n - 1)
    t:close({x:var():item()}, {(486 - 18 * 18 / n) / (n - 1)}, {atol = 0, rtol = 1e-5}, "var")
    t:close({x:var(1, false, false):item()}, {(486 - 18 * 18 / n) / n}, {atol = 0, rtol = 1e-5}, "biased var")
    t:close(x:view(3, 1000000):argmax(2), {0, 48575, 97152}, EXACT, "argmax of rows")
  end)
  no_vulkan_note(t)
end)

return S

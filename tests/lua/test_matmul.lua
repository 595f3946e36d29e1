-- test_matmul.lua: matmul with torch.matmul semantics (2-D, 1-D x 2-D, 2-D x 1-D, batched, broadcast batch dims),
-- transposed and other non-contiguous operands, odd sizes, an empty inner dim, and the C-level dpl_gemm (transposes,
-- alpha, beta), Vulkan against the CPU (OpenBLAS) reference on identical inputs, plus a naive Lua triple loop.
--
-- Tolerances. Two kinds of inputs:
--  * multiples of 1/8 in [-2, 2] ("eighths"): every product is a multiple of 1/64 and every partial sum stays below
--    2^24 / 64 in magnitude for k <= 4096 (and, with random signs, for any k used here), so any float32 summation
--    order (blocked, split-k, FMA or not) gives the exact result; these cases are compared exactly and check the
--    indexing (strides, batches, tails).
--  * standard normal inputs: the two sides sum in different orders. The float32 error of a k-term dot product is
--    bounded by about k * 2^-24 * sum_i |a_i b_i|; for random signs it is typically sqrt(k) * 2^-24 * that sum. We
--    allow |vk - cpu| <= 2e-6 * k + 1e-5 * |cpu| (for k = 130: 2.6e-4, against a typical |a.b| of about 11), which
--    is tight enough to catch one wrong or missing term (of size ~1) but not order effects.
local dpl = require "dpl"
local ffi = require "ffi"
local T = require "dpl.tensor"
local test = require "dpl.test"
local S = test.suite("matmul")

local HAVE_VK = dpl.vulkan_available()
local no_vulkan_note = test.no_vulkan_note
local DEVICES = test.devices()
local each_device = test.each_device
local EXACT = {atol = 0, rtol = 0}
local function normal_tol(k) return {atol = 2e-6 * k, rtol = 1e-5} end

local seed_counter = 900
local function next_seed() seed_counter = seed_counter + 1; return seed_counter end

local function eighths(shape)
  local u = dpl.rand(shape, {seed = next_seed(), device = "cpu"})
  local buf, n = u:float_data()
  for i = 0, n - 1 do buf[i] = -2 + math.floor(buf[i] * 33) / 8 end
  return dpl.from_pointer(buf, shape, {device = "cpu"})
end
local function normal(shape) return dpl.randn(shape, {seed = next_seed(), device = "cpu"}) end

local function same_on_vulkan(t, tol, what, fn, a, b)
  local ref = fn(a, b)
  if HAVE_VK then
    local got = fn(a:to("vulkan"), b:to("vulkan"))
    t:ok(got:device():find("vulkan") ~= nil, what .. ": result on vulkan")
    t:close(got, ref, tol, what)
  end
  return ref
end

local function mm(x, y) return x:matmul(y) end

-- both input kinds: exact on eighths, with the k-dependent tolerance on normals; checks the result shape
local function check(t, what, sa, sb, out_shape, k, prep_a, prep_b)
  prep_a = prep_a or function(x) return x end
  prep_b = prep_b or function(x) return x end
  local f = function(x, y) return prep_a(x):matmul(prep_b(y)) end
  local r = same_on_vulkan(t, EXACT, what .. " (exact data)", f, eighths(sa), eighths(sb))
  t:shape(r, out_shape, what)
  same_on_vulkan(t, normal_tol(k), what .. " (normal data)", f, normal(sa), normal(sb))
end

-- ---- against a naive triple loop ---------------------------------------------------------------------------------
S:add("small product against a naive Lua triple loop", function(t)
  local m, k, n = 5, 7, 3
  local a, b = normal({m, k}), normal({k, n})
  local at, bt = a:totable(), b:totable()
  local want = {}
  for i = 1, m do
    want[i] = {}
    for j = 1, n do
      local s = 0
      for p = 1, k do s = s + at[i][p] * bt[p][j] end
      want[i][j] = s
    end
  end
  each_device(t, function(t, dev)
    local r = a:to(dev):matmul(b:to(dev))
    t:shape(r, {m, n})
    t:close(r, want, {atol = 1e-5, rtol = 1e-5})
    -- and through transposed views of the transposed data
    t:close(a:t():contiguous():to(dev):t():matmul(b:t():contiguous():to(dev):t()), want, {atol = 1e-5, rtol = 1e-5})
    -- hand-computed
    local x = dpl.tensor({{1, 2}, {3, 4}}, {device = dev})
    local y = dpl.tensor({{5, 6}, {7, 8}}, {device = dev})
    t:close(x:matmul(y), {19, 22, 43, 50}, EXACT)
    t:close(x:mm(dpl.tensor({1, 1}, {device = dev})), {3, 7}, EXACT)
    t:close(dpl.tensor({1, 1}, {device = dev}):matmul(y), {12, 14}, EXACT)
    t:close(dpl.matmul(x, y), {19, 22, 43, 50}, EXACT)
  end)
end)

-- ---- shapes ------------------------------------------------------------------------------------------------------
S:add("2-d products of odd sizes", function(t)
  for _, c in ipairs {{1, 1, 1}, {7, 13, 9}, {65, 130, 33}, {1, 64, 1}, {1, 100, 17}, {17, 100, 1}, {8, 1, 8},
                      {33, 31, 65}, {2, 300, 3}, {64, 64, 64}, {100, 257, 67}} do
    local m, k, n = c[1], c[2], c[3]
    check(t, ("%dx%d @ %dx%d"):format(m, k, k, n), {m, k}, {k, n}, {m, n}, k)
  end
  no_vulkan_note(t)
end)

S:add("1-d operands", function(t)
  check(t, "1-d @ 2-d", {13}, {13, 9}, {9}, 13)
  check(t, "2-d @ 1-d", {7, 13}, {13}, {7}, 13)
  check(t, "1-d @ 1-d", {13}, {13}, {}, 13)
  check(t, "1-d @ 3-d", {13}, {4, 13, 9}, {4, 9}, 13)
  check(t, "3-d @ 1-d", {4, 7, 13}, {13}, {4, 7}, 13)
  check(t, "1-d of one element", {1}, {1, 5}, {5}, 1)
  no_vulkan_note(t)
end)

S:add("batched and broadcast batch dims", function(t)
  check(t, "3-d @ 3-d", {4, 7, 13}, {4, 13, 9}, {4, 7, 9}, 13)
  check(t, "3-d @ 2-d", {4, 7, 13}, {13, 9}, {4, 7, 9}, 13)
  check(t, "2-d @ 3-d", {7, 13}, {4, 13, 9}, {4, 7, 9}, 13)
  check(t, "4-d @ 3-d, size-1 batch dims", {2, 1, 7, 13}, {3, 13, 9}, {2, 3, 7, 9}, 13)
  check(t, "4-d @ 4-d, size-1 batch dims on both", {1, 3, 7, 13}, {2, 1, 13, 9}, {2, 3, 7, 9}, 13)
  check(t, "3-d @ 3-d, batch 1 on the left", {1, 5, 6}, {3, 6, 4}, {3, 5, 4}, 6)
  check(t, "3-d @ 3-d, batch 1 on the right", {3, 5, 6}, {1, 6, 4}, {3, 5, 4}, 6)
  check(t, "5-d @ 2-d", {2, 2, 3, 5, 6}, {6, 4}, {2, 2, 3, 5, 4}, 6)
  check(t, "batch of 1x1", {6, 1, 1}, {6, 1, 1}, {6, 1, 1}, 1)
  check(t, "many small batches", {70, 3, 5}, {70, 5, 2}, {70, 3, 2}, 5)
  no_vulkan_note(t)
end)

S:add("transposed and other non-contiguous operands", function(t)
  local tr = function(x) return x:t() end
  local tr3 = function(x) return x:transpose(2, 3) end
  check(t, "A^T @ B", {13, 7}, {13, 9}, {7, 9}, 13, tr)
  check(t, "A @ B^T", {7, 13}, {9, 13}, {7, 9}, 13, nil, tr)
  check(t, "A^T @ B^T", {13, 7}, {9, 13}, {7, 9}, 13, tr, tr)
  check(t, "A^T @ B^T, 65x130 @ 130x33", {130, 65}, {33, 130}, {65, 33}, 130, tr, tr)
  check(t, "batched A^T @ B", {4, 13, 7}, {4, 13, 9}, {4, 7, 9}, 13, tr3)
  check(t, "batched A @ B^T", {4, 7, 13}, {4, 9, 13}, {4, 7, 9}, 13, nil, tr3)
  check(t, "narrowed columns", {7, 20}, {13, 9}, {7, 9}, 13, function(x) return x:narrow(2, 4, 13) end)
  check(t, "narrowed rows and columns", {10, 20}, {15, 12}, {7, 9}, 13,
        function(x) return x:narrow(1, 2, 7):narrow(2, 5, 13) end,
        function(y) return y:narrow(1, 3, 13):narrow(2, 2, 9) end)
  check(t, "expanded batch (stride 0)", {1, 7, 13}, {4, 13, 9}, {4, 7, 9}, 13,
        function(x) return x:expand(4, 7, 13) end)
  check(t, "permuted batch", {7, 4, 13}, {13, 4, 9}, {4, 7, 9}, 13,
        function(x) return x:permute(2, 1, 3) end, function(y) return y:permute(2, 1, 3) end)
  check(t, "strided 1-d", {26}, {13, 9}, {9}, 13, function(x) return x:view(13, 2):select(2, 2) end)
  check(t, "column of a matrix as 1-d", {7, 13}, {9, 13}, {7}, 13, nil, function(y) return y:select(1, 4) end)
  no_vulkan_note(t)
end)

S:add("very long inner dims", function(t)
  -- a Vulkan driver may end long shader loops early (lavapipe: after about 65535 iterations), so long k is split
  for _, c in ipairs {{1, 100000, 1}, {2, 70000, 3}, {3, 600000, 2}} do
    local m, k, n = c[1], c[2], c[3]
    check(t, ("%dx%d @ %dx%d"):format(m, k, k, n), {m, k}, {k, n}, {m, n}, k)
    check(t, ("%dx%d @ %dx%d transposed"):format(m, k, k, n), {k, m}, {n, k}, {m, n}, k,
          function(x) return x:t() end, function(y) return y:t() end)
  end
  each_device(t, function(t, dev)
    local k = 1100000
    t:eq(dpl.ones(1, k, {device = dev}):matmul(dpl.ones(k, {device = dev})):item(), k)
  end)
  no_vulkan_note(t)
end)

S:add("empty inner dim gives zeros, whatever the memory held", function(t)
  each_device(t, function(t, dev)
    local o = {device = dev}
    local a, b = dpl.zeros(3, 0, o), dpl.zeros(0, 4, o)
    -- leave NaN in freed memory that the result may reuse
    for _ = 1, 4 do local g = dpl.full({3, 4}, 0 / 0, o); dpl.synchronize(dev); g:free() end
    dpl.synchronize(dev)
    local r = a:matmul(b)
    t:shape(r, {3, 4})
    t:close(r, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, EXACT)
    t:close(dpl.zeros(2, 5, 0, o):matmul(dpl.zeros(0, 3, o)), dpl.zeros(2, 5, 3), EXACT)
    t:shape(dpl.zeros(0, 4, o):matmul(dpl.zeros(4, 3, o)), {0, 3})
    t:eq(dpl.zeros(0, o):matmul(dpl.zeros(0, o)):item(), 0)
  end)
end)

-- ---- dpl_gemm (C API): C = alpha op(A) op(B) + beta C ----------------------------------------------------------------
S:add("gemm with transposes, alpha and beta", function(t)
  local function gemm(c, a, b, ta, tb, alpha, beta)
    local rc = dpl.C.dpl_gemm(T.handle(c), T.handle(a), T.handle(b), ta, tb, alpha, beta)
    if rc ~= 0 then error(ffi.string(dpl.C.dpl_last_error())) end
    return c
  end
  local m, k, n = 9, 13, 7
  for _, case in ipairs {{0, 0}, {1, 0}, {0, 1}, {1, 1}} do
    local ta, tb = case[1], case[2]
    local a = eighths(ta == 1 and {k, m} or {m, k})
    local b = eighths(tb == 1 and {n, k} or {k, n})
    local c0 = eighths({m, n})
    local what = ("gemm trans_a=%d trans_b=%d"):format(ta, tb)
    same_on_vulkan(t, EXACT, what, function(x, y)
      local c = c0:to(x:device()):clone()
      return gemm(c, x, y, ta, tb, 0.5, -2)
    end, a, b)
    -- against matmul
    local ref = (ta == 1 and a:t() or a):matmul(tb == 1 and b:t() or b) * 0.5 + c0 * -2
    t:close(gemm(c0:clone(), a, b, ta, tb, 0.5, -2), ref, EXACT, what .. " vs matmul")
  end
  -- beta = 0 ignores NaN in C; a transposed C
  each_device(t, function(t, dev)
    local a, b = eighths({4, 5}):to(dev), eighths({5, 6}):to(dev)
    local c = dpl.full({4, 6}, 0 / 0, {device = dev})
    t:close(gemm(c, a, b, 0, 0, 1, 0), a:matmul(b), EXACT, "beta 0")
    local ct = dpl.zeros(6, 4, {device = dev})
    gemm(ct:t(), a, b, 0, 0, 1, 0)
    t:close(ct:t(), a:matmul(b), EXACT, "into a transposed C")
    local z = dpl.full({4, 6}, 0 / 0, {device = dev})
    t:close(gemm(z, dpl.zeros(4, 0, {device = dev}), dpl.zeros(0, 6, {device = dev}), 0, 0, 1, 0), dpl.zeros(4, 6),
            EXACT, "k = 0 with beta 0")
    local w = dpl.ones(4, 6, {device = dev})
    t:close(gemm(w, dpl.zeros(4, 0, {device = dev}), dpl.zeros(0, 6, {device = dev}), 0, 0, 1, 3), dpl.full({4, 6}, 3),
            EXACT, "k = 0 with beta 3")
  end)
  no_vulkan_note(t)
end)

return S

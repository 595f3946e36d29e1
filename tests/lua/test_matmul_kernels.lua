-- test_matmul_kernels.lua: both Vulkan GEMM kernels against the CPU (OpenBLAS) on identical inputs.
--
-- The Vulkan backend has a portable kernel (shaders/matmul.comp, for tiny products), one shaped for CPU drivers
-- (shaders/matmul_texel.comp, lavapipe: operands packed by shaders/matmul_pack.comp unless already in its layout) and
-- one for GPUs (shaders/matmul_tiled.comp: shared-memory workgroup tiles, three tile shapes). The runtime picks one
-- per device type and size (runtime/src/vulkan/kernels.c); DPL_VK_MATMUL=portable|texel|tiled overrides it and is
-- read at every product, so each test here runs under every value (set with setenv in this process, restored
-- afterwards), the tiled kernel once per tile shape (DPL_VK_TILE=0|1|2).
--
-- Inputs are multiples of 1/8 in [-2, 2] ("eighths"): every product is a multiple of 1/64 and every partial sum
-- stays far below 2^24 / 64 for the k used here, so any summation order gives the exact result and the comparisons
-- are exact: they check indexing (strides, offsets, batches, tails, packing, splits), not rounding.
local dpl = require "dpl"
local ffi = require "ffi"
local T = require "dpl.tensor"
local test = require "dpl.test"
-- default only: it selects Vulkan kernels itself
local S = test.suite("matmul kernels", {configurations = {"default"}})

ffi.cdef [[
int setenv(const char *name, const char *value, int overwrite);
int unsetenv(const char *name);
char *getenv(const char *name);
]]

local HAVE_VK = dpl.vulkan_available()
local EXACT = {atol = 0, rtol = 0}
local VARIANTS = {{"portable"}, {"texel"}, {"tiled", "0"}, {"tiled", "1"}, {"tiled", "2"}}

local function need_vulkan(t)
  if not HAVE_VK then t:skip("no Vulkan device (" .. ffi.string(dpl.C.dpl_vulkan_unavailable_reason()) .. ")") end
end

-- runs fn(variant) with DPL_VK_MATMUL (and DPL_VK_TILE) set to each variant, restoring the previous values even when
-- fn fails
local function each_variant(fn)
  for _, v in ipairs(VARIANTS) do
    local label = v[2] and (v[1] .. " tile " .. v[2]) or v[1]
    local ok, err = pcall(test.with_env, "DPL_VK_MATMUL", v[1], function()
      if v[2] then test.with_env("DPL_VK_TILE", v[2], function() fn(v[1]) end) else fn(v[1]) end
    end)
    if not ok then
      if type(err) == "table" and err.msg then err.msg = "[" .. label .. "] " .. err.msg; error(err, 0) end
      error("[" .. label .. "] " .. tostring(err), 0)
    end
  end
end

local seed_counter = 4200
local function eighths(shape)
  seed_counter = seed_counter + 1
  local u = dpl.rand(shape, {seed = seed_counter, device = "cpu"})
  local buf, n = u:float_data()
  for i = 0, n - 1 do buf[i] = -2 + math.floor(buf[i] * 33) / 8 end
  return dpl.from_pointer(buf, shape, {device = "cpu"})
end

-- fn(a, b) on the CPU and on Vulkan (inputs copied over, then prepared by fn), compared exactly
local function same(t, what, fn, a, b)
  local ref = fn(a, b)
  local got = fn(a:to("vulkan"), b:to("vulkan"))
  t:close(got, ref, EXACT, what)
  return got
end

local function mm(x, y) return x:matmul(y) end

local function gemm(c, a, b, ta, tb, alpha, beta)
  local rc = dpl.C.dpl_gemm(T.handle(c), T.handle(a), T.handle(b), ta, tb, alpha, beta)
  if rc ~= 0 then error(ffi.string(dpl.C.dpl_last_error()), 2) end
  return c
end

-- ---- shapes ---------------------------------------------------------------------------------------------------------
-- sizes around the texel kernel's workgroup tile (16 rows x 128 columns), its vec4 packing along k (k % 4) and its
-- two-vec4 k loop (k % 8), plus degenerate ones
local SHAPES = {
  {1, 1, 1}, {1, 7, 1}, {7, 1, 1}, {1, 1, 9}, {3, 5, 7}, {2, 3, 4}, {16, 128, 8}, {17, 129, 9}, {15, 127, 12},
  {33, 130, 257}, {100, 1, 37}, {1, 100, 37}, {64, 64, 64}, {48, 40, 40}, {130, 300, 9}, {257, 33, 130},
  {31, 260, 5}, {5, 3, 1000},
}

S:add("odd and edge shapes, row-major operands", function(t)
  need_vulkan(t)
  each_variant(function()
    for _, s in ipairs(SHAPES) do
      local m, n, k = s[1], s[2], s[3]
      local r = same(t, ("%dx%dx%d"):format(m, n, k), mm, eighths({m, k}), eighths({k, n}))
      t:shape(r, {m, n})
    end
  end)
end)

S:add("transposed operands (in place and packed layouts)", function(t)
  need_vulkan(t)
  each_variant(function()
    for _, s in ipairs {{33, 130, 64}, {17, 29, 13}, {128, 256, 32}, {1, 9, 4}, {9, 1, 4}} do
      local m, n, k = s[1], s[2], s[3]
      local what = ("%dx%dx%d"):format(m, n, k)
      -- A^T stored (A column-major), B^T stored (the texel kernel's own B layout), both
      same(t, what .. " A^T", function(x, y) return x:t():matmul(y) end, eighths({k, m}), eighths({k, n}))
      same(t, what .. " B^T", function(x, y) return x:matmul(y:t()) end, eighths({m, k}), eighths({n, k}))
      same(t, what .. " both", function(x, y) return x:t():matmul(y:t()) end, eighths({k, m}), eighths({n, k}))
    end
  end)
end)

S:add("strided views and unaligned offsets", function(t)
  need_vulkan(t)
  each_variant(function()
    local a, b = eighths({40, 70}), eighths({70, 90})
    -- offsets of 1, 2, 3 and 4 elements, row strides that are and are not multiples of 4
    for off = 1, 4 do
      same(t, "narrowed A, offset " .. off, function(x, y) return x:narrow(2, off + 1, 64):matmul(y:narrow(1, 1, 64)) end,
           a, b)
      same(t, "narrowed B, offset " .. off, function(x, y) return x:narrow(2, 1, 60):matmul(y:narrow(1, off, 60)) end,
           a, b)
      -- B with unit k stride (B^T stored), starting off - 1 elements into its storage
      same(t, "B^T view, offset " .. off, function(x, y) return x:narrow(2, 1, 64):matmul(y:narrow(2, off, 64):t()) end,
           a, eighths({40, 68}))
    end
    -- every other column of A (column stride 2), every other row of B
    same(t, "stride-2 views", function(x, y)
      local xs = x:view(40, 35, 2):select(3, 1)
      local ys = y:view(35, 2, 90):select(2, 2)
      return xs:matmul(ys)
    end, a, b)
    -- a broadcast operand (stride 0 rows)
    same(t, "expanded rows", function(x, y) return x:narrow(1, 1, 1):expand(40, 70):matmul(y) end, a, b)
  end)
end)

S:add("batches and broadcast batch dims", function(t)
  need_vulkan(t)
  each_variant(function()
    same(t, "3-D", mm, eighths({3, 37, 45}), eighths({3, 45, 29}))
    same(t, "3-D, k % 4 == 0", mm, eighths({4, 20, 64}), eighths({4, 64, 130}))
    same(t, "3-D x 2-D", mm, eighths({3, 37, 45}), eighths({45, 29}))
    same(t, "2-D x 3-D", mm, eighths({37, 45}), eighths({3, 45, 29}))
    same(t, "4-D with broadcast", mm, eighths({2, 1, 17, 24}), eighths({1, 3, 24, 19}))
    same(t, "transposed batches", function(x, y) return x:transpose(2, 3):matmul(y) end, eighths({5, 24, 18}),
         eighths({5, 24, 33}))
    same(t, "batch-major strides", function(x, y) return x:transpose(1, 2):matmul(y) end, eighths({18, 5, 24}),
         eighths({5, 24, 33}))
    same(t, "matrix x vector", mm, eighths({3, 37, 45}), eighths({45}))
    same(t, "vector x matrix", mm, eighths({45}), eighths({3, 45, 29}))
  end)
end)

S:add("gemm: alpha, beta, transposes and a strided C", function(t)
  need_vulkan(t)
  each_variant(function()
    local m, n, k = 45, 140, 37
    for _, tr in ipairs {{0, 0}, {1, 0}, {0, 1}, {1, 1}} do
      local ta, tb = tr[1], tr[2]
      local a = eighths(ta == 1 and {k, m} or {m, k})
      local b = eighths(tb == 1 and {n, k} or {k, n})
      local c0 = eighths({m, n})
      for _, ab in ipairs {{1, 0}, {0.5, -2}, {-1, 1}, {0, 0.5}} do
        same(t, ("trans %d %d, alpha %g, beta %g"):format(ta, tb, ab[1], ab[2]), function(x, y)
          return gemm(c0:to(x:device()):clone(), x, y, ta, tb, ab[1], ab[2])
        end, a, b)
      end
    end
    -- beta = 0 must ignore whatever C holds (NaN here); C transposed (column stride != 1)
    for _, dev in ipairs {"cpu", "vulkan"} do
      local a, b = eighths({50, 70}):to(dev), eighths({70, 60}):to(dev)
      local c = dpl.full({50, 60}, 0 / 0, {device = dev})
      t:close(gemm(c, a, b, 0, 0, 1, 0), a:matmul(b), EXACT, "beta 0 over NaN on " .. dev)
      local ct = dpl.full({60, 50}, 0 / 0, {device = dev})
      gemm(ct:t(), a, b, 0, 0, 2, 0)
      t:close(ct:t(), a:matmul(b) * 2, EXACT, "transposed C on " .. dev)
      local c3 = eighths({50, 60}):to(dev)
      local want = a:matmul(b) * 0.5 + c3 * 3
      gemm(c3, a, b, 0, 0, 0.5, 3)
      t:close(c3, want, EXACT, "beta 3 on " .. dev)
    end
    -- a tall, thin product (the texel kernel runs it transposed) into a transposed C, with beta
    local ct0 = eighths({5, 300})
    same(t, "tall thin into a transposed C", function(x, y)
      local ct = ct0:to(x:device()):clone()
      gemm(ct:t(), x, y, 0, 1, 2, 0.5)
      return ct
    end, eighths({300, 20}), eighths({5, 20}))
  end)
end)

S:add("texel kernel: operands already in its layout are not repacked", function(t)
  need_vulkan(t)
  each_variant(function(v)
    if v ~= "texel" then return end
    local a = eighths({64, 32}):to("vulkan")           -- row-major, k % 4 == 0: in place
    local bt = eighths({96, 32}):to("vulkan")          -- B^T contiguous: in place
    dpl.synchronize("vulkan")
    local d0 = dpl.stat("dispatches", "vulkan")
    local c = a:matmul(bt:t())
    dpl.synchronize("vulkan")
    t:eq(dpl.stat("dispatches", "vulkan") - d0, 1, "one dispatch, no packing")
    t:close(c, a:cpu():matmul(bt:cpu():t()), EXACT)
    local b = bt:t():contiguous()                        -- row-major B: packed once
    dpl.synchronize("vulkan")
    local d1 = dpl.stat("dispatches", "vulkan")
    c = a:matmul(b)
    dpl.synchronize("vulkan")
    t:eq(dpl.stat("dispatches", "vulkan") - d1, 2, "B packed, then the product")
  end)
end)

S:add("texel kernel: bindings over 128 MiB and more than 65535 batches are split", function(t)
  need_vulkan(t)
  test.with_env("DPL_VK_MATMUL", "texel", function()
    -- A is 8200 x 4100 floats = 134.5 MB > 128 MiB: in place (rows split) and transposed (packed, then split)
    -- (A[r][c] = u[r] + w[c], built by a broadcast add: distinct rows and columns, still exact, and fast to make)
    local m, n, k = 8200, 12, 4100
    local a, b = eighths({m, 1}) + eighths({1, k}), eighths({k, n})
    local ref = a:matmul(b)
    local av, bv = a:to("vulkan"), b:to("vulkan")
    t:close(av:matmul(bv), ref, EXACT, "A over 128 MiB, in place")
    av = nil
    collectgarbage()
    local atv = a:t():contiguous():to("vulkan")
    t:close(atv:t():matmul(bv), ref, EXACT, "A over 128 MiB, packed")
    atv = nil
    collectgarbage()
    -- B^T of 4100 x 8200 (C is 12 x 8200): columns split
    t:close(b:t():to("vulkan"):matmul(a:t():contiguous():to("vulkan")), ref:t(), EXACT, "B over 128 MiB")
    -- 70000 batches of 2x3 @ 3x2
    local x, y = eighths({70000, 2, 3}), eighths({70000, 3, 2})
    t:close(x:to("vulkan"):matmul(y:to("vulkan")), x:matmul(y), EXACT, "70000 batches")
  end)
  collectgarbage()
end)

-- The tiled kernel reads operands in place (strided), so it splits rows, columns or k itself. Views of a 134.5 MB
-- tensor make bindings over 128 MiB with little arithmetic (shared memory is slow on lavapipe).
S:add("tiled kernel: bindings over 128 MiB (rows, columns, k) and more than 65535 batches are split", function(t)
  need_vulkan(t)
  test.with_env("DPL_VK_MATMUL", "tiled", function()
    local big = eighths({8200, 1}) + eighths({1, 4100})   -- 8200 x 4100, distinct rows and columns
    local bigv = big:to("vulkan")
    local b = eighths({40, 12})
    -- A: 8200 rows of 40 (row stride 4100): its rows span 134.5 MB
    local a = big:narrow(2, 7, 40)
    t:close(bigv:narrow(2, 7, 40):matmul(b:to("vulkan")), a:matmul(b), EXACT, "A's rows over 128 MiB")
    -- B: 40 x 8200 read through a transposed view (column stride 4100)
    local a2 = eighths({9, 40})
    t:close(a2:to("vulkan"):matmul(bigv:narrow(2, 3, 40):t()), a2:matmul(big:narrow(2, 3, 40):t()), EXACT,
            "B's columns over 128 MiB")
    -- A stored across k: 33 rows, k = 8200 with column stride 4100 (slices along k, beta 1 for the later ones)
    local b3 = eighths({8200, 5})
    t:close(bigv:narrow(2, 11, 33):t():matmul(b3:to("vulkan")), big:narrow(2, 11, 33):t():matmul(b3), EXACT,
            "A across k over 128 MiB")
    bigv = nil
    collectgarbage()
    local x, y = eighths({70000, 2, 3}), eighths({70000, 3, 2})
    t:close(x:to("vulkan"):matmul(y:to("vulkan")), x:matmul(y), EXACT, "70000 batches")
  end)
  collectgarbage()
end)

S:add("the default choice agrees with the CPU on small and large products", function(t)
  need_vulkan(t)
  for _, s in ipairs {{8, 8, 8}, {200, 300, 100}} do
    local m, n, k = s[1], s[2], s[3]
    same(t, ("%dx%dx%d"):format(m, n, k), mm, eighths({m, k}), eighths({k, n}))
  end
end)

return S

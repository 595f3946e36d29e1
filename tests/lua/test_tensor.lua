-- test_tensor.lua: creation, random numbers, views, copies, host data, printing, free() and device counters, on the
-- CPU and (when there is one) on Vulkan. Vulkan cases are skipped, and pass, when dpl.vulkan_available() is false.
local dpl = require "dpl"
local ffi = require "ffi"
local test = require "dpl.test"
local S = test.suite("tensor")

local HAVE_VK = dpl.vulkan_available()
local DEVICES = HAVE_VK and {"cpu", "vulkan"} or {"cpu"}

local function need_vulkan(t)
  if not HAVE_VK then t:skip("no Vulkan device: " .. ffi.string(dpl.C.dpl_vulkan_unavailable_reason())) end
end

-- runs fn(t, device) for every available device, naming the device in any failure
local function each_device(t, fn)
  for _, dev in ipairs(DEVICES) do
    local ok, err = pcall(fn, t, dev)
    if not ok then
      if type(err) == "table" and err.msg then err.msg = "[" .. dev .. "] " .. err.msg; error(err, 0) end
      error("[" .. dev .. "] " .. tostring(err), 0)
    end
  end
end

-- ---- creation -----------------------------------------------------------------------------------------------------
S:add("zeros, ones, full, empty", function(t)
  each_device(t, function(t, dev)
    local z = dpl.zeros(2, 3, {device = dev})
    t:shape(z, {2, 3})
    t:eq(z:device():sub(1, #dev), dev)
    t:close(z, {0, 0, 0, 0, 0, 0}, {atol = 0, rtol = 0})
    local o = dpl.ones({4}, {device = dev})
    t:close(o, {1, 1, 1, 1}, {atol = 0, rtol = 0})
    local f = dpl.full({3, 1, 2}, -7.25, {device = dev})
    t:shape(f, {3, 1, 2})
    t:close(f, {-7.25, -7.25, -7.25, -7.25, -7.25, -7.25}, {atol = 0, rtol = 0})
    t:shape(dpl.empty(5, 0, {device = dev}), {5, 0})
    t:eq(dpl.zeros({0}, {device = dev}):numel(), 0)
    local zl = dpl.zeros_like(f)
    t:shape(zl, {3, 1, 2})
    t:eq(zl:device(), f:device())
    t:close(dpl.ones_like(f), {1, 1, 1, 1, 1, 1})
    -- fill_ and zero_ in place
    local g = dpl.empty(2, 2, {device = dev}):fill_(3)
    t:close(g, {3, 3, 3, 3}, {atol = 0, rtol = 0})
    t:close(g:zero_(), {0, 0, 0, 0}, {atol = 0, rtol = 0})
  end)
end)

S:add("arange with integer, negative and fractional steps", function(t)
  each_device(t, function(t, dev)
    local o = {device = dev}
    t:close(dpl.arange(5, o), {0, 1, 2, 3, 4}, {atol = 0, rtol = 0})
    t:close(dpl.arange(2, 6, o), {2, 3, 4, 5}, {atol = 0, rtol = 0})
    t:close(dpl.arange(1, 2, 0.25, o), {1, 1.25, 1.5, 1.75}, {atol = 0, rtol = 0})
    t:close(dpl.arange(5, 0, -1, o), {5, 4, 3, 2, 1}, {atol = 0, rtol = 0})
    t:close(dpl.arange(0, -1, -0.3, o), {0, -0.3, -0.6, -0.9}, {atol = 1e-6, rtol = 0})
    t:close(dpl.arange(-2, 2.5, 1.5, o), {-2, -0.5, 1}, {atol = 1e-6, rtol = 0})
    t:eq(dpl.arange(0, 1, 0.1, o):numel(), 10)
    t:eq(dpl.arange(3, 3, o):numel(), 0, "empty range")
    t:eq(dpl.arange(0, 5, -1, o):numel(), 0, "step away from the end")
    t:shape(dpl.arange(7, o), {7})
  end)
end)

S:add("tensor from nested tables and from_pointer", function(t)
  each_device(t, function(t, dev)
    local a = dpl.tensor({{1, 2, 3}, {4, 5, 6}}, {device = dev})
    t:shape(a, {2, 3})
    t:eq(a:totable()[2][3], 6)
    t:eq(a:totable()[1][2], 2)
    local b = dpl.tensor({{{1}, {2}}, {{3}, {4}}}, {device = dev})
    t:shape(b, {2, 2, 1})
    t:close(b, {1, 2, 3, 4})
    local s = dpl.tensor(2.5, {device = dev})
    t:shape(s, {1})
    t:eq(s:item(), 2.5)
    t:shape(dpl.tensor({}, {device = dev}), {0})
    local buf = ffi.new("float[6]", {0.5, 1.5, 2.5, 3.5, 4.5, 5.5})
    local p = dpl.from_pointer(buf, {3, 2}, {device = dev})
    t:shape(p, {3, 2})
    t:close(p, {0.5, 1.5, 2.5, 3.5, 4.5, 5.5}, {atol = 0, rtol = 0})
    buf[0] = 100   -- the tensor owns a copy
    t:eq(p:totable()[1][1], 0.5)
  end)
end)

-- ---- random numbers -----------------------------------------------------------------------------------------------
S:add("rand and randn give the same numbers on cpu and vulkan", function(t)
  need_vulkan(t)
  local n = 20000
  local uc = dpl.rand({n}, {seed = 1234, device = "cpu"})
  local uv = dpl.rand({n}, {seed = 1234, device = "vulkan"})
  t:close(uv, uc, {atol = 0, rtol = 0}, "uniform must match exactly")
  local nc = dpl.randn({100, 200}, {seed = 99, device = "cpu"})
  local nv = dpl.randn({100, 200}, {seed = 99, device = "vulkan"})
  t:close(nv, nc, {atol = 1e-5, rtol = 1e-5}, "normal")
  -- uniform(lo, hi) and normal(mean, std) with parameters
  t:close(dpl.uniform(-3, 5, {777}, {seed = 5, device = "vulkan"}), dpl.uniform(-3, 5, {777}, {seed = 5, device = "cpu"}),
          {atol = 1e-6, rtol = 1e-6})
  t:close(dpl.normal(2, 0.5, {777}, {seed = 6, device = "vulkan"}), dpl.normal(2, 0.5, {777}, {seed = 6, device = "cpu"}),
          {atol = 1e-5, rtol = 1e-5})
  -- a 64-bit seed and an offset whose low word wraps around 2^32 inside the tensor
  local seed, off = 2 ^ 40 + 17, 2 ^ 32 - 5
  t:close(dpl.rand({10}, {seed = seed, offset = off, device = "vulkan"}),
          dpl.rand({10}, {seed = seed, offset = off, device = "cpu"}), {atol = 0, rtol = 0}, "counter carry")
  t:close(dpl.randn({10}, {seed = seed, offset = off, device = "vulkan"}),
          dpl.randn({10}, {seed = seed, offset = off, device = "cpu"}), {atol = 1e-5, rtol = 1e-5}, "counter carry")
end)

S:add("random streams: seeds, offsets and manual_seed", function(t)
  each_device(t, function(t, dev)
    local a = dpl.rand({50}, {seed = 3, device = dev}):tolist()
    local b = dpl.rand({50}, {seed = 3, device = dev}):tolist()
    local c = dpl.rand({50}, {seed = 4, device = dev}):tolist()
    t:close(a, b, {atol = 0, rtol = 0}, "same seed")
    local differ = 0
    for i = 1, 50 do if a[i] ~= c[i] then differ = differ + 1 end end
    t:ok(differ > 45, "different seeds give different numbers")
    -- element i depends only on (seed, offset + i)
    local tail = dpl.rand({20}, {seed = 3, offset = 30, device = dev}):tolist()
    for i = 1, 20 do t:eq(tail[i], a[30 + i], "offset element " .. i) end
    -- the global stream: consecutive calls continue where the last one stopped
    dpl.manual_seed(42)
    local x1 = dpl.rand({5}, {device = dev}):tolist()
    local x2 = dpl.rand({2, 3}, {device = dev}):tolist()
    dpl.manual_seed(42)
    local all = dpl.rand({11}, {device = dev}):tolist()
    for i = 1, 5 do t:eq(x1[i], all[i]) end
    for i = 1, 6 do t:eq(x2[i], all[5 + i]) end
    dpl.manual_seed(42)
    t:close(dpl.randn({8}, {device = dev}), dpl.randn({8}, {seed = 42, device = dev}), {atol = 0, rtol = 0})
    -- reseeding restarts the stream
    dpl.manual_seed(42)
    t:close(dpl.rand({5}, {device = dev}), x1, {atol = 0, rtol = 0})
  end)
end)

S:add("normal and uniform statistics on 100k samples", function(t)
  each_device(t, function(t, dev)
    local n = 100000
    local x = dpl.randn({n}, {seed = 2024, device = dev})
    t:near(x:mean():item(), 0, 0.02, "randn mean")
    t:near(x:std():item(), 1, 0.02, "randn std")
    local y = dpl.normal(3, 2, {n}, {seed = 7, device = dev})
    t:near(y:mean():item(), 3, 0.02, "normal(3, 2) mean")
    t:near(y:std():item(), 2, 0.02, "normal(3, 2) std")
    local u = dpl.uniform(-1, 3, {n}, {seed = 8, device = dev})
    t:ok(u:min():item() >= -1, "uniform >= lo")
    t:ok(u:max():item() < 3, "uniform < hi")
    t:near(u:mean():item(), 1, 0.02, "uniform mean")
    t:near(u:var():item(), 16 / 12, 0.02, "uniform variance")
    local r = dpl.rand({n}, {seed = 9, device = dev})
    t:ok(r:min():item() >= 0 and r:max():item() < 1, "rand in [0, 1)")
  end)
end)

-- ---- views --------------------------------------------------------------------------------------------------------
S:add("view and reshape, with -1", function(t)
  each_device(t, function(t, dev)
    local x = dpl.arange(24, {device = dev}):view(2, 3, 4)
    t:shape(x, {2, 3, 4})
    t:shape(x:view(-1, 4), {6, 4})
    t:shape(x:view(4, -1), {4, 6})
    t:shape(x:view({2, -1}), {2, 12})
    t:shape(x:view(-1), {24})
    t:ok(x:view(6, 4):same_storage(x), "a view shares storage")
    t:eq(x:view(6, 4):totable()[3][2], 9)
    -- writing through a view changes the base
    x:view(-1):narrow(1, 5, 1):fill_(-1)
    t:eq(x:totable()[1][2][1], -1)
    -- a transposed tensor cannot be viewed, but can be reshaped (a copy)
    local tr = x:view(6, 4):t()
    t:raises(function() return tr:view(24) end, "view")
    local r = tr:reshape(-1)
    t:shape(r, {24})
    t:ok(not r:same_storage(x), "reshape of a transposed tensor copies")
    t:eq(r:tolist()[3], 8, "reshape follows the logical order")
    t:ok(x:reshape(4, 6):same_storage(x), "reshape of a contiguous tensor is a view")
    t:shape(x:flatten(), {24})
    t:shape(x:view_as(dpl.zeros(3, 8)), {3, 8})
  end)
end)

S:add("narrow, select, permute, transpose", function(t)
  each_device(t, function(t, dev)
    local x = dpl.arange(24, {device = dev}):view(2, 3, 4)
    local n = x:narrow(3, 2, 2)                       -- columns 2..3 (1-based)
    t:shape(n, {2, 3, 2})
    t:close(n:select(1, 1), {1, 2, 5, 6, 9, 10}, {atol = 0, rtol = 0})
    t:ok(not n:is_contiguous())
    t:close(x:narrow(2, -1, 1), {8, 9, 10, 11, 20, 21, 22, 23}, {atol = 0, rtol = 0}, "negative start")
    t:shape(x:narrow(1, 1, 0), {0, 3, 4})
    local s = x:select(2, 3)
    t:shape(s, {2, 4})
    t:close(s, {8, 9, 10, 11, 20, 21, 22, 23}, {atol = 0, rtol = 0})
    t:close(x:select(-1, 1), {0, 4, 8, 12, 16, 20}, {atol = 0, rtol = 0}, "select on the last dim")
    local p = x:permute(3, 1, 2)
    t:shape(p, {4, 2, 3})
    -- p[k][i][j] = x[i][j][k] = (i-1)*12 + (j-1)*4 + (k-1)
    local pt = p:totable()
    for k = 1, 4 do for i = 1, 2 do for j = 1, 3 do
      t:eq(pt[k][i][j], (i - 1) * 12 + (j - 1) * 4 + (k - 1))
    end end end
    local tr = x:transpose(1, 3)
    t:shape(tr, {4, 3, 2})
    t:eq(tr:totable()[4][3][2], 23)
    t:eq(tr:totable()[2][1][2], 13)
    local m = dpl.arange(6, {device = dev}):view(2, 3)
    t:close(m:t(), {0, 3, 1, 4, 2, 5}, {atol = 0, rtol = 0})
    t:eq(m:t():stride(1), 1)
    t:eq(x:transpose(-1, -2):size(3), 3, "negative dims")
  end)
end)

S:add("expand, squeeze, unsqueeze", function(t)
  each_device(t, function(t, dev)
    local c = dpl.tensor({{1}, {2}}, {device = dev})
    local e = c:expand(2, 3)
    t:shape(e, {2, 3})
    t:eq(e:stride(2), 0)
    t:close(e, {1, 1, 1, 2, 2, 2}, {atol = 0, rtol = 0})
    t:shape(c:expand(4, -1, 5), {4, 2, 5})
    t:close(c:expand(3, 2, 2):select(1, 3), {1, 1, 2, 2}, {atol = 0, rtol = 0})
    t:shape(c:expand_as(dpl.zeros(2, 7)), {2, 7})
    local x = dpl.zeros(1, 3, 1, 2, {device = dev})
    t:shape(x:squeeze(), {3, 2})
    t:shape(x:squeeze(1), {3, 1, 2})
    t:shape(x:squeeze(3), {1, 3, 2})
    t:shape(x:squeeze(2), {1, 3, 1, 2}, "squeezing a dim of size > 1 is a no-op")
    t:shape(x:squeeze(-2), {1, 3, 2})
    local v = dpl.arange(3, {device = dev})
    t:shape(v:unsqueeze(1), {1, 3})
    t:shape(v:unsqueeze(2), {3, 1})
    t:shape(v:unsqueeze(-1), {3, 1}, "unsqueeze(-1) appends")
    t:close(v:unsqueeze(2):expand(3, 2), {0, 0, 1, 1, 2, 2}, {atol = 0, rtol = 0})
  end)
end)

-- ---- copies -------------------------------------------------------------------------------------------------------
S:add("contiguous, clone and copy_ with broadcasting", function(t)
  each_device(t, function(t, dev)
    local x = dpl.arange(12, {device = dev}):view(3, 4)
    local tr = x:t()
    local c = tr:contiguous()
    t:ok(c:is_contiguous())
    t:ok(not c:same_storage(x))
    t:close(c, tr, {atol = 0, rtol = 0})
    t:close(c, {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}, {atol = 0, rtol = 0})
    t:ok(x:contiguous():same_storage(x), "contiguous() of a contiguous tensor is the same storage")
    local k = x:clone()
    t:ok(not k:same_storage(x))
    k:fill_(0)
    t:eq(x:totable()[3][4], 11, "clone is independent")
    t:close(tr:clone(), c, {atol = 0, rtol = 0}, "clone of a view")
    -- broadcasting copies
    local d = dpl.zeros(3, 4, {device = dev})
    d:copy_(dpl.tensor({1, 2, 3, 4}, {device = dev}))
    t:close(d, {1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4}, {atol = 0, rtol = 0})
    d:copy_(dpl.tensor({{10}, {20}, {30}}, {device = dev}))
    t:close(d, {10, 10, 10, 10, 20, 20, 20, 20, 30, 30, 30, 30}, {atol = 0, rtol = 0})
    d:copy_(dpl.tensor({5}, {device = dev}))
    t:close(d, {5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5}, {atol = 0, rtol = 0})
    -- into a non-contiguous destination
    local base = dpl.zeros(4, 5, {device = dev})
    base:narrow(2, 2, 3):copy_(dpl.arange(12, {device = dev}):view(4, 3))
    t:close(base, {0, 0, 1, 2, 0, 0, 3, 4, 5, 0, 0, 6, 7, 8, 0, 0, 9, 10, 11, 0}, {atol = 0, rtol = 0})
    local sq = dpl.zeros(3, 3, {device = dev})
    sq:t():copy_(dpl.arange(9, {device = dev}):view(3, 3))
    t:close(sq, {0, 3, 6, 1, 4, 7, 2, 5, 8}, {atol = 0, rtol = 0})
  end)
end)

S:add("copies between cpu and vulkan", function(t)
  need_vulkan(t)
  local src = dpl.randn({5, 7, 3}, {seed = 11, device = "cpu"})
  local v = src:to("vulkan")
  t:ok(v:device():find("vulkan") ~= nil)
  t:close(v, src, {atol = 0, rtol = 0})
  t:close(v:to("cpu"), src, {atol = 0, rtol = 0}, "round trip")
  t:close(src:to("cpu"), src, {atol = 0, rtol = 0})
  t:ok(src:to("cpu"):same_storage(src), "to() the same device is the same tensor")
  -- non-contiguous source, both directions
  t:close(src:permute(3, 1, 2):to("vulkan"), src:permute(3, 1, 2), {atol = 0, rtol = 0})
  t:close(v:transpose(1, 3):to("cpu"), src:transpose(1, 3), {atol = 0, rtol = 0})
  -- copy_ across devices, into a strided destination and with broadcasting
  local dv = dpl.zeros(7, 5, {device = "vulkan"})
  dv:t():copy_(src:select(3, 2))
  t:close(dv:t(), src:select(3, 2), {atol = 0, rtol = 0})
  local dc = dpl.zeros(4, 3, {device = "cpu"})
  dc:copy_(dpl.tensor({1, 2, 3}, {device = "vulkan"}))
  t:close(dc, {1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3}, {atol = 0, rtol = 0})
  local dn = dpl.zeros(6, 6, {device = "vulkan"})
  dn:narrow(1, 2, 3):narrow(2, 4, 2):copy_(dpl.tensor({{1, 2}, {3, 4}, {5, 6}}))
  t:close(dn:sum(), {21}, {atol = 0, rtol = 0})
  t:eq(dn:totable()[4][5], 6)
  -- recorded work is finished before the copy reads it
  local w = dpl.ones(1000, {device = "vulkan"}) * 3 + 1
  t:close(w:to("cpu"):sum(), {4000}, {atol = 0, rtol = 0})
end)

-- ---- host data and printing -----------------------------------------------------------------------------------------
S:add("totable, tolist, item, #t and tostring", function(t)
  each_device(t, function(t, dev)
    local x = dpl.tensor({{1, 2}, {3, 4}, {5, 6}}, {device = dev})
    local tt = x:totable()
    t:eq(#tt, 3)
    t:eq(#tt[1], 2)
    t:eq(tt[3][1], 5)
    local l = x:tolist()
    t:eq(#l, 6)
    t:eq(l[4], 4)
    t:eq(x:t():tolist()[2], 3, "tolist of a view follows the logical order")
    t:eq(x:sum():item(), 21)
    t:eq(x:narrow(1, 2, 1):narrow(2, 2, 1):item(), 4)
    local size = #x
    t:eq(#size, 2)
    t:eq(size[1], 3)
    t:eq(size[2], 2)
    t:eq(tostring(size), "3x2")
    t:ok(size == x:size(), "sizes compare by value")
    t:eq(x:size(2), 2)
    t:eq(x:size(-1), 2)
    t:eq(x:dim(), 2)
    t:eq(x:numel(), 6)
    t:eq(x:nElement(), 6)
    local s = tostring(x)
    t:ok(s:find("3x2", 1, true) ~= nil, "tostring names the shape: " .. s)
    t:ok(s:find(x:device(), 1, true) ~= nil, "tostring names the device: " .. s)
    t:ok(s:find("6.0000", 1, true) ~= nil, "tostring shows values: " .. s)
    local big = tostring(dpl.zeros(100, {device = dev}))
    t:ok(big:find("100 values", 1, true) ~= nil, "long tensors are abbreviated: " .. big)
    t:ok(tostring(dpl.zeros(0, {device = dev})):find("empty", 1, true) ~= nil)
    t:eq(dpl.zeros(0, {device = dev}):totable()[1], nil)
  end)
end)

S:add("free() releases memory and makes the tensor unusable", function(t)
  each_device(t, function(t, dev)
    collectgarbage("collect")
    local before = dpl.stat("bytes", dev)
    local x = dpl.zeros(1000, {device = dev})
    t:eq(dpl.stat("bytes", dev), before + 4000, "bytes after allocation")
    x:free()
    t:eq(dpl.stat("bytes", dev), before, "bytes after free")
    t:raises(function() return x:sum() end, "freed")
    t:raises(function() return x + 1 end, "freed")
    t:raises(function() return x:item() end, "freed")
    t:raises(function() return dpl.zeros(1000, {device = dev}):copy_(x) end, "freed")
    t:eq(tostring(x), "dpl.Tensor (freed)")
    x:free()   -- a second free is harmless
    -- a view keeps the storage alive after its base is freed
    local base = dpl.arange(10, {device = dev})
    local v = base:narrow(1, 3, 4)
    base:free()
    t:close(v, {2, 3, 4, 5}, {atol = 0, rtol = 0})
  end)
end)

S:add("dpl.stat counters", function(t)
  each_device(t, function(t, dev)
    t:eq(dpl.stat("no_such_counter", dev), -1)
    for _, name in ipairs {"bytes", "peak_bytes", "reserved_bytes", "dispatches", "submits", "barriers", "pipelines",
                           "uploads", "downloads"} do
      t:ok(dpl.stat(name, dev) >= 0, name .. " is a count")
    end
    local x = dpl.ones(256, {device = dev})
    t:ok(dpl.stat("peak_bytes", dev) >= dpl.stat("bytes", dev))
    t:ok(dpl.stat("reserved_bytes", dev) >= dpl.stat("bytes", dev))
    if dev == "vulkan" then
      local d0, s0, dl0, u0 = dpl.stat("dispatches", dev), dpl.stat("submits", dev), dpl.stat("downloads", dev),
                              dpl.stat("uploads", dev)
      local y = (x + 1) * 2
      t:eq(dpl.stat("dispatches", dev), d0 + 2, "one dispatch per op")
      t:eq(y:sum():item(), 1024)
      t:ok(dpl.stat("submits", dev) > s0, "reading a value submits")
      t:ok(dpl.stat("downloads", dev) > dl0, "reading a value downloads")
      dpl.tensor({1, 2, 3}, {device = dev})
      t:ok(dpl.stat("uploads", dev) > u0, "creating from host data uploads")
      t:ok(dpl.stat("pipelines", dev) >= 3, "pipelines were created")
      -- a chain of dependent ops needs barriers between them
      local b0 = dpl.stat("barriers", dev)
      local z = x:clone()
      z:add_(1); z:mul_(2)
      dpl.synchronize(dev)
      t:ok(dpl.stat("barriers", dev) >= b0 + 2, "barriers between dependent ops")
    end
  end)
end)

return S

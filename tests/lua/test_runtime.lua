-- The runtime's execution and memory model, seen from Lua: batching of dispatches into submits, the chunk limit,
-- device-byte accounting and the Lua GC, explicit free, and the persistent pipeline cache.
local dpl = require "dpl"
local test = require "dpl.test"
local S = test.suite("runtime")

local vulkan = dpl.vulkan_available() and "vulkan" or nil

S:add("recorded ops are submitted when the host reads, and at the chunk limit", function(t)
  if not vulkan then return end
  local x = dpl.ones({64}, {device = vulkan})
  dpl.synchronize(vulkan)
  local s0 = dpl.stat("submits", vulkan)
  local outs = {}
  for i = 1, 100 do outs[i] = x + i end
  t:eq(dpl.stat("submits", vulkan) - s0, 0, "submits before any read")
  t:eq(outs[100]:sum():item(), 64 * 101)
  t:eq(dpl.stat("submits", vulkan) - s0, 1, "submits after one read")
  -- more dispatches than the per-submit limit (512 by default) are split into several submits
  for i = 1, 600 do outs[i % 100 + 1] = x * i end
  t:ok(dpl.stat("submits", vulkan) - s0 >= 2, "the chunk limit submits without waiting for a read")
  dpl.synchronize(vulkan)
end)

S:add("device bytes are counted and released", function(t)
  for _, dev in ipairs(dpl.devices()) do
    collectgarbage("collect")
    dpl.synchronize(dev)
    local before = dpl.stat("bytes", dev)
    local a = dpl.zeros({1024, 256}, {device = dev})
    t:eq(dpl.stat("bytes", dev) - before, 1024 * 256 * 4, dev .. " bytes after allocation")
    local v = a:view(256, 1024)           -- a view shares the storage: no new bytes
    t:eq(dpl.stat("bytes", dev) - before, 1024 * 256 * 4, dev .. " bytes after a view")
    a:free()
    t:eq(dpl.stat("bytes", dev) - before, 1024 * 256 * 4, dev .. " storage lives while a view holds it")
    v:free()
    t:eq(dpl.stat("bytes", dev) - before, 0, dev .. " bytes after freeing both")
    t:ok(dpl.stat("peak_bytes", dev) >= 1024 * 256 * 4)
  end
end)

S:add("the Lua GC is run when device memory passes the soft limit", function(t)
  -- 400 tensors of 4 MiB, never freed explicitly: 1.6 GB without collection; the soft limit keeps it bounded
  for _, dev in ipairs(dpl.devices()) do
    collectgarbage("collect")
    local before = dpl.stat("bytes", dev)
    local peak = 0
    for i = 1, 400 do
      local x = dpl.empty({1024, 1024}, {device = dev})
      local used = dpl.stat("bytes", dev) - before
      if used > peak then peak = used end
    end
    t:ok(peak <= 1.5 * 1024 * 2 ^ 20 + 8 * 2 ^ 20, ("%s: device bytes in use peaked at %d MiB"):format(dev, peak / 2 ^ 20))
    collectgarbage("collect")
  end
end)

S:add("pipelines are created once and persisted in the cache directory", function(t)
  if not vulkan then return end
  local x = dpl.ones({10}, {device = vulkan})
  local _ = (x + 1):sum():item()
  local p0 = dpl.stat("pipelines", vulkan)
  for i = 1, 20 do _ = (x + i):sum():item() end
  t:eq(dpl.stat("pipelines", vulkan), p0, "no new pipeline for repeated ops")
  local dir = os.getenv("DPL_CACHE_DIR")
  if dir then
    -- the file is written when the device is released (process exit); a previous run of this suite left it
    local p = io.popen('ls "' .. dir .. '" 2>/dev/null')
    local listing = p:read("*a")
    p:close()
    t:ok(listing == "" or listing:find("pipelines%-"), "cache directory holds pipeline files: " .. listing)
  end
end)

S:add("no Vulkan: the CPU is used and Vulkan requests fail clearly", function(t)
  if vulkan then return end
  t:eq(dpl.device(), "cpu")
  t:raises(function() dpl.zeros({2}, {device = "vulkan"}) end, "no Vulkan device")
end)

return S

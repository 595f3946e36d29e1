-- examples/demo.lua - a first dpl script: tensors on the default device, the same work on every device, and a
-- check that the Vulkan backend agrees with the CPU reference.
--   dplrun examples/demo.lua [--size N] [--device D]
local argparse = require "argparse"
local dpl = require "dpl"
local bench = package.searchpath("dpl.bench", package.path) and require "dpl.bench" or nil

local parser = argparse("dplrun examples/demo.lua", "A short tour of dpl: tensors, ops and devices.")
parser:option("--size", "Matrix size for the matmul demo.", "512"):convert(tonumber)
local args = parser:parse(arg)

local function now()
  return bench and bench.now() or os.clock()
end

print(("dpl %s; devices: %s; default: %s"):format(dpl.version, table.concat(dpl.devices(), ", "), dpl.device()))

-- the same computation on every device, from the same counter-based random numbers
local results = {}
for _, dev in ipairs(dpl.devices()) do
  local n = args.size
  local a = dpl.randn(n, n, {device = dev, seed = 1})
  local b = dpl.randn(n, n, {device = dev, seed = 2})
  local t0 = now()
  local c = a:matmul(b)
  local y = ((c * 0.01):tanh() + 1):mean()
  local value = y:item()       -- reading a value submits the recorded work and waits for it
  local dt = now() - t0
  results[dev] = c
  print(("%-9s mean(tanh(A@B/100)+1) = %.6f   (%.1f ms, %d dispatches so far)"):format(
    dev, value, dt * 1000, dpl.stat("dispatches", dev)))
end

if results["vulkan:0"] then
  local diff = (results["vulkan:0"]:cpu() - results.cpu):abs():max():item()
  print(("largest |vulkan - cpu| difference in A@B: %.3g"):format(diff))
end

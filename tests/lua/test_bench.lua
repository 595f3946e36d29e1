-- The convolution, loss-network and BAPPS benchmarks (bench/conv.lua, bench/lossnets.lua, bench/bapps.lua) on tiny
-- work: they run, print their table with a figure per device and, when /usr/bin/python3 has torch, a PyTorch time and
-- ratio from the interleaved child process (bench/torch_peer.py, bench/bapps_torch.py).
local test = require "dpl.test"
local nets = require "dpl.bench_nets"
local S = test.suite("benchmarks")

local i = -1
while arg[i - 1] do i = i - 1 end
local dplrun = arg[i]
local abs_dplrun = dplrun:sub(1, 1) == "/" and dplrun or (os.getenv("PWD") .. "/" .. dplrun)
local root = DPL_SOURCE_ROOT

local function run(cmdline)
  local tmp = os.tmpname()
  local p = io.popen(cmdline .. " >" .. tmp .. " 2>/dev/null; echo $?")
  local status = tonumber(p:read("*a"))
  p:close()
  local f = io.open(tmp)
  local out = f:read("*a")
  f:close()
  os.remove(tmp)
  return status, out
end

local torch_ok, torch_why = nets.torch_available()

S:add("bench/conv.lua --help and a bad --repeat", function(t)
  local rc, out = run(("cd %s && %s --quiet bench/conv.lua --help"):format(root, abs_dplrun))
  t:eq(rc, 0)
  t:ok(out:find("--repeat", 1, true) and out:find("--device", 1, true), out)
  rc = run(("cd %s && %s --quiet bench/conv.lua --repeat 0"):format(root, abs_dplrun))
  t:ok(rc ~= 0, "--repeat 0 must fail")
end)

S:add("bench/conv.lua: one AlexNet workload on the CPU, with the PyTorch peer when torch is installed", function(t)
  local rc, out = run(("cd %s && %s --quiet bench/conv.lua --device cpu --repeat 1 --only 'alexnet 50x64 fwd+input'")
    :format(root, abs_dplrun))
  t:eq(rc, 0, out)
  local line = out:match("\n(alexnet 50x64 fwd%+input grad[^\n]*)")
  t:ok(line, out)
  local ms = line and tonumber(line:match("grad%s+([%d%.]+)"))
  t:ok(ms and ms > 0, out)
  if torch_ok then
    t:ok(out:find("PyTorch %d"), out)
    t:ok(line and line:match("[%d%.]+x$"), "expected a dpl/torch ratio: " .. tostring(line))
  else
    t:ok(out:find("PyTorch: not run", 1, true), out)
  end
end)

S:add("bench/lossnets.lua: features per second for two architectures at a tiny size", function(t)
  local rc, out = run(("cd %s && %s --quiet bench/lossnets.lua --device cpu --archs alexnet,squeezenet1_1 " ..
                       "--sizes 2x64 --repeat 1 --rounds 2"):format(root, abs_dplrun))
  t:eq(rc, 0, out)
  t:ok(out:find("rounds: 2", 1, true), "the rounds are reported: " .. out)
  for _, arch in ipairs {"alexnet", "squeezenet1_1"} do
    local line = out:match("\n(" .. arch .. " L%s+2x3x64x64[^\n]*)")
    t:ok(line, out)
    local fps = line and tonumber(line:match("2x3x64x64%s+([%d%.]+)"))
    t:ok(fps and fps > 0, tostring(line))
    if torch_ok then t:ok(line and line:match("[%d%.]+x$"), "expected a ratio: " .. tostring(line)) end
  end
  t:ok(out:find("untrained", 1, true), out)
  if not torch_ok then t:ok(out:find("PyTorch: not run", 1, true), torch_why) end
end)

S:add("bench/bapps.lua: triplets per second at a tiny batch, two rounds", function(t)
  local rc, out = run(("cd %s && %s --quiet bench/bapps.lua --device cpu --archs squeezenet1_1 --layers E,M " ..
                       "--batch 2 --reps 1 --rounds 2"):format(root, abs_dplrun))
  t:eq(rc, 0, out)
  t:ok(out:find("x 2 rounds", 1, true), "the rounds are reported: " .. out)
  for _, layer in ipairs {"E", "M"} do
    local line = out:match("\n(squeezenet1_1%s+" .. layer .. "%s[^\n]*)")
    t:ok(line, out)
    local tps = line and tonumber(line:match("^squeezenet1_1%s+%a%s+([%d%.]+)"))
    t:ok(tps and tps > 0, tostring(line))
    if torch_ok then t:ok(line and line:match("[%d%.]+%s*$"), "expected a ratio: " .. tostring(line)) end
  end
end)

return S

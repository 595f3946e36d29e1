-- The convolution, loss-network, BAPPS and training benchmarks (bench/conv.lua, lossnets.lua, bapps.lua, train.lua) on tiny
-- work: they run, print their table with a figure per device and, when /usr/bin/python3 has torch, a PyTorch time and
-- ratio from the interleaved child process (bench/torch_peer.py, bench/bapps_torch.py, bench/train_torch.py).
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

-- The row of a benchmark's table that starts with `row` (a Lua pattern): it is there, its figure (captured by
-- `figure`) is positive, and with PyTorch installed it ends with the dpl/torch ratio (`ratio`).
local function check_row(t, out, row, figure, ratio)
  local line = out:match("\n(" .. row .. "[^\n]*)")
  t:ok(line, out)
  local v = line and tonumber(line:match(figure))
  t:ok(v and v > 0, tostring(line))
  if torch_ok then t:ok(line and line:match(ratio), "expected a dpl/torch ratio: " .. tostring(line)) end
end

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
  check_row(t, out, "alexnet 50x64 fwd%+input grad", "grad%s+([%d%.]+)", "[%d%.]+x$")
  if torch_ok then
    t:ok(out:find("PyTorch %d"), out)
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
    check_row(t, out, arch .. " L%s+2x3x64x64", "2x3x64x64%s+([%d%.]+)", "[%d%.]+x$")
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
    check_row(t, out, "squeezenet1_1%s+" .. layer .. "%s", "^squeezenet1_1%s+%a%s+([%d%.]+)", "[%d%.]+%s*$")
  end
end)

S:add("bench/train.lua: one super-resolution training step at a tiny size, two rounds, with --profile", function(t)
  local rc, out = run(("cd %s && %s --quiet bench/train.lua --device cpu --jobs superres:alexnet:E --batch 1 " ..
                       "--hr-size 32 --repeat 1 --rounds 2 --profile"):format(root, abs_dplrun))
  t:eq(rc, 0, out)
  t:ok(out:find("rounds 2", 1, true), "the rounds are reported: " .. out)
  check_row(t, out, "superres alexnet E", "^superres alexnet E%s+([%d%.]+)", "[%d%.]+x%s*$")
  t:ok(out:find("superres:alexnet:E on cpu: ", 1, true), "no profile: " .. out)
  if not torch_ok then t:ok(out:find("PyTorch: not run", 1, true), torch_why) end
end)

S:add("bench/train.lua: one road delineation training step (K = 3) at a tiny size, with --profile", function(t)
  local rc, out = run(("cd %s && %s --quiet bench/train.lua --device cpu --jobs delineation:resnet18:S --batch 2 " ..
                       "--size 32 --repeat 1 --rounds 1 --profile"):format(root, abs_dplrun))
  t:eq(rc, 0, out)
  check_row(t, out, "delineation resnet18 S", "^delineation resnet18 S%s+([%d%.]+)", "[%d%.]+x%s*$")
  t:ok(out:find("delineation:resnet18:S on cpu: forward", 1, true), "no profile: " .. out)
  if not torch_ok then t:ok(out:find("PyTorch: not run", 1, true), torch_why) end
end)

return S

-- bench/conv.lua - convolution-dominated work on each device beside PyTorch (same threads, same run):
--   VGG-16's conv stack (features, all 31 children) at 1x3x224x224: forward; forward + input gradient (a frozen loss
--   network); forward + all gradients; and a 50x3x64x64 batch through AlexNet's and SqueezeNet 1.1's feature stacks.
--
--   dplrun bench/conv.lua [--device cpu,vulkan] [--repeat 3] [--no-torch]
--
-- Times are the best of --repeat timed runs after a warm-up run (wall clock; the machine may be shared: compare the
-- ratios of one run). PyTorch runs in a child process (bench/torch_peer.py, /usr/bin/python3) with
-- torch.set_num_threads equal to dpl's CPU threads. Weights are random (speed does not depend on values).
local argparse = require "argparse"
local ffi = require "ffi"
local dpl = require "dpl"
local bench = require "dpl.bench"
local nets = require "dpl.bench_nets"

local parser = argparse("dplrun bench/conv.lua",
  "VGG-16 conv stack (fwd, fwd + input grad, fwd + all grads) at 1x3x224x224 and AlexNet / SqueezeNet 1.1 features " ..
  "at 50x3x64x64, per device, beside PyTorch with the same threads.")
parser:option("--device", "Devices to measure, comma-separated (cpu, vulkan, vulkan:N).",
              dpl.vulkan_available() and "cpu,vulkan" or "cpu")
parser:option("--repeat", "Timed runs per figure (the best is shown).", "3")
parser:option("--only", "Run only the workloads whose name contains this text.")
parser:flag("--no-torch", "Do not run the PyTorch peer.")
local args = parser:parse(arg)

pcall(ffi.cdef, "int setenv(const char *name, const char *value, int overwrite);")
ffi.C.setenv("DPL_QUIET", "1", 0)   -- the banners are printed below, once

local repeat_n = tonumber(args["repeat"])
if not repeat_n or repeat_n < 1 then error("--repeat must be a positive integer", 0) end
local devices = bench.word_list(args.device)

local JOBS = {
  {name = "vgg16 224 fwd", arch = "vgg16", upto = 30, shape = {1, 3, 224, 224}, kind = "fwd"},
  {name = "vgg16 224 fwd+input grad", arch = "vgg16", upto = 30, shape = {1, 3, 224, 224}, kind = "fwd_gin"},
  {name = "vgg16 224 fwd+all grads", arch = "vgg16", upto = 30, shape = {1, 3, 224, 224}, kind = "fwd_all"},
  {name = "alexnet 50x64 fwd", arch = "alexnet", upto = 12, shape = {50, 3, 64, 64}, kind = "fwd"},
  {name = "alexnet 50x64 fwd+input grad", arch = "alexnet", upto = 12, shape = {50, 3, 64, 64}, kind = "fwd_gin"},
  {name = "squeezenet1_1 50x64 fwd", arch = "squeezenet1_1", upto = 12, shape = {50, 3, 64, 64}, kind = "fwd"},
  {name = "squeezenet1_1 50x64 fwd+input grad", arch = "squeezenet1_1", upto = 12, shape = {50, 3, 64, 64},
   kind = "fwd_gin"},
}
local jobs = {}
for _, j in ipairs(JOBS) do
  if not args.only or j.name:find(args.only, 1, true) then jobs[#jobs + 1] = j end
end

for _, d in ipairs(devices) do print(dpl.device_banner and dpl.device_banner(d) or d) end
print(("threads: %d, repeat: %d, load: %s"):format(nets.threads(), repeat_n,
  (io.open("/proc/loadavg") or {read = function() return "?" end}):read("*l") or "?"))

local peer, peer_info
if not args.no_torch then peer, peer_info = nets.torch_peer(repeat_n) end
local torch_times = {}

-- job by job, each device then PyTorch, so that a shared machine's changing load touches all of them alike
local times = {}
for _, d in ipairs(devices) do times[d] = {} end
for _, j in ipairs(jobs) do
  for _, d in ipairs(devices) do
    io.stderr:write(("  %s on %s ...\n"):format(j.name, d))
    times[d][j.name] = nets.time_dpl(j, d, repeat_n).best
  end
  if peer then
    io.stderr:write(("  %s in PyTorch ...\n"):format(j.name))
    local r, err = peer:time(j)
    torch_times[j.name] = r and r.best
    if not r then io.stderr:write(("  %s in PyTorch failed: %s\n"):format(j.name, tostring(err))) end
  end
end
if peer then peer:close() end
print(peer and ("PyTorch %s, %d threads"):format(peer_info, nets.threads()) or
      ("PyTorch: not run (%s)"):format(args.no_torch and "--no-torch" or tostring(peer_info)))

local header = {"work"}
for _, d in ipairs(devices) do header[#header + 1] = d .. " ms" end
if peer then
  header[#header + 1] = "torch ms"
  for _, d in ipairs(devices) do header[#header + 1] = d .. "/torch" end
end
local rows = {}
for _, j in ipairs(jobs) do
  local r = {j.name}
  for _, d in ipairs(devices) do r[#r + 1] = ("%.1f"):format(times[d][j.name] * 1e3) end
  if peer then
    local p = torch_times[j.name]
    r[#r + 1] = p and ("%.1f"):format(p * 1e3) or "?"
    for _, d in ipairs(devices) do r[#r + 1] = nets.ratio(times[d][j.name], p) end
  end
  rows[#rows + 1] = r
end
bench.print_table(header, rows)

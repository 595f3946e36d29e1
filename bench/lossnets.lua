-- bench/lossnets.lua - features per second of every architecture's loss network at its L layer (the deepest of the
-- paper's four), on a BAPPS-sized batch (50x3x64x64) and at 1x3x224x224, per device, beside PyTorch (torchvision,
-- same threads) in the same run, with the ratio table.
--
--   dplrun bench/lossnets.lua [--device cpu,vulkan] [--archs alexnet,vgg16] [--sizes 50x64,1x224] [--layer L]
--                             [--kind fwd|fwd_gin] [--repeat 3] [--rounds 2] [--no-torch]
--
-- "Features per second" is images through the truncated network per second (batch / best time). The weights are
-- random (random:SEED, as torchvision initialises them): speed does not depend on values, and nothing here is a
-- trained result. Times are the best of --repeat timed runs after a warm-up run; PyTorch runs in a child process
-- (bench/torch_peer.py, /usr/bin/python3) with torch.set_num_threads equal to dpl's CPU threads.
local argparse = require "argparse"
local ffi = require "ffi"
local dpl = require "dpl"
local bench = require "dpl.bench"
local lossnet = require "dpl.models.lossnet"
local nets = require "dpl.bench_nets"

local parser = argparse("dplrun bench/lossnets.lua",
  "Features per second of every loss network at its L layer, at 50x3x64x64 and 1x3x224x224, per device, beside " ..
  "PyTorch with the same threads (random weights: speed only).")
parser:option("--device", "Devices to measure, comma-separated (cpu, vulkan, vulkan:N).",
              dpl.vulkan_available() and "cpu,vulkan" or "cpu")
parser:option("--archs", "Architectures, comma-separated (default: all 14).", table.concat(lossnet.ORDER, ","))
parser:option("--sizes", "Input sizes as BATCHxSIDE, comma-separated.", "50x64,1x224")
parser:option("--layer", "Extraction layer (E, S, M, L or a child index).", "L")
parser:option("--kind", "fwd (features only) or fwd_gin (features + gradient to the input, as in training).", "fwd")
parser:option("--repeat", "Timed runs per figure (the best is shown).", "3")
parser:option("--rounds", "Passes over the whole job list (each figure: the best of all rounds).", "2")
parser:flag("--no-torch", "Do not run the PyTorch peer.")
local args = parser:parse(arg)

pcall(ffi.cdef, "int setenv(const char *name, const char *value, int overwrite);")
ffi.C.setenv("DPL_QUIET", "1", 0)

local repeat_n = tonumber(args["repeat"])
local rounds = tonumber(args.rounds)
if not rounds or rounds < 1 then error("--rounds: expected a positive number, got " .. tostring(args.rounds), 0) end
if not repeat_n or repeat_n < 1 then error("--repeat must be a positive integer", 0) end
if args.kind ~= "fwd" and args.kind ~= "fwd_gin" then error("--kind must be fwd or fwd_gin", 0) end
local devices = bench.word_list(args.device)
local sizes = {}
for _, s in ipairs(bench.word_list(args.sizes)) do
  local b, side = s:match("^(%d+)x(%d+)$")
  if not b then error("--sizes: expected BATCHxSIDE such as 50x64, got " .. s, 0) end
  sizes[#sizes + 1] = {batch = tonumber(b), side = tonumber(side), label = s}
end

local jobs = {}
for _, arch in ipairs(bench.word_list(args.archs)) do
  local upto = lossnet.layer_index(arch, args.layer)
  for _, s in ipairs(sizes) do
    jobs[#jobs + 1] = {name = ("%s %s %s"):format(arch, args.layer, s.label), arch = arch, upto = upto,
                       shape = {s.batch, 3, s.side, s.side}, kind = args.kind, batch = s.batch}
  end
end

for _, d in ipairs(devices) do print(dpl.device_banner(d)) end
print(("threads: %d, repeat: %d, rounds: %d, kind: %s, weights: random (untrained), load: %s"):format(nets.threads(),
  repeat_n, rounds, args.kind, (io.open("/proc/loadavg") or {read = function() return "?" end}):read("*l") or "?"))

local peer, peer_info
if not args.no_torch then peer, peer_info = nets.torch_peer(repeat_n) end
-- job by job, each device then PyTorch, the whole list --rounds times, each figure the best (nets.interleave)
local times, torch_times = nets.interleave(jobs, devices, rounds, function(j, d)
  return nets.time_dpl(j, d, repeat_n).best
end, peer)
if peer then peer:close() end
print(peer and ("PyTorch %s, %d threads"):format(peer_info, nets.threads()) or
      ("PyTorch: not run (%s)"):format(args.no_torch and "--no-torch" or tostring(peer_info)))

local function fps(j, t) return t and ("%.1f"):format(j.batch / t) or "failed" end
local header = {"loss network", "input"}
for _, d in ipairs(devices) do header[#header + 1] = d .. " feat/s" end
if peer then
  header[#header + 1] = "torch feat/s"
  for _, d in ipairs(devices) do header[#header + 1] = d .. " time/torch" end
end
local rows = {}
for _, j in ipairs(jobs) do
  local r = {j.arch .. " " .. args.layer, ("%dx3x%dx%d"):format(j.shape[1], j.shape[3], j.shape[4])}
  for _, d in ipairs(devices) do r[#r + 1] = fps(j, times[d][j.name]) end
  if peer then
    local p = torch_times[j.name]
    r[#r + 1] = fps(j, p)
    for _, d in ipairs(devices) do r[#r + 1] = nets.ratio(times[d][j.name], p) end
  end
  rows[#rows + 1] = r
end
bench.print_table(header, rows)

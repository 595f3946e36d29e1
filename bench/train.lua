-- bench/train.lua - one training step of a benchmark, dpl beside PyTorch (same threads) in one run, with the ratio.
--
--   dplrun bench/train.lua [--device cpu,vulkan] [--jobs superres:vgg16:E,superres:alexnet:M] [--batch 4] [--scale 4]
--                          [--hr-size 288] [--size 224] [--benchmark superres|autoencoder]
--                          [--repeat 3] [--rounds 2] [--profile] [--no-torch]
--
-- superres: the super-resolution benchmark's step (docs/benchmarks/superres.md): the x4 network on a batch of 72 x 72
-- inputs, its 288 x 288 output against a target through the loss network's feature MSE (frozen, eval mode), backward
-- and an Adam step. The default jobs are the five of issue 13: vgg16 E, vgg16 L, alexnet M, resnet50 L, efficientnet_b0
-- M. delineation: the road delineation benchmark's step (docs/benchmarks/delineation.md): the U-Net on a batch of 8
-- 224 x 224 RGB crops, K = 3 refinement iterations, the iteration-weighted BCE + 0.01 x feature MSE of the loss network
-- (frozen, training mode, ImageNet normalisation) of each map against the mask's, backward and an Adam step
-- (--jobs delineation:vgg19:M,delineation:alexnet:L,delineation:resnet50:S is issue 14's set). Weights are random (speed does not depend on values). Each figure is the best of --repeat steps after a warm-up
-- step, and the best over --rounds passes; dpl and PyTorch (bench/train_torch.py, a child process) take turns job by
-- job, so a shared machine's changing load touches both alike. --profile prints where dpl's step spends its time.
-- autoencoder (SVHN, 64 x 64) and autoencoder96 (STL-10, 96 x 96): the autoencoder benchmark's step
-- (docs/benchmarks/autoencoder.md): batch 256 by default, the reconstruction's features against the input's (computed
-- first) with the loss network frozen and in training mode, backward, Adam. --benchmark autoencoder runs issue 15's
-- jobs: alexnet M, vgg16 E, vgg16 M, resnet50 S at 64 and vgg16 M at 96.
-- Other benchmarks' steps are added as new kinds (KINDS below, STEPS in bench/train_torch.py).
local argparse = require "argparse"
local ffi = require "ffi"
local dpl = require "dpl"
local bench = require "dpl.bench"
local nets = require "dpl.bench_nets"
local lossnet = require "dpl.models.lossnet"
local superres = require "dpl.models.superres"
local autoencoder = require "dpl.models.autoencoder"
local ae_bench = require "dpl.benchmarks.autoencoder"
local perceptual = require "dpl.perceptual"
local optim = require "dpl.optim"

local positive = require("dpl.benchmarks.runner").positive
local parser = argparse("dplrun bench/train.lua",
  "Time one training step of a benchmark (super-resolution: batch 4, x4, 72 -> 288) beside PyTorch, with the ratio.")
parser:option("--device", "Devices to measure, comma-separated (cpu, vulkan, vulkan:N).", "cpu")
parser:option("--jobs", "Jobs KIND:ARCH:LAYER, comma-separated (KIND: superres, delineation, autoencoder, "
  .. "autoencoder96). Default: --benchmark's jobs.")
parser:option("--benchmark", "The default jobs: superres (issue 13's five) or autoencoder (issue 15's five).", "superres")
  :choices({"superres", "autoencoder"})
parser:option("--batch", "Batch size (default: 4 for superres, 8 for delineation, 256 for the autoencoder, as the "
  .. "benchmarks).")
  :convert(positive("batch"))
parser:option("--scale", "Super-resolution scale (4: 72 -> 288, 8: 36 -> 288).", "4"):convert(positive("scale"))
parser:option("--hr-size", "Side of the output (the benchmark: 288; smaller for a quick check).", "288")
  :convert(positive("hr-size"))
parser:option("--size", "delineation: side of the crops (the benchmark: 224; a multiple of 16).", "224")
  :convert(positive("size"))
parser:option("--repeat", "Timed steps per figure (the best is kept).", "3"):convert(positive("repeat"))
parser:option("--rounds", "Passes over the job list (each figure: the best of all rounds).", "2")
  :convert(positive("rounds"))
parser:flag("--profile", "Also time dpl's phases: network forward, target features, loss forward, backward, optimizer; "
  .. "on the CPU also the backward's largest ops.")
parser:flag("--no-torch", "Do not run the PyTorch peer.")
local args = parser:parse(arg)

pcall(ffi.cdef, "int setenv(const char *name, const char *value, int overwrite);")
ffi.C.setenv("DPL_QUIET", "1", 0)

local batch_opt, scale = args.batch, args.scale
local DEFAULT_BATCH = {superres = 4, delineation = 8, autoencoder = 256, autoencoder96 = 256}
local DEFAULT_JOBS = {
  superres = "superres:vgg16:E,superres:vgg16:L,superres:alexnet:M,superres:resnet50:L,superres:efficientnet_b0:M",
  autoencoder = "autoencoder:alexnet:M,autoencoder:vgg16:E,autoencoder:vgg16:M,autoencoder:resnet50:S,"
    .. "autoencoder96:vgg16:M"}
local size = args.size
if size % 16 ~= 0 then error(("--size %d is not a multiple of 16"):format(size), 0) end
local repeat_n, rounds = args["repeat"], args.rounds
if scale ~= 4 and scale ~= 8 then error("--scale must be 4 or 8", 0) end
local HR = args.hr_size
if HR % scale ~= 0 then error(("--hr-size %d is not a multiple of --scale %d"):format(HR, scale), 0) end

-- ---- the kinds of step ---------------------------------------------------------------------------------------------
-- build(job, device) -> {step = function() one training step end, phases = function() -> {name = seconds} (one
-- step, each phase synchronised)}
local KINDS = {}

-- the phases of one step: mark(name) records the time since the previous mark (the device synchronised) in the list t
local function phase_timer(device)
  local t, p = {}, bench.now()
  return t, function(name)
    dpl.synchronize(device)
    local now = bench.now()
    t[#t + 1] = {name, now - p}
    p = now
  end
end

-- A kind from its optimizer, loss_of() (one step's loss) and forward_phases(mark) (the same loss with its forward
-- split into timed phases): step() runs one training step; phases() times one, ending with backward and the optimizer.
local function training_kind(opt, device, loss_of, forward_phases)
  return {
    step = function()
      opt:zero_grad()
      local loss = loss_of()
      loss:backward()
      opt:step()
    end,
    phases = function()
      local t, mark = phase_timer(device)
      opt:zero_grad()
      local loss = forward_phases(mark)
      loss:backward()
      mark("backward")
      opt:step()
      mark("Adam step")
      return t
    end}
end

KINDS.superres = function(job, device)
  local net = superres.new({scale = job.scale, seed = 1, device = device})
  local crit = perceptual.loss{arch = job.arch, layer = job.layer, weights = "random:1", device = device}
  local opt = optim.Adam(net:parameters(), {lr = 1e-3})
  local lr = dpl.rand(job.shape, {seed = 2, device = device})
  local hr = dpl.rand({job.shape[1], 3, job.shape[3] * job.scale, job.shape[4] * job.scale}, {seed = 3, device = device})
  return training_kind(opt, device, function() return crit(net:forward(lr), hr) end, function(mark)
    local out = net:forward(lr)
    mark("network forward")
    local target = dpl.no_grad(function() return crit:features(hr) end)
    mark("target features")
    local loss = (crit:features(out) - target):square():mean()
    mark("loss forward")
    return loss
  end)
end

KINDS.delineation = function(job, device)
  local D = require "dpl.benchmarks.delineation"
  local net = require("dpl.models.unet").new({seed = 1, device = device})
  net:training()
  local crit = perceptual.loss{arch = job.arch, layer = job.layer, weights = "random:1", normalize = true, mode = "train",
                               device = device}
  crit:training()
  local opt = optim.Adam(net:parameters(), {lr = 1e-3})
  local rgb = dpl.rand(job.shape, {seed = 2, device = device})
  local mask = dpl.rand({job.shape[1], 1, job.shape[3], job.shape[4]}, {seed = 3, device = device}):gt(0.9)
  local function loss_of() return D.loss(net, crit, rgb, mask, {K = 3, mu = 0.01}) end
  return training_kind(opt, device, loss_of, function(mark)
    local loss = loss_of()
    mark("forward (K = 3 U-Net + loss network, loss)")
    return loss
  end)
end

-- the autoencoder benchmark's step: SVHN (64) or STL-10 (96)
local function autoencoder_kind(job, device)
  local net = autoencoder.new({side = job.shape[3], seed = 1, device = device})
  local crit = perceptual.loss{arch = job.arch, layer = job.layer, weights = "random:1", mode = "train", device = device}
  crit:training()
  local opt = optim.Adam(net:parameters(), {lr = 1e-3})
  local x = dpl.rand(job.shape, {seed = 2, device = device})
  return training_kind(opt, device, function() return ae_bench.ae_loss(crit, net:forward(x), x) end, function(mark)
    local target = dpl.no_grad(function() return crit:features(x) end)
    mark("input features")
    local out = net:forward(x)
    mark("autoencoder forward")
    local loss = (crit:features(out) - target):square():mean()
    mark("loss forward")
    return loss
  end)
end
KINDS.autoencoder, KINDS.autoencoder96 = autoencoder_kind, autoencoder_kind

-- ---- jobs ----------------------------------------------------------------------------------------------------------
local jobs = {}
local AE_SIDE = {autoencoder = 64, autoencoder96 = 96}
for _, spec in ipairs(bench.word_list(args.jobs or DEFAULT_JOBS[args.benchmark])) do
  local kind, arch, layer = spec:match("^([%w_]+):([%w_]+):(%w+)$")
  if not kind or not KINDS[kind] then
    error(("--jobs: expected KIND:ARCH:LAYER with KIND one of: superres, delineation, autoencoder, autoencoder96; got %s")
      :format(spec), 0)
  end
  local side = AE_SIDE[kind] or (kind == "delineation" and size or HR / scale)
  jobs[#jobs + 1] = {name = spec, kind = kind, arch = arch, layer = layer, upto = lossnet.layer_index(arch, layer),
                     shape = {batch_opt or DEFAULT_BATCH[kind], 3, side, side}, scale = scale}
end
local devices = bench.word_list(args.device)

for _, d in ipairs(devices) do print(dpl.device_banner(d)) end
print(("threads: %d, batch %s, superres x%d (%d -> %d), delineation %d x %d, repeat %d, rounds %d, weights random, "
  .. "load: %s"):format(nets.threads(), batch_opt or "4 (superres) / 8 (delineation) / 256 (autoencoder)", scale,
  HR / scale, HR, size, size,
  repeat_n, rounds, (io.open("/proc/loadavg") or {read = function() return "?" end})
  :read("*l") or "?"))

local peer, peer_info
if not args.no_torch then peer, peer_info = nets.torch_peer(repeat_n, nil, "train_torch.py") end

-- run() with autograd's node timer on: also returns the backward's time per op and output shape, largest first (on
-- the CPU ops run when called, so a node's time is its own; --profile prints the first few)
local function with_backward_ops(run)
  local A = require "dpl.autograd"
  local acc = {}
  A.node_timer = function(mark, name, y)
    if not mark then return bench.now() end
    local key = ("%s %s"):format(name, y.size and tostring(y:size()) or "")
    acc[key] = (acc[key] or 0) + bench.now() - mark
  end
  local ok, r = pcall(run)
  A.node_timer = nil
  if not ok then error(r, 0) end
  local list = {}
  for k, v in pairs(acc) do list[#list + 1] = {k, v} end
  table.sort(list, function(a, b) return a[2] > b[2] end)
  return r, list
end

local function time_dpl(job, device)
  local b = KINDS[job.kind](job, device)
  local r = bench.measure(function()
    b.step()
    return function() collectgarbage(); collectgarbage() end
  end, {sync = device, warmup = 1, reps = repeat_n})
  local ph, ops
  if args.profile then
    if device == "cpu" then ph, ops = with_backward_ops(b.phases); ph.ops = ops else ph = b.phases() end
  end
  b = nil
  collectgarbage(); collectgarbage()
  return r.best, ph
end

local times, torch_times, profiles = nets.interleave(jobs, devices, rounds, time_dpl, peer)
if peer then peer:close() end
print(peer and ("PyTorch %s, %d threads"):format(peer_info, nets.threads()) or
      ("PyTorch: not run (%s)"):format(args.no_torch and "--no-torch" or tostring(peer_info)))

local header = {"training step"}
for _, d in ipairs(devices) do header[#header + 1] = d end
if peer then
  header[#header + 1] = "torch"
  for _, d in ipairs(devices) do header[#header + 1] = d .. "/torch" end
end
local rows = {}
local function ms(t) return t and bench.format_time(t) or "failed" end
for _, j in ipairs(jobs) do
  local r = {("%s %s %s"):format(j.kind, j.arch, j.layer)}
  for _, d in ipairs(devices) do r[#r + 1] = ms(times[d][j.name]) end
  if peer then
    r[#r + 1] = ms(torch_times[j.name])
    for _, d in ipairs(devices) do r[#r + 1] = nets.ratio(times[d][j.name], torch_times[j.name]) end
  end
  rows[#rows + 1] = r
end
bench.print_table(header, rows)
if args.profile then
  for _, j in ipairs(jobs) do
    for _, d in ipairs(devices) do
      local ph = profiles[d .. " " .. j.name]
      if ph then
        local parts = {}
        for _, e in ipairs(ph) do parts[#parts + 1] = ("%s %s"):format(e[1], bench.format_time(e[2])) end
        print(("%s on %s: %s"):format(j.name, d, table.concat(parts, ", ")))
        if ph.ops then
          local top = {}
          for i = 1, math.min(8, #ph.ops) do
            top[i] = ("%s %s"):format(ph.ops[i][1], bench.format_time(ph.ops[i][2]))
          end
          print("  backward by op: " .. table.concat(top, ", "))
        end
      end
    end
  end
end

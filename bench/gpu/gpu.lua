-- bench/gpu/gpu.lua - dpl's Vulkan backend against PyTorch (CUDA or ROCm) on the same GPU, interleaved, as ratios
-- (bench/gpu/README.md): VGG-16 and ResNet-50 forward (batch 1 and 16, 224 x 224), the BAPPS evaluation (triplets/s,
-- AlexNet and VGG-16 at every layer) and one training step of benchmarks 2, 3 and 4 with a VGG-16 loss.
--
--   dplrun bench/gpu/gpu.lua [--device vulkan] [--repeat 5] [--rounds 2] [--only TEXT] [--no-torch] [--quick]
--   ./run.sh [the same options]                  (in a folder made by bench/gpu/package.sh)
--
-- Job by job, dpl then PyTorch (bench/gpu/torch_gpu.py in a child python3 reading jobs from a FIFO), the whole list
-- --rounds times; each figure is the best of its --repeat timed runs after two warm-up runs, and the best over the
-- rounds. Weights and data are random (speed does not depend on values). Prints the devices, the driver, dpl's kernel
-- choices and a table of times and ratios dpl / PyTorch (below 1: dpl is faster).
local argparse = require "argparse"
local ffi = require "ffi"
local dpl = require "dpl"
local bench = require "dpl.bench"
local fuse = require "dpl.nn.fuse"
local perceptual = require "dpl.perceptual"

local here = arg[0]:match("^(.*)/[^/]*$") or "."
local tasks = dofile(here .. "/tasks.lua")

local parser = argparse("gpu.lua", "dpl (Vulkan) against PyTorch (CUDA/ROCm) on the same GPU.")
parser:option("--device", "dpl device: vulkan (the first GPU, else the first device), vulkan:N.", "vulkan")
parser:option("--repeat", "Timed runs per figure (the best is kept).", "5")
parser:option("--rounds", "Passes over the whole job list (each figure: the best of all rounds).", "2")
parser:option("--only", "Run only the jobs whose name contains this text.")
parser:option("--python", "The python3 that has PyTorch.", "python3")
parser:option("--torch-device", "PyTorch's device (default: cuda when available, else cpu).")
parser:option("--layer", "Loss-network layer for the training steps (E, S, M, L); default E, M, M for benchmarks 2, 3, 4.")
parser:flag("--no-torch", "Do not run PyTorch.")
parser:flag("--quick", "Small sizes (batch 1 forwards, tiny training batches): a check that everything runs.")
local args = parser:parse(arg)

local reps, rounds = tonumber(args["repeat"]), tonumber(args.rounds)
if not reps or reps < 1 then error("--repeat must be a positive integer", 0) end
if not rounds or rounds < 1 then error("--rounds must be a positive integer", 0) end
local dev = args.device
dpl.device(dev)

-- ---- the jobs -------------------------------------------------------------------------------------------------------
local JOBS = {}
local function job(j) if not args.only or j.name:find(args.only, 1, true) then JOBS[#JOBS + 1] = j end end
for _, arch in ipairs {"vgg16", "resnet50"} do
  for _, b in ipairs(args.quick and {1} or {1, 16}) do
    job {name = ("%s forward, batch %d, 224"):format(arch, b), kind = "forward", arch = arch, batch = b, size = 224}
  end
end
for _, arch in ipairs {"alexnet", "vgg16"} do
  for _, l in ipairs {"E", "S", "M", "L"} do
    job {name = ("BAPPS %s %s (triplets/s)"):format(arch, l), kind = "bapps", arch = arch, layer = l,
         batch = args.quick and 4 or 64}
  end
end
local TRAIN = {{"superres", "benchmark 2 super-resolution x4 step", 4, "E"},
               {"delineation", "benchmark 3 delineation step (K = 3)", 8, "M"},
               {"autoencoder", "benchmark 4 autoencoder step", 256, "M"}}
for _, t in ipairs(TRAIN) do
  local layer = args.layer or t[4]
  job {name = ("%s, vgg16 %s, batch %d"):format(t[2], layer, args.quick and 1 or t[3]), kind = "train", task = t[1],
       arch = "vgg16", layer = layer, batch = args.quick and 1 or t[3]}
end

-- ---- dpl's side -----------------------------------------------------------------------------------------------------
local built = {}   -- per job: its run function (built once, reused by every round)
local labels = {}

local function make(j)
  if j.kind == "forward" then
    local model = require("dpl.models." .. (j.arch == "vgg16" and "vgg" or "resnet"))[j.arch]({device = dev})
    model:evaluate()
    for _, p in ipairs(model:parameters()) do p.requires_grad = false end
    fuse.apply(model)   -- BatchNorm folded, ReLU fused: what a frozen evaluating network gets in dpl
    local x = dpl.rand({j.batch, 3, j.size, j.size}, {seed = 7, device = dev})
    return function() dpl.no_grad(function() model:forward(x) end) end
  elseif j.kind == "bapps" then
    local m = perceptual.new({arch = j.arch, layer = j.layer, weights = "random:1", device = dev})
    local b = j.batch
    local x = dpl.rand({3 * b, 3, 64, 64}, {seed = 0, device = dev})
    return function()
      local f = m:features(x)
      local ref, p0, p1 = {}, {}, {}
      for k, t in ipairs(f) do
        ref[k], p0[k], p1[k] = t:narrow(1, 1, b), t:narrow(1, b + 1, b), t:narrow(1, 2 * b + 1, b)
      end
      return (m:feature_distance(ref, p0):lt(m:feature_distance(ref, p1))):sum():item()   -- read back, as BAPPS does
    end
  else
    local step, label = tasks.step(j.task, {device = dev, batch = j.batch, arch = j.arch, layer = j.layer})
    labels[j.name] = label
    return step
  end
end

local function time_dpl(j)
  built[j.name] = built[j.name] or make(j)
  local r = bench.measure(built[j.name], {warmup = 2, reps = reps, sync = dev})
  collectgarbage()
  return r.best
end

-- ---- PyTorch's side: a child process reading jobs from a FIFO ---------------------------------------------------------
local function json_string(s) return '"' .. tostring(s):gsub('[%c"\\]', function(c) return ("\\u%04x"):format(c:byte()) end) .. '"' end
local function job_json(j)
  local parts = {}
  for _, k in ipairs {"name", "kind", "arch", "task", "layer"} do
    if j[k] then parts[#parts + 1] = ("%s: %s"):format(json_string(k), json_string(j[k])) end
  end
  for _, k in ipairs {"batch", "size"} do
    if j[k] then parts[#parts + 1] = ("%s: %d"):format(json_string(k), j[k]) end
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

local peer, peer_info
if not args.no_torch then
  local fifo = os.tmpname()
  os.remove(fifo)
  assert(os.execute("mkfifo " .. fifo) == 0 or os.execute("test -p " .. fifo) == 0, "mkfifo failed")
  local cmd = ("%s %s/torch_gpu.py --repeat %d %s %s 2>&1"):format(args.python, here, reps,
    args.torch_device and ("--device " .. args.torch_device) or "", fifo)
  local p = io.popen(cmd)
  local first = p:read("*l")
  if first and first:match('^{"torch"') then
    peer_info = first
    local jobs = assert(io.open(fifo, "w"))
    peer = {}
    function peer:time(j)
      jobs:write(job_json(j), "\n")
      jobs:flush()
      while true do
        local line = p:read("*l")
        if not line then return nil, "the PyTorch child exited" end
        local best = line:match('"best_ms": ([%d%.eE%+%-]+)')
        if best then return tonumber(best) * 1e-3 end
        local err = line:match('"error": "(.*)"}$')
        if err then return nil, err end
        io.stderr:write("torch: ", line, "\n")
      end
    end
    function peer:close() jobs:close(); p:close(); os.remove(fifo) end
  else
    local rest = p:read("*a") or ""
    p:close()
    os.remove(fifo)
    peer_info = "not run: " .. tostring(first) .. " " .. rest:sub(-400)
  end
end

-- ---- run ------------------------------------------------------------------------------------------------------------
io.stdout:setvbuf("line")
print("dpl: " .. dpl.device_banner(dev))
print("PyTorch: " .. (peer_info or "not run (--no-torch)"))
print(("repeat %d, rounds %d, %s"):format(reps, rounds, args.quick and "quick sizes" or "full sizes"))
local best_dpl, best_torch, errors = {}, {}, {}
for round = 1, rounds do
  for _, j in ipairs(JOBS) do
    io.stderr:write(("[round %d/%d] %s: dpl ...\n"):format(round, rounds, j.name))
    local ok, t = pcall(time_dpl, j)
    if ok then best_dpl[j.name] = math.min(best_dpl[j.name] or math.huge, t)
    else errors[#errors + 1] = ("dpl %s: %s"):format(j.name, tostring(t)); built[j.name] = nil end
    if peer then
      io.stderr:write(("[round %d/%d] %s: PyTorch ...\n"):format(round, rounds, j.name))
      local tt, err = peer:time(j)
      if tt then best_torch[j.name] = math.min(best_torch[j.name] or math.huge, tt)
      else errors[#errors + 1] = ("PyTorch %s: %s"):format(j.name, tostring(err)) end
    end
  end
end
if peer then peer:close() end

-- which kernel families dpl's convolutions and products used (docs/vulkan.md)
local families = {}
for _, f in ipairs {"conv_direct", "conv_portable", "conv_winograd", "conv_tiled", "gemm_portable", "gemm_texel",
                    "gemm_tiled"} do
  local n = dpl.stat(f, dev)
  if n and n > 0 then families[#families + 1] = ("%s %d"):format(f, n) end
end
print("dpl kernels run: " .. (#families > 0 and table.concat(families, ", ") or "(none counted)"))

local rows = {}
for _, j in ipairs(JOBS) do
  local d, t = best_dpl[j.name], best_torch[j.name]
  local per = j.kind == "bapps" and function(s) return ("%.1f/s"):format(j.batch / s) end
              or function(s) return ("%.2f ms"):format(s * 1e3) end
  rows[#rows + 1] = {j.name .. (labels[j.name] and (" [" .. labels[j.name] .. "]") or ""), d and per(d) or "failed",
                     t and per(t) or "-", (d and t) and ("%.2f"):format(d / t) or "-"}
end
bench.print_table({"work", "dpl", "PyTorch", "dpl/PyTorch time"}, rows)
for _, e in ipairs(errors) do print("error: " .. e) end
if #errors > 0 then os.exit(1) end

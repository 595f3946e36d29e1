-- bench/bapps.lua - BAPPS evaluation speed: triplets per second of the paper's distance (docs/benchmarks/bapps.md) for
-- AlexNet, VGG-16 and SqueezeNet at every extraction layer on 64 x 64 patches, beside PyTorch (a child
-- /usr/bin/python3 running bench/bapps_torch.py with the same number of threads, right after dpl's run of the same
-- network), and their ratio.
--
--   dplrun bench/bapps.lua [--batch 64] [--reps 3] [--rounds 2] [--device cpu] [--archs alexnet,vgg16,squeezenet1_1]
--                          [--no-torch]
--
-- A triplet is (ref, p0, p1): one forward pass of the 3 x batch patches and the two distances d(ref,p0), d(ref,p1),
-- as experiments/bapps.lua computes them. The reference implementation uses batch 256; the figure per triplet hardly
-- depends on the batch once it fills the machine. Weights are random (speed does not depend on them); the patches are
-- uniform random 64 x 64 images. Times: best of --reps after a warm-up (dpl.bench, wall clock).
local argparse = require "argparse"
local ffi = require "ffi"
local dpl = require "dpl"
local bench = require "dpl.bench"
local perceptual = require "dpl.perceptual"

local parser = argparse("dplrun bench/bapps.lua", "BAPPS triplets per second, dpl beside PyTorch.")
parser:option("--batch", "Triplets per batch.", "64")
parser:option("--reps", "Timed runs per network (the best is shown).", "3")
parser:option("--rounds", "Passes over all networks (each figure: the best of all rounds).", "2")
parser:option("--device", "dpl device (cpu, vulkan, vulkan:N).", "cpu")
parser:option("--archs", "Architectures.", "alexnet,vgg16,squeezenet1_1")
parser:option("--layers", "Layers.", "E,S,M,L")
parser:option("--threads", "Threads for PyTorch (default: dpl's OpenMP thread count).")
parser:flag("--no-torch", "Do not run PyTorch.")
local args = parser:parse(arg)

local batch, reps, rounds = tonumber(args.batch), tonumber(args.reps), tonumber(args.rounds)
if not rounds or rounds < 1 then error("--rounds: expected a positive number, got " .. tostring(args.rounds), 0) end
local archs, layers = bench.word_list(args.archs), bench.word_list(args.layers)
dpl.device(args.device)
io.stderr:write("dpl device: ", dpl.device_banner(), "\n")
pcall(ffi.cdef, "int omp_get_max_threads(void);")
local ok_omp, nth = pcall(function() return ffi.C.omp_get_max_threads() end)
local threads = tonumber(args.threads) or (ok_omp and nth) or 1

local x = dpl.rand({3 * batch, 3, 64, 64}, {seed = 0, device = args.device})
local here = arg[0]:match("^(.*)/[^/]*$") or "."

-- PyTorch's figure for one network, measured right after dpl's (a child per network: on a shared machine the two
-- figures then see the same load; the child's start-up is not timed)
local torch_ok = false
local function torch_tps(arch, layer)
  if args.no_torch then return nil end
  local p = io.popen(("/usr/bin/python3 %s/bapps_torch.py %d %d %d %s:%s 2>&1"):format(here, threads, batch, reps,
    arch, layer))
  local tps
  for line in p:lines() do
    local v = line:match('"triplets_per_s": ([%d%.e%+%-]+)')
    if v then tps = tonumber(v); torch_ok = true else io.stderr:write("torch: ", line, "\n") end
  end
  p:close()
  return tps
end

-- network by network, dpl then PyTorch; the whole list --rounds times, keeping each figure's best (a 2-vCPU VM's speed
-- drifts by up to 2x over minutes, which moved single-round ratios by +-0.3)
local rows, by_key = {}, {}
for round = 1, rounds do
  for _, arch in ipairs(archs) do
    for _, layer in ipairs(layers) do
      local m = perceptual.new({arch = arch, layer = layer, weights = "random:1", device = args.device})
      local function run()
        return dpl.no_grad(function()      -- evaluation, as the experiment runs it
          local f = m:features(x)
          local ref, p0, p1 = {}, {}, {}
          for k, t in ipairs(f) do
            ref[k], p0[k], p1[k] = t:narrow(1, 1, batch), t:narrow(1, batch + 1, batch), t:narrow(1, 2 * batch + 1, batch)
          end
          local d0, d1 = m:feature_distance(ref, p0), m:feature_distance(ref, p1)
          return (d0:lt(d1)):sum():item()    -- read back, as the experiment does
        end)
      end
      local r = bench.measure(run, {warmup = 1, reps = reps, sync = args.device})
      m = nil
      collectgarbage()
      local key = arch .. " " .. layer
      local row = by_key[key]
      if not row then
        row = {arch = arch, layer = layer}
        by_key[key] = row
        rows[#rows + 1] = row
      end
      row.dpl = math.max(row.dpl or 0, batch / r.best)
      local tps = torch_tps(arch, layer)
      if tps then row.torch = math.max(row.torch or 0, tps) end
      io.stderr:write(("%s %s (round %d/%d): dpl %.1f, pytorch %s triplets/s\n"):format(arch, layer, round, rounds,
        batch / r.best, tps and ("%.1f"):format(tps) or "-"))
    end
  end
end

local out = {}
for _, r in ipairs(rows) do
  out[#out + 1] = {r.arch, r.layer, ("%.1f"):format(r.dpl), r.torch and ("%.1f"):format(r.torch) or "-",
                   r.torch and ("%.2f"):format(r.dpl / r.torch) or "-"}
end
print(("BAPPS triplets/s, 64 x 64, batch %d, best of %d runs x %d rounds, dpl on %s, PyTorch %s on the CPU with %d "
  .. "threads"):format(batch, reps, rounds, args.device, torch_ok and "1.13" or "(not run)", threads))
bench.print_table({"arch", "layer", "dpl", "pytorch", "dpl/pytorch"}, out)

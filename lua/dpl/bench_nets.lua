-- dpl.bench_nets: timing truncated ImageNet networks (loss networks) on dpl devices and, in a child process, in
-- PyTorch with the same number of threads (bench/conv.lua, bench/lossnets.lua).
--
--   local nets = require "dpl.bench_nets"
--   local job = {name = "vgg16 fwd", arch = "vgg16", upto = 30, shape = {1, 3, 224, 224}, kind = "fwd"}
--   local r = nets.time_dpl(job, "cpu", 3)          -- {best = seconds, ...} (dpl.bench.measure's result)
--   local peer = nets.torch_peer(3)                 -- a PyTorch child process (nil, reason without torch)
--   local p = peer:time(job)                        -- {best = seconds}; peer:close() at the end
--
-- kind: "fwd" (no autograd), "fwd_gin" (forward + gradient to the input through a frozen network, as a loss network
-- is used), "fwd_all" (forward + gradients to the input and to every parameter). The network is the reference
-- truncation (children of the list attribute run in order up to child `upto`) with random weights: speed does not
-- depend on values. bench/torch_peer.py is the PyTorch side.
local ffi = require "ffi"
local dpl = require "dpl"
local bench = require "dpl.bench"
local lossnet = require "dpl.models.lossnet"

local M = {}

pcall(ffi.cdef, [[
int omp_get_max_threads(void);
int openblas_get_num_threads(void);
]])

-- The threads dpl's CPU backend uses (OpenMP loops and OpenBLAS): the peer gets as many.
function M.threads()
  local ok, n = pcall(function() return ffi.C.omp_get_max_threads() end)
  if ok and n > 0 then return n end
  ok, n = pcall(function() return ffi.C.openblas_get_num_threads() end)
  return ok and n > 0 and n or 1
end

-- Seconds of one job on a device: best of `repeat` timed runs after a warm-up run (bench.measure's result table).
-- The garbage collector runs untimed after each run, so that freed intermediates do not pile up.
function M.time_dpl(job, device, reps)
  local net = lossnet.new(job.arch, job.upto, {weights = "random:1", device = device,
                                               frozen = job.kind ~= "fwd_all"})
  local x = dpl.rand(job.shape, {device = device, seed = 7})
  if job.kind ~= "fwd" then x:requires_grad_() end
  local function cleanup()
    x.grad = nil
    if job.kind == "fwd_all" then net:zeroGrad() end
    collectgarbage()
    collectgarbage()
  end
  local fn
  if job.kind == "fwd" then
    fn = function()
      dpl.no_grad(function() net:forward(x) end)
      return cleanup
    end
  elseif job.kind == "fwd_gin" or job.kind == "fwd_all" then
    fn = function()
      net:forward(x):sum():backward()
      return cleanup
    end
  else
    error("bench_nets: unknown job kind " .. tostring(job.kind), 2)
  end
  local r = bench.measure(fn, {sync = device, warmup = 1, reps = reps})
  net = nil
  x = nil
  collectgarbage()
  collectgarbage()
  return r
end

local PYTHON = "/usr/bin/python3"

-- Is PyTorch (with torchvision) importable by /usr/bin/python3? Returns true or false, reason.
function M.torch_available()
  local f = io.open(PYTHON, "r")
  if not f then return false, PYTHON .. " not found" end
  f:close()
  local ok = os.execute(PYTHON .. " -c 'import torch, torchvision' >/dev/null 2>&1")
  if ok == 0 or ok == true then return true end
  return false, "torch/torchvision not importable by " .. PYTHON
end

local function json_string(s) return '"' .. tostring(s):gsub('[%c"\\]', function(c) return ("\\u%04x"):format(c:byte()) end) .. '"' end

local function job_json(j)
  return ('{"name": %s, "arch": %s, "upto": %d, "shape": [%s], "kind": %s%s}'):format(json_string(j.name),
    json_string(j.arch), j.upto, table.concat(j.shape, ", "), json_string(j.kind),
    j.scale and (', "scale": %d'):format(j.scale) or "")
end

-- Starts the PyTorch peer (one child process, threads = M.threads()) that runs jobs one at a time, so that its runs
-- can be interleaved with dpl's. Returns peer, version, or nil, reason. peer:time(job) -> {best = seconds} or nil,
-- reason; peer:close(). script: the peer in bench/ (default torch_peer.py; train_torch.py times training steps).
function M.torch_peer(reps, script_dir, script)
  local ok, why = M.torch_available()
  if not ok then return nil, why end
  local fifo = os.tmpname()
  os.remove(fifo)
  if not (os.execute("mkfifo " .. fifo) == 0 or os.execute("test -p " .. fifo) == 0) then
    return nil, "mkfifo failed"
  end
  script = (script_dir or (DPL_SOURCE_ROOT .. "/bench")) .. "/" .. (script or "torch_peer.py")
  local p = io.popen(("%s %s --threads %d --repeat %d %s 2>&1"):format(PYTHON, script, M.threads(), reps, fifo))
  local first = p:read("*l")
  local version = first and first:match('^{"torch": "([^"]+)"')
  if not version then
    local rest = p:read("*a") or ""
    p:close()
    os.remove(fifo)
    return nil, "the PyTorch child failed: " .. tostring(first) .. "\n" .. rest:sub(-800)
  end
  local jobs = assert(io.open(fifo, "w"))      -- the child opens it for reading right after its first line
  local peer = {}
  function peer:time(job)
    jobs:write(job_json(job), "\n")
    jobs:flush()
    while true do
      local line = p:read("*l")
      if not line then return nil, "the PyTorch child exited" end
      local name, best = line:match('^{"name": "(.-)", "best_ms": ([%d%.eE%+%-]+)')
      if name then return {best = tonumber(best) * 1e-3} end
      local err = line:match('^{"name": .-, "error": "(.*)"}$')
      if err then return nil, err end
    end
  end
  function peer:close()
    jobs:close()
    p:close()
    os.remove(fifo)
  end
  return peer, version
end

-- The interleaved measurement of bench/lossnets.lua and bench/train.lua: job by job, dpl on each device
-- (time_dpl(job, device) -> seconds[, extra]) then the PyTorch peer (when given), so that a shared machine's changing
-- load touches all of them alike; the whole list `rounds` times, keeping each figure's best (a 2-vCPU VM's speed
-- drifts by up to 2x over minutes). A failure is reported on stderr and leaves its figure out. Returns times[device]
-- [job.name], torch_times[job.name] (seconds) and extras[device .. " " .. job.name] (time_dpl's second result).
function M.interleave(jobs, devices, rounds, time_dpl, peer)
  local times, torch_times, extras = {}, {}, {}
  for _, d in ipairs(devices) do times[d] = {} end
  local function keep_best(tab, key, t) if t and (not tab[key] or t < tab[key]) then tab[key] = t end end
  for round = 1, rounds do
    for _, j in ipairs(jobs) do
      for _, d in ipairs(devices) do
        io.stderr:write(("  %s on %s (round %d/%d) ...\n"):format(j.name, d, round, rounds))
        local ok, t, extra = pcall(time_dpl, j, d)
        if ok then
          keep_best(times[d], j.name, t)
          if extra ~= nil then extras[d .. " " .. j.name] = extra end
        else
          io.stderr:write(("  %s on %s failed: %s\n"):format(j.name, d, tostring(t)))
        end
      end
      if peer then
        io.stderr:write(("  %s in PyTorch (round %d/%d) ...\n"):format(j.name, round, rounds))
        local r, err = peer:time(j)
        keep_best(torch_times, j.name, r and r.best)
        if not r then io.stderr:write(("  %s in PyTorch failed: %s\n"):format(j.name, tostring(err))) end
      end
    end
  end
  return times, torch_times, extras
end

-- "1.23x" (dpl time / torch time), or "" when either is missing
function M.ratio(a, b)
  if not a or not b then return "" end
  return ("%.2fx"):format(a / b)
end

return M

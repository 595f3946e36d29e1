-- dpl.bench_nets: timing truncated ImageNet networks (loss networks) on dpl devices and, in a child process, in
-- PyTorch with the same number of threads (bench/conv.lua, bench/lossnets.lua).
--
--   local nets = require "dpl.bench_nets"
--   local job = {name = "vgg16 fwd", arch = "vgg16", upto = 30, shape = {1, 3, 224, 224}, kind = "fwd"}
--   local r = nets.time_dpl(job, "cpu", 3)          -- {best = seconds, ...} (dpl.bench.measure's result)
--   local peer = nets.time_torch({job}, 3)          -- {["vgg16 fwd"] = {best = seconds}} or nil, reason
--
-- kind: "fwd" (no autograd), "fwd_gin" (forward + gradient to the input through a frozen network, as a loss network
-- is used), "fwd_all" (forward + gradients to the input and to every parameter). The network is the reference
-- truncation (children of the list attribute run in order up to child `upto`) with random weights: speed does not
-- depend on values. bench/torch_peer.py is the PyTorch side.
local ffi = require "ffi"
local dpl = require "dpl"
local bench = require "dpl.bench"
local lossnet = require "dpl.lossnet"

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

local function jobs_json(jobs)
  local parts = {}
  for _, j in ipairs(jobs) do
    parts[#parts + 1] = ('{"name": %s, "arch": %s, "upto": %d, "shape": [%s], "kind": %s}'):format(
      json_string(j.name), json_string(j.arch), j.upto, table.concat(j.shape, ", "), json_string(j.kind))
  end
  return "[" .. table.concat(parts, ",\n") .. "]\n"
end

-- Times the jobs in PyTorch (one child process, threads = M.threads()). Returns name -> {best = seconds}, and the
-- torch version; or nil, reason.
function M.time_torch(jobs, reps, script_dir)
  local ok, why = M.torch_available()
  if not ok then return nil, why end
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(jobs_json(jobs))
  f:close()
  local script = (script_dir or (DPL_SOURCE_ROOT .. "/bench")) .. "/torch_peer.py"
  local cmd = ("%s %s --threads %d --repeat %d %s 2>&1"):format(PYTHON, script, M.threads(), reps, path)
  local p = io.popen(cmd)
  local out = p:read("*a")
  p:close()
  os.remove(path)
  local res, version = {}, nil
  for line in out:gmatch("[^\n]+") do
    local v = line:match('^{"torch": "([^"]+)"')
    if v then version = v end
    local name, best = line:match('^{"name": "(.-)", "best_ms": ([%d%.eE%+%-]+)')
    if name then res[name] = {best = tonumber(best) * 1e-3} end
  end
  if not version then return nil, "the PyTorch child failed: " .. out:sub(-800) end
  return res, version
end

-- "1.23x" (dpl time / torch time), or "" when either is missing
function M.ratio(a, b)
  if not a or not b then return "" end
  return ("%.2fx"):format(a / b)
end

return M

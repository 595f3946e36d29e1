-- bench/runtime.lua - runtime microbenchmarks: matmul GFLOP/s per device (the CPU beside raw OpenBLAS cblas_sgemm),
-- and for Vulkan devices the fixed costs (submit + wait, each extra dispatch) and host <-> device copy bandwidth.
--
--   dplrun bench/runtime.lua [--sizes 512,1024,2048] [--devices cpu,vulkan] [--reps 5]
--
-- Every figure is the best of --reps timed runs after a warm-up run, timed with a wall clock (dpl.bench).
local argparse = require "argparse"
local ffi = require "ffi"
local dpl = require "dpl"
local bench = require "dpl.bench"
local T = require "dpl.tensor"

local parser = argparse("dplrun bench/runtime.lua",
  "Runtime microbenchmarks: square matmul GFLOP/s per device (the CPU beside raw OpenBLAS), and for Vulkan the cost " ..
  "of a submit, of each extra dispatch, and host <-> device copy bandwidth.")
parser:option("--sizes", "Square matmul sizes (n for n x n @ n x n).", "512,1024,2048")
parser:option("--devices", "Devices to measure (cpu, vulkan, vulkan:N).",
              dpl.vulkan_available() and "cpu,vulkan" or "cpu")
parser:option("--reps", "Timed runs per figure (the best is shown).", "5")
parser:option("--copy-mib", "Size of the host <-> device copies, in MiB.", "64")
local args = parser:parse(arg)

-- this script prints the device banners itself: skip the ones dpl writes to stderr when a device opens
pcall(ffi.cdef, "int setenv(const char *name, const char *value, int overwrite);")
ffi.C.setenv("DPL_QUIET", "1", 0)

local sizes = bench.number_list(args.sizes)
local devices = bench.word_list(args.devices)
local reps = tonumber(args.reps)
local copy_mib = tonumber(args.copy_mib)

-- ---- raw OpenBLAS through the FFI (the symbols are already in the process: the runtime links OpenBLAS) -----------
pcall(ffi.cdef, [[
void cblas_sgemm(int order, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc);
char *openblas_get_corename(void);
int openblas_get_num_threads(void);
void openblas_set_num_threads(int n);
]])
local blas
do
  local ok = pcall(function() return ffi.C.cblas_sgemm end)
  if ok then blas = ffi.C else
    local loaded, lib = pcall(ffi.load, "openblas")
    if loaded then blas = lib end
  end
end
local CblasRowMajor, CblasNoTrans = 101, 111

-- Best seconds of dpl's n x n matmul on a device and, on the CPU, of raw cblas_sgemm on the same data (the runs of the
-- two interleaved, so that the ratio is not skewed by other processes on a shared machine).
local function matmul_times(dev, n)
  local a = dpl.randn({n, n}, {device = dev, seed = 1})
  local b = dpl.randn({n, n}, {device = dev, seed = 2})
  dpl.synchronize(dev)
  local function dpl_run()
    local c = a:matmul(b)
    return function() c:free() end       -- freed untimed, so runs do not pile up memory until the GC runs
  end
  local fns = {dpl_run}
  if dev == "cpu" and blas then
    local ha, hb = a:float_data(), b:float_data()
    local hc = ffi.new("float[?]", n * n)
    -- raw OpenBLAS with its own threads (dpl's CPU device runs it single-threaded inside OpenMP's), restored after
    local threads = require("dpl.bench_nets").threads()
    fns[2] = function()
      blas.openblas_set_num_threads(threads)
      blas.cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, ha, n, hb, n, 0, hc, n)
      blas.openblas_set_num_threads(1)
    end
  end
  local r = bench.measure_interleaved(fns, {reps = reps, sync = dev})
  a:free(); b:free()
  return r[1].best, r[2] and r[2].best
end

-- ---- Vulkan fixed costs and bandwidth ----------------------------------------------------------------------------
local function vulkan_overheads(dev)
  local out = {}
  local x = dpl.zeros({64}, {device = dev})
  dpl.synchronize(dev)
  -- one tiny dispatch, then submit and wait
  local one = bench.measure(function() x:add_(1) end, {reps = math.max(reps, 50), sync = dev})
  out.submit = one.best
  -- 200 dependent dispatches recorded into one command buffer, one submit and wait
  local N = 200
  local many = bench.measure(function() for _ = 1, N do x:add_(1) end end, {reps = reps, sync = dev})
  out.per_dispatch = (many.best - one.best) / (N - 1)
  out.n = N
  x:free()
  -- host -> device: dpl.from_pointer (a new tensor: allocation included) and into an existing tensor
  -- (dpl_tensor_from_host_); device -> host: Tensor:float_data (a new host array) and into an existing array
  -- (dpl_tensor_to_host)
  local numel = math.floor(copy_mib * 2 ^ 20 / 4)
  local bytes = numel * 4
  local host = ffi.new("float[?]", numel)
  for i = 0, numel - 1, 1024 do host[i] = i end
  local up = bench.measure(function()
    local t = dpl.from_pointer(host, {numel}, {device = dev})
    return function() t:free() end
  end, {reps = reps, sync = dev})
  out.upload_new = bytes / up.best * 1e-9
  local t = dpl.from_pointer(host, {numel}, {device = dev})
  local h = T.handle(t)
  dpl.synchronize(dev)
  local up2 = bench.measure(function() assert(dpl.C.dpl_tensor_from_host_(h, host) == 0) end, {reps = reps, sync = dev})
  out.upload = bytes / up2.best * 1e-9
  local down = bench.measure(function() t:float_data() end, {reps = reps})
  out.download_new = bytes / down.best * 1e-9
  local down2 = bench.measure(function() assert(dpl.C.dpl_tensor_to_host(h, host) == 0) end, {reps = reps})
  out.download = bytes / down2.best * 1e-9
  t:free()
  collectgarbage()
  return out
end

-- ---- run --------------------------------------------------------------------------------------------------------
print("dpl " .. dpl.version)
for _, dev in ipairs(devices) do print(dpl.device_banner(dev)) end
if blas then
  print(("raw OpenBLAS: core %s, %d threads (its own pool)"):format(ffi.string(blas.openblas_get_corename()),
                                                                    require("dpl.bench_nets").threads()))
end
print()

local header = {"device", "matmul n"}
local rows = {}
for _, dev in ipairs(devices) do
  local is_cpu = dev == "cpu"
  for _, n in ipairs(sizes) do
    local t, t_raw = matmul_times(dev, n)
    local g = bench.gflops(2 * n ^ 3, t)
    local row = {dev, n, ("%.1f"):format(g)}
    if is_cpu then
      local raw = t_raw and bench.gflops(2 * n ^ 3, t_raw)
      row[4] = raw and ("%.1f"):format(raw) or "n/a"
      row[5] = raw and ("%.2f"):format(g / raw) or ""
    end
    rows[#rows + 1] = row
    collectgarbage()
  end
end
print("Square matmul (n x n @ n x n), GFLOP/s, best of " .. reps .. " after a warm-up run (CPU: dpl and raw runs " ..
      "interleaved, same data):")
bench.print_table({"device", "n", "dpl matmul", "raw cblas_sgemm", "dpl / raw"}, rows)

local vrows = {}
for _, dev in ipairs(devices) do
  if dev ~= "cpu" then
    local o = vulkan_overheads(dev)
    vrows[#vrows + 1] = {dev, bench.format_time(o.submit), bench.format_time(o.per_dispatch),
                         ("%.2f / %.2f"):format(o.upload, o.upload_new),
                         ("%.2f / %.2f"):format(o.download, o.download_new)}
  end
end
if #vrows > 0 then
  print()
  print(("Vulkan fixed costs and copies (%g MiB):"):format(copy_mib))
  bench.print_table({"device", "submit + wait (1 tiny dispatch)", "each extra dispatch", "host->device GB/s",
                     "device->host GB/s"}, vrows)
  print("each extra dispatch: (time of 200 dependent tiny dispatches in one submit - time of 1) / 199")
  print("GB/s: into existing memory (dpl_tensor_from_host_, dpl_tensor_to_host) / into new memory, allocation " ..
        "included (dpl.from_pointer, Tensor:float_data)")
end

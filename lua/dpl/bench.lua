-- dpl.bench: helpers for benchmarks (bench/*.lua).
--
--   local bench = require "dpl.bench"
--   local r = bench.measure(function() c = a:matmul(b) end, {sync = "vulkan", warmup = 1, reps = 5})
--   print(bench.gflops(2 * n ^ 3, r.best))
--   bench.print_table({"size", "GFLOP/s"}, {{512, "80.1"}, {1024, "95.3"}})
--
-- Times are wall-clock (CLOCK_MONOTONIC): os.clock() counts the CPU time of every thread of the process, which is
-- wrong for multi-threaded work (OpenBLAS, lavapipe) and for time spent waiting on a device.
local ffi = require "ffi"
local dpl = require "dpl"

-- the same declaration as lua/dpl/progress.lua, so whichever module loads first wins and the other's is a no-op
pcall(ffi.cdef, [[
struct dpl_timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clk_id, struct dpl_timespec *tp);
]])

local M = {}

local CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID = 1, 2
local ts = ffi.new("struct dpl_timespec")

-- wall-clock seconds (monotonic; only differences are meaningful)
function M.now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

-- CPU seconds used by every thread of this process
function M.cpu_time()
  ffi.C.clock_gettime(CLOCK_PROCESS_CPUTIME_ID, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

-- Times fn() (which may return a cleanup function, called untimed after each run).
-- opts: warmup (runs before timing, default 1), reps (timed runs, default 5), min_time (keep running until the timed
-- runs add up to this many seconds, default 0), max_reps (default 1000), sync (a device spec, a list of them, or a
-- function: waited for inside each timed run, so asynchronous device work is counted).
-- Returns {best, median, mean, worst, reps, times = {...}} in seconds.
function M.measure(fn, opts)
  opts = opts or {}
  local sync = opts.sync
  local sync_fn
  if type(sync) == "function" then sync_fn = sync
  elseif type(sync) == "string" then sync_fn = function() dpl.synchronize(sync) end
  elseif type(sync) == "table" then sync_fn = function() for _, s in ipairs(sync) do dpl.synchronize(s) end end
  else sync_fn = function() end end
  local function run_once()
    local t0 = M.now()
    local cleanup = fn()
    sync_fn()
    local t = M.now() - t0
    if type(cleanup) == "function" then cleanup() end
    return t
  end
  for _ = 1, opts.warmup or 1 do run_once() end
  local times, total = {}, 0
  local reps, min_time, max_reps = opts.reps or 5, opts.min_time or 0, opts.max_reps or 1000
  while #times < reps or (total < min_time and #times < max_reps) do
    local t = run_once()
    times[#times + 1] = t
    total = total + t
  end
  local sorted = {}
  for i, t in ipairs(times) do sorted[i] = t end
  table.sort(sorted)
  local n = #sorted
  local median = n % 2 == 1 and sorted[(n + 1) / 2] or (sorted[n / 2] + sorted[n / 2 + 1]) / 2
  return {best = sorted[1], worst = sorted[n], median = median, mean = total / n, reps = n, times = times}
end

-- Like measure, for several functions whose times are to be compared: their runs are interleaved (f1, f2, ..., f1,
-- f2, ...), so that slow drifts of the machine (other processes, frequency) touch all of them alike. fns is a list of
-- functions; opts as for measure (sync applies to all). Returns a list of results, one per function.
function M.measure_interleaved(fns, opts)
  opts = opts or {}
  local reps = opts.reps or 5
  local results, times = {}, {}
  for i = 1, #fns do times[i] = {} end
  for _ = 1, opts.warmup or 1 do
    for i, fn in ipairs(fns) do M.measure(fn, {warmup = 0, reps = 1, sync = opts.sync}) end
  end
  for _ = 1, reps do
    for i, fn in ipairs(fns) do
      local r = M.measure(fn, {warmup = 0, reps = 1, sync = opts.sync})
      times[i][#times[i] + 1] = r.best
    end
  end
  for i = 1, #fns do
    local sorted, total = {}, 0
    for k, t in ipairs(times[i]) do sorted[k] = t; total = total + t end
    table.sort(sorted)
    local n = #sorted
    local median = n % 2 == 1 and sorted[(n + 1) / 2] or (sorted[n / 2] + sorted[n / 2 + 1]) / 2
    results[i] = {best = sorted[1], worst = sorted[n], median = median, mean = total / n, reps = n, times = times[i]}
  end
  return results
end

function M.gflops(flop, seconds) return flop / seconds * 1e-9 end

-- "12.3 ms", "45 us", "1.20 s"
function M.format_time(s)
  if s >= 1 then return ("%.2f s"):format(s) end
  if s >= 1e-3 then return ("%.1f ms"):format(s * 1e3) end
  return ("%.0f us"):format(s * 1e6)
end

-- A table with a header row, columns as wide as their widest cell; numbers (and cells starting with a digit or a
-- sign) are right-aligned, other text left-aligned.
function M.format_table(header, rows)
  local all = {header}
  for _, r in ipairs(rows) do all[#all + 1] = r end
  local ncol, width = #header, {}
  for c = 1, ncol do width[c] = 0 end
  for _, r in ipairs(all) do
    for c = 1, ncol do width[c] = math.max(width[c], #tostring(r[c] == nil and "" or r[c])) end
  end
  local function line(r, is_header)
    local cells = {}
    for c = 1, ncol do
      local s = tostring(r[c] == nil and "" or r[c])
      local right = not is_header and (type(r[c]) == "number" or s:match("^[%d%-%+%.]") ~= nil)
      cells[c] = right and (" "):rep(width[c] - #s) .. s or s .. (" "):rep(width[c] - #s)
    end
    return (table.concat(cells, "  "):gsub("%s+$", ""))
  end
  local out = {line(header, true)}
  local rule = {}
  for c = 1, ncol do rule[c] = ("-"):rep(width[c]) end
  out[#out + 1] = table.concat(rule, "  ")
  for _, r in ipairs(rows) do out[#out + 1] = line(r, false) end
  return table.concat(out, "\n")
end

function M.print_table(header, rows) print(M.format_table(header, rows)) end

-- "512,1024" -> {512, 1024}
function M.number_list(s)
  local out = {}
  for w in tostring(s):gmatch("[^,%s]+") do
    local v = tonumber(w)
    if not v then error("not a number: " .. w, 2) end
    out[#out + 1] = v
  end
  return out
end

-- "cpu,vulkan" -> {"cpu", "vulkan"}
function M.word_list(s)
  local out = {}
  for w in tostring(s):gmatch("[^,%s]+") do out[#out + 1] = w end
  return out
end

return M

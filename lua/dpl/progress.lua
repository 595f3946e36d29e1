-- dpl.progress: a progress bar with rate and ETA for long work (downloads, datasets, experiments), on stderr.
--   local bar = progress.new({total = n, label = "bapps", unit = "img"})
--   for i = 1, n do ... bar:update(1) end
--   bar:finish()
-- On a terminal it redraws one line (at most 10 times a second); otherwise it prints a line every 10 seconds, so logs
-- stay readable.
local ffi = require "ffi"
pcall(ffi.cdef, [[
int isatty(int fd);
struct dpl_timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clk_id, struct dpl_timespec *tp);
]])

local M = {}

local ts = ffi.new("struct dpl_timespec")
function M.now()
  ffi.C.clock_gettime(1, ts)   -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local function human(v, unit)
  if unit == "B" then
    local units = {"B", "kB", "MB", "GB", "TB"}
    local i = 1
    while v >= 1000 and i < #units do v = v / 1000; i = i + 1 end
    return (i == 1 and "%d %s" or "%.1f %s"):format(v, units[i])
  end
  if v >= 1e6 then return ("%.2fM %s"):format(v / 1e6, unit) end
  if v >= 1e4 then return ("%.1fk %s"):format(v / 1e3, unit) end
  return (v == math.floor(v) and "%d %s" or "%.1f %s"):format(v, unit)
end
M.human = human

local function clock(s)
  if s ~= s or s == math.huge then return "--:--" end
  s = math.floor(s + 0.5)
  if s >= 3600 then return ("%d:%02d:%02d"):format(s / 3600, (s % 3600) / 60, s % 60) end
  return ("%d:%02d"):format(s / 60, s % 60)
end
M.clock = clock

local Bar = {}
Bar.__index = Bar

function M.new(opts)
  opts = opts or {}
  local self = setmetatable({total = opts.total, label = opts.label or "", unit = opts.unit or "it", done = opts.start or 0,
                             start_done = opts.start or 0, t0 = M.now(), last = 0, width = opts.width or 28,
                             out = opts.out or io.stderr, quiet = opts.quiet or (os.getenv("DPL_NO_PROGRESS") ~= nil)}, Bar)
  self.tty = ffi.C.isatty(2) == 1
  return self
end

function Bar:line()
  local elapsed = M.now() - self.t0
  local rate = elapsed > 0 and (self.done - self.start_done) / elapsed or 0
  local parts = {self.label}
  if self.total and self.total > 0 then
    local frac = math.min(self.done / self.total, 1)
    local fill = math.floor(frac * self.width)
    parts[#parts + 1] = "[" .. ("="):rep(fill) .. (fill < self.width and ">" or "") .. (" "):rep(self.width - fill - 1) .. "]"
    parts[#parts + 1] = ("%3d%%"):format(math.floor(frac * 100))
    parts[#parts + 1] = human(self.done, self.unit) .. "/" .. human(self.total, self.unit)
    parts[#parts + 1] = human(rate, self.unit) .. "/s"
    local eta = rate > 0 and (self.total - self.done) / rate or math.huge
    parts[#parts + 1] = "ETA " .. clock(eta)
  else
    parts[#parts + 1] = human(self.done, self.unit)
    parts[#parts + 1] = human(rate, self.unit) .. "/s"
    parts[#parts + 1] = clock(elapsed)
  end
  return table.concat(parts, " ")
end

function Bar:update(n, force)
  self.done = self.done + (n or 0)
  if self.quiet then return end
  local t = M.now()
  local every = self.tty and 0.1 or 10
  if not force and t - self.last < every then return end
  self.last = t
  if self.tty then self.out:write("\r", self:line(), "\27[K") else self.out:write(self:line(), "\n") end
  self.out:flush()
end

function Bar:set(done) self:update(done - self.done) end

function Bar:finish(message)
  if self.quiet then return end
  local elapsed = M.now() - self.t0
  local line = self:line()
  if self.tty then self.out:write("\r", line, "\27[K\n") else self.out:write(line, "\n") end
  if message then self.out:write(message, "\n") end
  self.out:flush()
  return elapsed
end

return M

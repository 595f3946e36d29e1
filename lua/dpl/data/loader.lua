-- Background decoding of files (the C thread pool of runtime/src/io/loader.c), for the dataset iterators.
--
--   local Loader = require "dpl.data.loader"
--   local L = Loader.new(4)                                   -- 4 threads
--   local job = L:submit({"a.png", "b.png"}, "image", 3)      -- returns at once; decoding runs in the background
--   ... other work ...
--   local tensors = job:take_all()                            -- waits; CPU tensors C x H x W (or the .npy's shape)
local ffi = require "ffi"
local dffi = require "dpl.ffi"
local T = require "dpl.tensor"
local C = dffi.C

local M = {}
local KIND = {image = C.DPL_LOAD_IMAGE, npy = C.DPL_LOAD_NPY}

local Loader = {}
Loader.__index = Loader
local Job = {}
Job.__index = Job

-- nthreads defaults to $DPL_LOADER_THREADS, else 4
function M.new(nthreads)
  nthreads = nthreads or tonumber(os.getenv("DPL_LOADER_THREADS")) or 4
  local c = C.dpl_loader_new(nthreads)
  if c == nil then dffi.raise(2) end
  return setmetatable({_c = ffi.gc(c, C.dpl_loader_free), threads = nthreads}, Loader)
end

-- kind: "image" (channels 0 keep, 1 L, 3 RGB) or "npy"
function Loader:submit(paths, kind, channels)
  local k = KIND[kind or "image"]
  if not k then error("loader:submit: kind must be 'image' or 'npy', got " .. tostring(kind), 2) end
  local n = #paths
  local arr = ffi.new("const char *[?]", math.max(n, 1))
  for i = 1, n do arr[i - 1] = paths[i] end   -- the C side copies the strings before returning
  local c = C.dpl_loader_submit(self._c, n, arr, k, channels or 0)
  if c == nil then dffi.raise(2) end
  return setmetatable({_c = ffi.gc(c, C.dpl_load_job_free), n = n, loader = self}, Job)
end

function Loader:close()
  if self._c then
    C.dpl_loader_free(ffi.gc(self._c, nil))
    self._c = nil
  end
end

function Job:done() return C.dpl_load_job_done(self._c) ~= 0 end

-- Waits; raises the first failing file's error.
function Job:wait()
  dffi.check(C.dpl_load_job_wait(self._c), 2)
  return self
end

-- File i (1-based) as a CPU tensor; waits if needed; raises that file's error.
function Job:take(i)
  return T.new(C.dpl_load_job_take, self._c, i - 1)
end

function Job:take_all()
  self:wait()
  local out = {}
  for i = 1, self.n do out[i] = self:take(i) end
  return out
end

return M

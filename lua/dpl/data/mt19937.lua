-- MT19937 and numpy's legacy RandomState(seed).permutation(n), in pure LuaJIT, so seeded shuffles and subsets are
-- the ones the Python reference code draws (e.g. sklearn's train_test_split(random_state=42),
-- docs/benchmarks/superres.md).
--
--   local mt = require "dpl.data.mt19937"
--   local perm = mt.permutation(40504, 42)   -- a Lua list of 0-based indices, equal to RandomState(42).permutation(40504)
--
-- RandomState(seed) with an integer seed is init_genrand(seed); permutation(n) shuffles arange(n) in place with
-- Fisher-Yates from the end, drawing j in [0, i] by masked rejection sampling on 32-bit outputs (numpy's legacy
-- random_interval).
local bit = require "bit"
local band, bor, bxor, rshift, lshift = bit.band, bit.bor, bit.bxor, bit.rshift, bit.lshift
local M = {}

local N, MM = 624, 397
local MATRIX_A, UPPER, LOWER = 0x9908b0df, 0x80000000, 0x7fffffff

local function u32(x) return x % 4294967296 end   -- bit ops give signed 32-bit results; map to [0, 2^32)

local Gen = {}
Gen.__index = Gen

function M.new(seed)
  if type(seed) ~= "number" or seed < 0 or seed > 4294967295 or seed ~= math.floor(seed) then
    error("mt19937.new: seed must be an integer in 0 .. 2^32-1, got " .. tostring(seed), 2)
  end
  local mt = {[0] = seed}
  for i = 1, N - 1 do
    -- 1812433253 * (mt[i-1] ^ (mt[i-1] >> 30)) + i, modulo 2^32, without losing bits to doubles
    local x = u32(bxor(mt[i - 1], rshift(mt[i - 1], 30)))
    local hi, lo = math.floor(x / 65536), x % 65536
    mt[i] = u32((1812433253 * lo) % 4294967296 + ((1812433253 * hi) % 65536) * 65536 + i)
  end
  return setmetatable({mt = mt, i = N}, Gen)
end

local function twist(mt)
  for k = 0, N - 1 do
    local y = bor(band(mt[k], UPPER), band(mt[(k + 1) % N], LOWER))
    local v = bxor(mt[(k + MM) % N], rshift(y, 1))
    if band(y, 1) ~= 0 then v = bxor(v, MATRIX_A) end
    mt[k] = u32(v)
  end
end

-- the next 32-bit output, as a number in [0, 2^32)
function Gen:uint32()
  if self.i >= N then twist(self.mt); self.i = 0 end
  local y = self.mt[self.i]
  self.i = self.i + 1
  y = bxor(y, rshift(y, 11))
  y = bxor(y, band(lshift(y, 7), 0x9d2c5680))
  y = bxor(y, band(lshift(y, 15), 0xefc60000))
  y = bxor(y, rshift(y, 18))
  return u32(y)
end

-- uniform integer in [0, max] (max < 2^32), numpy's legacy random_interval
function Gen:interval(max)
  if max == 0 then return 0 end
  local mask = max
  mask = bor(mask, rshift(mask, 1)); mask = bor(mask, rshift(mask, 2)); mask = bor(mask, rshift(mask, 4))
  mask = bor(mask, rshift(mask, 8)); mask = bor(mask, rshift(mask, 16))
  while true do
    local v = u32(band(self:uint32(), mask))
    if v <= max then return v end
  end
end

-- RandomState(seed).permutation(n) as a Lua list of 0-based indices
function M.permutation(n, seed)
  local g = M.new(seed)
  local a = {}
  for i = 1, n do a[i] = i - 1 end
  for i = n - 1, 1, -1 do
    local j = g:interval(i)
    a[i + 1], a[j + 1] = a[j + 1], a[i + 1]
  end
  return a
end

-- The training part of sklearn's train_test_split(range(n), train_size=k, random_state=seed) (no stratify): the
-- last k entries of RandomState(seed).permutation(n), in that order (0-based).
function M.train_split(n, k, seed)
  if k > n or k < 1 then error(("mt19937.train_split: train_size %d for %d items"):format(k, n), 2) end
  local p = M.permutation(n, seed)
  local out = {}
  for i = n - k + 1, n do out[#out + 1] = p[i] end
  return out
end

return M

-- dpl.ops.args: checking the arguments the NN ops share (ops/conv.lua, ops/spatial.lua): integers, {h, w} pairs and
-- 4-d shapes, with errors that name the function and the argument.
local ffi = require "ffi"
local T = require "dpl.tensor"

local M = {}
local int64_4 = ffi.typeof("int64_t[4]")

function M.is_int(v) return type(v) == "number" and v == math.floor(v) end
local is_int = M.is_int

-- (h, w) from a number or an {h, w} pair; `default` for nil. The error points at the caller of the op's caller (the
-- op's user when the op calls this through its options parser).
function M.pair(fn, v, name, default)
  if v == nil then return default, default end
  if is_int(v) then return v, v end
  if type(v) == "table" and #v == 2 and is_int(v[1]) and is_int(v[2]) then return v[1], v[2] end
  error(("%s: %s must be an integer or a pair of integers {h, w}, got %s"):format(fn, name, tostring(v)), 4)
end

-- An options table: nil (-> {}) or a table whose keys are all in the list `keys`, else an error naming fn, the bad
-- key and the allowed ones, raised `level` frames above the caller of this function (default 1: its caller's caller).
function M.options(fn, opts, keys, level)
  level = (level or 1) + 2
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(("%s: options must be a table {%s = ...}, got %s"):format(fn, keys[1], type(opts)), level)
  end
  local allowed = {}
  for _, k in ipairs(keys) do allowed[k] = true end
  for k in pairs(opts) do
    if not allowed[k] then
      error(("%s: unknown option '%s' (%s)"):format(fn, tostring(k), table.concat(keys, ", ")), level)
    end
  end
  return opts
end

-- int64_t[4] from 4 sizes (a table, a Size or a tensor whose shape is meant); `forms` names what is expected
-- (default "{N, C, H, W}"). The error points at the caller of the function that calls this.
function M.shape4(fn, s, what, forms)
  if T.is_tensor(s) then s = s:size() end
  if type(s) ~= "table" or #s ~= 4 then
    error(("%s: %s must be 4 sizes %s"):format(fn, what, forms or "{N, C, H, W}"), 3)
  end
  local arr = int64_4()
  for i = 1, 4 do
    if not is_int(s[i]) then error(("%s: %s must hold integers"):format(fn, what), 3) end
    arr[i - 1] = s[i]
  end
  return arr
end

return M

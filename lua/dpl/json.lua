-- dpl.json: a small JSON encoder and decoder for results, configurations and --json outputs.
--
--   local json = require "dpl.json"
--   json.encode({arch = "alexnet", ["2afc"] = {mean = 0.7}})   -- keys sorted: the same table always gives the same text
--   json.encode(list, {indent = "  "})                          -- pretty-printed
--   json.decode('{"a": [1, 2]}')                                -- {a = {1, 2}}
--
-- Tables with keys 1..n (and nothing else) are arrays; an empty table is an object unless it carries json.array's
-- marker. Numbers are written with up to 17 significant digits (the shortest that reads back exactly); NaN and infinities, which
-- JSON cannot hold, are an error naming the key.
local M = {}

local ARRAY = setmetatable({}, {__mode = "k"})
-- marks a table as a JSON array (needed only for empty lists)
function M.array(t) t = t or {}; ARRAY[t] = true; return t end

local ESC = {['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r",
             ["\t"] = "\\t"}
local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return ESC[c] or ("\\u%04x"):format(c:byte()) end) .. '"'
end

local function is_array(t)
  if ARRAY[t] then return true end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n > 0 and n == #t
end

local function number(v, path)
  if v ~= v or v == math.huge or v == -math.huge then
    error(("json.encode: %s is %s, which JSON cannot represent"):format(path, tostring(v)), 0)
  end
  if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return ("%d"):format(v) end
  for _, f in ipairs {"%.15g", "%.16g"} do   -- the shortest of these that reads back as the same double
    local s = f:format(v)
    if tonumber(s) == v then return s end
  end
  return ("%.17g"):format(v)
end

-- the shortest decimal text that reads back as the same double ("%d" for integers); NaN/inf as Lua writes them
function M.number_text(v)
  if v ~= v or v == math.huge or v == -math.huge then return tostring(v) end
  return number(v, "")
end

-- A float32 result held in a double (a distance from a tensor's :tolist() or :item()) rounded to the shortest decimal
-- that reads back as the same float32: 0.10000001266598701 -> 0.1. Results written this way show the precision they
-- have. Non-numbers and NaN/inf pass through.
local f32 = require("ffi").new("float[1]")
local function to_f32(x) f32[0] = x; return f32[0] end
function M.float32(v)
  if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then return v end
  local target = to_f32(v)
  for digits = 1, 9 do
    local r = tonumber(("%." .. digits .. "g"):format(target))
    if to_f32(r) == target then return r end
  end
  return target
end

local function encode(v, indent, depth, path, seen)
  local tv = type(v)
  if tv == "nil" then return "null"
  elseif tv == "boolean" then return tostring(v)
  elseif tv == "number" then return number(v, path)
  elseif tv == "string" then return quote(v)
  elseif tv ~= "table" then error(("json.encode: %s has type %s"):format(path, tv), 0) end
  if seen[v] then error("json.encode: " .. path .. " is a cycle", 0) end
  seen[v] = true
  local nl = indent and "\n" .. indent:rep(depth + 1) or ""
  local close = indent and "\n" .. indent:rep(depth) or ""
  local sep = indent and ": " or ":"
  local parts = {}
  local out
  if is_array(v) then
    for i = 1, #v do parts[i] = encode(v[i], indent, depth + 1, path .. "[" .. i .. "]", seen) end
    out = #parts == 0 and "[]" or "[" .. nl .. table.concat(parts, "," .. nl) .. close .. "]"
  else
    local keys = {}
    for k in pairs(v) do
      if type(k) ~= "string" and type(k) ~= "number" then
        error(("json.encode: %s has a key of type %s"):format(path, type(k)), 0)
      end
      keys[#keys + 1] = tostring(k)
    end
    table.sort(keys)
    for i, k in ipairs(keys) do
      local val = v[k]
      if val == nil then val = v[tonumber(k)] end
      parts[i] = quote(k) .. sep .. encode(val, indent, depth + 1, path .. "." .. k, seen)
    end
    out = #parts == 0 and "{}" or "{" .. nl .. table.concat(parts, "," .. nl) .. close .. "}"
  end
  seen[v] = nil
  return out
end

-- opts.indent: a string to pretty-print with (default: compact)
function M.encode(v, opts)
  return encode(v, opts and opts.indent, 0, "value", {})
end

-- ---- decoding -----------------------------------------------------------------------------------------------------
local function decode_error(s, i, what)
  local line = select(2, s:sub(1, i):gsub("\n", "")) + 1
  error(("json.decode: %s at line %d (character %d)"):format(what, line, i), 0)
end

local function skip(s, i)
  return s:find("[^ \t\r\n]", i) or #s + 1
end

local parse

local function parse_string(s, i)
  local out, j = {}, i + 1
  while true do
    local c = s:sub(j, j)
    if c == "" then decode_error(s, i, "unterminated string") end
    if c == '"' then return table.concat(out), j + 1 end
    if c == "\\" then
      local e = s:sub(j + 1, j + 1)
      local map = {['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t"}
      if map[e] then out[#out + 1] = map[e]; j = j + 2
      elseif e == "u" then
        local hex = s:sub(j + 2, j + 5)
        if not hex:match("^%x%x%x%x$") then decode_error(s, j, "bad \\u escape") end
        local cp = tonumber(hex, 16)
        if cp < 0x80 then out[#out + 1] = string.char(cp)
        elseif cp < 0x800 then out[#out + 1] = string.char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64)
        else out[#out + 1] = string.char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64) end
        j = j + 6
      else decode_error(s, j, "bad escape") end
    else
      out[#out + 1] = c
      j = j + 1
    end
  end
end

parse = function(s, i)
  i = skip(s, i)
  local c = s:sub(i, i)
  if c == "{" then
    local obj = {}
    i = skip(s, i + 1)
    if s:sub(i, i) == "}" then return obj, i + 1 end
    while true do
      if s:sub(i, i) ~= '"' then decode_error(s, i, "expected a string key") end
      local k
      k, i = parse_string(s, i)
      i = skip(s, i)
      if s:sub(i, i) ~= ":" then decode_error(s, i, "expected ':'") end
      obj[k], i = parse(s, i + 1)
      i = skip(s, i)
      local d = s:sub(i, i)
      if d == "}" then return obj, i + 1 end
      if d ~= "," then decode_error(s, i, "expected ',' or '}'") end
      i = skip(s, i + 1)
    end
  elseif c == "[" then
    local arr = M.array({})
    i = skip(s, i + 1)
    if s:sub(i, i) == "]" then return arr, i + 1 end
    local n = 0
    while true do
      n = n + 1                  -- an explicit index: null leaves a hole
      arr[n], i = parse(s, i)
      i = skip(s, i)
      local d = s:sub(i, i)
      if d == "]" then return arr, i + 1 end
      if d ~= "," then decode_error(s, i, "expected ',' or ']'") end
      i = i + 1
    end
  elseif c == '"' then return parse_string(s, i)
  elseif s:sub(i, i + 3) == "true" then return true, i + 4
  elseif s:sub(i, i + 4) == "false" then return false, i + 5
  elseif s:sub(i, i + 3) == "null" then return nil, i + 4
  else
    local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", i)
    if not num or num == "" or not tonumber(num) then decode_error(s, i, "unexpected character '" .. c .. "'") end
    return tonumber(num), i + #num
  end
end

function M.decode(s)
  if type(s) ~= "string" then error("json.decode: expected a string, got " .. type(s), 2) end
  local v, i = parse(s, 1)
  i = skip(s, i)
  if i <= #s then decode_error(s, i, "trailing characters") end
  return v
end

return M

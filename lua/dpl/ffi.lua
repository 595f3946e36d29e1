-- dpl.ffi: the C runtime as seen from Lua. The declarations come from the real public header, runtime/include/dpl.h
-- (embedded in dplrun at build time, or read from disk when this library is used from a plain luajit), so the binding
-- cannot drift from the C API.
local ffi = require "ffi"

local M = {}

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function header_text()
  local embedded = package.loaded["dpl.cheader"]
  if type(embedded) == "string" then return embedded end
  -- outside dplrun: the header next to the source tree (lua/dpl/ffi.lua -> runtime/include/dpl.h) or installed
  local here = debug.getinfo(1, "S").source:match("^@(.*)/dpl/ffi%.lua$") or "."
  for _, p in ipairs { here .. "/../runtime/include/dpl.h", here .. "/../../../include/dpl.h", "/usr/local/include/dpl.h",
                       "/usr/include/dpl.h" } do
    local s = read_file(p)
    if s then return s end
  end
  error("dpl: cannot find dpl.h (run scripts with dplrun, or set it up with cmake --install)")
end

-- LuaJIT's cdef takes plain declarations: drop preprocessor lines.
local function strip_preprocessor(src)
  local out = {}
  for line in (src .. "\n"):gmatch("(.-)\n") do
    if not line:match("^%s*#") then out[#out + 1] = line end
  end
  return table.concat(out, "\n")
end

local header = strip_preprocessor(header_text())
ffi.cdef(header)

-- Inside dplrun the runtime is already linked into the process; elsewhere load libdpl.
local ok = pcall(function() return ffi.C.dpl_version end)
M.C = ok and ffi.C or ffi.load(os.getenv("DPL_LIBRARY") or "dpl")

local C = M.C

-- Raises the runtime's last error as a Lua error, at the caller's caller by default.
function M.raise(level)
  local msg = ffi.string(C.dpl_last_error())
  C.dpl_clear_error()
  error(msg ~= "" and msg or "dpl: unknown error", (level or 1) + 1)
end

function M.check(rc, level)
  if rc ~= 0 then M.raise((level or 1) + 1) end
end

-- The members of a C enum of dpl.h as a Lua table, so that op codes are defined once (in the header):
-- M.enum("dpl_unary_op") -> {neg = 0, exp = 1, ...} (names lower-cased without `prefix`, default "DPL_"; the
-- `_COUNT` sentinel is left out) and the list of names in declaration order.
local enums = {}
function M.enum(typename, prefix)
  local key = typename .. "|" .. (prefix or "")
  if enums[key] then return enums[key].map, enums[key].names end
  prefix = prefix or "DPL_"
  local body = header:match("typedef%s+enum%s+" .. typename .. "%s*(%b{})")
  if not body then error("dpl.ffi: dpl.h declares no enum " .. typename, 2) end
  body = body:sub(2, -2):gsub("/%*.-%*/", "")
  local map, names = {}, {}
  for entry in (body .. ","):gmatch("([^,]*),") do
    local cname = entry:match("^%s*([%a_][%w_]*)")
    if cname and not cname:match("_COUNT$") then
      if cname:sub(1, #prefix) ~= prefix then
        error(("dpl.ffi: %s member %s does not start with %s"):format(typename, cname, prefix), 2)
      end
      local name = cname:sub(#prefix + 1):lower()
      map[name] = tonumber(M.C[cname])
      names[#names + 1] = name
    end
  end
  enums[key] = {map = map, names = names}
  return map, names
end

return M

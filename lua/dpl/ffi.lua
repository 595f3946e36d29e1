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

ffi.cdef(strip_preprocessor(header_text()))

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

return M

-- dpl.sys.lib: loading a system library through LuaJIT's FFI, once, with one clear error when it is missing.
--   local sqlite = require("dpl.sys.lib").loader({"sqlite3", "libsqlite3.so.0"}, "libsqlite3", "libsqlite3-0")
--   sqlite().sqlite3_libversion()          -- loaded on the first call
local ffi = require "ffi"

local M = {}

-- A function returning the library: the first of `names` that ffi.load finds; otherwise an error naming the library
-- and the Debian package that installs it, raised at the caller of the function's caller (the user's call site).
function M.loader(names, what, package)
  local lib
  return function()
    if lib then return lib end
    for _, n in ipairs(names) do
      local ok, l = pcall(ffi.load, n)
      if ok then lib = l; return lib end
    end
    error(("%s is not installed (Debian: apt-get install %s)"):format(what, package), 3)
  end
end

return M

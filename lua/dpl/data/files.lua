-- Directory listings, the data root, and the "dataset missing" errors shared by the dataset modules.
local ffi = require "ffi"
local dffi = require "dpl.ffi"
local C = dffi.C

local M = {}

-- Sorted entries of a directory: files, dirs (names without the trailing '/'). nil, message when it is unreadable.
function M.list(dir)
  local need = C.dpl_dir_list(dir, nil, 0)
  if need < 0 then
    local msg = ffi.string(C.dpl_last_error())
    C.dpl_clear_error()
    return nil, msg
  end
  local buf = ffi.new("char[?]", math.max(tonumber(need), 1))
  local got = C.dpl_dir_list(dir, buf, need)
  if got ~= need then return nil, dir .. ": the directory changed while it was being listed" end
  local files, dirs = {}, {}
  for name in ffi.string(buf, need):gmatch("([^\n]+)\n") do
    if name:sub(-1) == "/" then dirs[#dirs + 1] = name:sub(1, -2) else files[#files + 1] = name end
  end
  return files, dirs
end

function M.is_dir(path)
  return C.dpl_dir_list(path, nil, 0) >= 0 or (C.dpl_clear_error() and false)
end

function M.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return M.is_dir(path)
end

-- Creates a folder and its parents (mkdir -p); true when it is there afterwards.
function M.mkdir(path)
  os.execute("mkdir -p '" .. path:gsub("'", "'\\''") .. "'")
  return M.is_dir(path)
end

-- Where datasets live: $DPL_DATA, else ./data (the repository's data/ when run from its root).
function M.data_root()
  return os.getenv("DPL_DATA") or "data"
end

-- The error for a missing or malformed dataset: what was expected, where, and the command that fetches it.
function M.missing(dataset, fetch_name, what, where, level)
  error(("%s: expected %s at %s, which is missing or malformed. Download it with:  dplrun data/fetch.lua %s  (into "
    .. "$DPL_DATA or ./data), or pass the right root."):format(dataset, what, where, fetch_name), (level or 1) + 1)
end

-- Files of a directory with one of the given extensions (lower-case, without the dot), as {stem -> name}, and the
-- sorted stems.
function M.by_stem(dir, exts)
  local files, err = M.list(dir)
  if not files then return nil, err end
  local want = {}
  for _, e in ipairs(exts) do want[e] = true end
  local map, stems = {}, {}
  for _, name in ipairs(files) do
    local stem, ext = name:match("^(.*)%.([^.]+)$")
    if stem and want[ext:lower()] and not map[stem] then
      map[stem] = name
      stems[#stems + 1] = stem
    end
  end
  table.sort(stems)
  return map, stems
end

return M

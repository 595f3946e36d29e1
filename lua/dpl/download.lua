-- dpl.download: downloads that survive dead links, interruptions and bad copies (see docs/data-sources.md).
--   download.fetch({url1, url2, ...}, dest, {sha256 = ..., bytes = ...})
-- tries the locations in order (the official one first, byte-identical mirrors after) with a progress bar and a
-- clear line per location that fails; keeps dest .. ".part" between attempts and continues it with a Range request
-- (also from the next location); refuses and deletes a copy whose size or SHA-256 differs from what is expected;
-- moves the verified file into place atomically, so a failure never leaves anything under the final name; and
-- records the file's SHA-256 in SHA256SUMS beside it (sha256sum format), so a later corrupt copy or a changed
-- upstream file is detected even where the publisher gives no checksum. download.head(url) asks for headers only.
-- libcurl and libcrypto come through lua/dpl/sys/.
local ffi = require "ffi"
local curl = require "dpl.sys.curl"
local crypto = require "dpl.sys.crypto"
local progress = require "dpl.progress"

pcall(ffi.cdef, [[
char *realpath(const char *path, char *resolved);
void free(void *p);
]])

local M = {}

M.sha256 = crypto.sha256_file   -- hex SHA-256 of a file

function M.file_size(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local n = f:seek("end")
  f:close()
  return n
end

-- an absolute path (the directory must exist); the path itself when it cannot be resolved
function M.absolute(path)
  local dir, base = path:match("^(.*)/([^/]*)$")
  if not dir then dir, base = ".", path end
  if dir == "" then dir = "/" end
  local r = ffi.C.realpath(dir, nil)
  if r == nil then return path end
  local s = ffi.string(r)
  ffi.C.free(r)
  return (s == "/" and "" or s) .. "/" .. base
end

-- "244,408,911"
function M.thousands(n)
  local s = ("%d"):format(n)
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end

-- The byte range a file may have: exact `bytes`, or torchvision's size in MiB rounded to 3 decimals (`mib`).
-- nil when nothing is known.
function M.size_range(e)
  if e.bytes then return e.bytes, e.bytes end
  if e.mib then
    local centre = e.mib * 1048576
    return math.floor(centre - 600), math.ceil(centre + 600)
  end
end

-- what is expected of a file, for messages: "SHA-256 7be5...ee02, 244,408,911 bytes"
function M.expected_text(e)
  local parts = {}
  local sha = e.sha256 or e.recorded_sha256
  if sha then parts[#parts + 1] = "SHA-256 " .. sha
  elseif e.sha256_prefix then parts[#parts + 1] = "SHA-256 starting with " .. e.sha256_prefix end
  if e.bytes then parts[#parts + 1] = M.thousands(e.bytes) .. " bytes"
  elseif e.mib then parts[#parts + 1] = ("about %s bytes"):format(M.thousands(math.floor(e.mib * 1048576 + 0.5)))
  elseif e.approx_bytes then parts[#parts + 1] = "about " .. progress.human(e.approx_bytes, "B") end
  return table.concat(parts, ", ")
end

-- ---- SHA256SUMS beside the data ------------------------------------------------------------------------------------
local function split(path)
  local dir, base = path:match("^(.*)/([^/]*)$")
  if not dir then return ".", path end
  return dir == "" and "/" or dir, base
end

local function read_sums(file)
  local sums, order = {}, {}
  local f = io.open(file)
  if not f then return sums, order end
  for line in f:lines() do
    local hex, name = line:match("^(%x+)  %*?(.+)$")
    if hex and #hex == 64 then
      if not sums[name] then order[#order + 1] = name end
      sums[name] = hex:lower()
    end
  end
  f:close()
  return sums, order
end

-- the SHA-256 recorded for `path` when it was downloaded, or nil
function M.recorded(path)
  local dir, base = split(path)
  return (read_sums(dir .. "/SHA256SUMS"))[base]
end

-- records (or replaces) the SHA-256 of `path` in SHA256SUMS in its folder (written to a temporary file, then renamed)
function M.record(path, hex)
  local dir, base = split(path)
  local file = dir .. "/SHA256SUMS"
  local sums, order = read_sums(file)
  if not sums[base] then order[#order + 1] = base end
  sums[base] = hex
  local tmp = file .. ".tmp"
  local f = io.open(tmp, "w")
  if not f then return false end
  for _, name in ipairs(order) do f:write(sums[name], "  ", name, "\n") end
  f:close()
  return os.rename(tmp, file)
end

-- ---- state of a file on disk ---------------------------------------------------------------------------------------
-- "ok" (present, and the size fits when it is known), "missing", "empty", "partial" (smaller than expected: a copy
-- interrupted outside dpl) or "wrong size"; and the size
function M.status(path, e)
  local size = M.file_size(path)
  if not size then return "missing" end
  if size == 0 then return "empty", 0 end
  local lo, hi = M.size_range(e or {})
  if lo and size < lo then return "partial", size end
  if hi and size > hi then return "wrong size", size end
  return "ok", size
end

-- Checks a complete file against the expectation; nil when it fits, else the reason (naming the file and the
-- expected value; `name`, default the file name of `path`). Computes the SHA-256 only when there is one to compare
-- with, and returns it.
function M.verify(path, e, name)
  name = name or path:match("[^/]*$")
  local size = M.file_size(path) or 0
  local lo, hi = M.size_range(e)
  if lo and (size < lo or size > hi) then
    return ("%s is %s bytes, expected %s"):format(name, M.thousands(size), M.expected_text({bytes = e.bytes, mib = e.mib}))
  end
  local want = e.sha256 or e.recorded_sha256 or e.sha256_prefix
  if not want then return nil end
  local digest = M.sha256(path)
  want = want:lower()
  if digest:sub(1, #want) ~= want then
    local what = e.sha256 and "the expected" or e.recorded_sha256 and "the one recorded in SHA256SUMS when it was first "
      .. "downloaded (if the publisher changed the file, delete that line and rerun):" or "the expected prefix"
    return ("the SHA-256 of %s is %s, not %s %s"):format(name, digest, what, want), digest
  end
  return nil, digest
end

-- ---- URLs ----------------------------------------------------------------------------------------------------------
-- url with its scheme and host replaced by `base` ("http://host:port"): a mirror with the same paths
function M.rebase(url, base)
  if not base then return url end
  return base:gsub("/$", "") .. (url:match("^%a+://[^/]+(/.*)$") or "/" .. url)
end

-- where torchvision caches checkpoints: $TORCH_HOME/hub/checkpoints (default ~/.cache/torch, or
-- $XDG_CACHE_HOME/torch), as torch.hub.get_dir does
function M.torch_hub_dir()
  local home = os.getenv("TORCH_HOME")
  if not home or home == "" then
    local xdg = os.getenv("XDG_CACHE_HOME")
    home = ((xdg and xdg ~= "") and xdg or ((os.getenv("HOME") or ".") .. "/.cache")) .. "/torch"
  end
  return home .. "/hub/checkpoints"
end

-- ---- transfers -----------------------------------------------------------------------------------------------------
local function setopt(h, option, value)
  local C = curl.lib()
  if type(value) == "number" then value = ffi.cast("long", value) end
  return C.curl_easy_setopt(h, option, value)
end

local function common_options(h, url)
  local o = curl.opt
  setopt(h, o.URL, url)
  setopt(h, o.FOLLOWLOCATION, 1)
  setopt(h, o.MAXREDIRS, 10)
  setopt(h, o.FAILONERROR, 1)
  setopt(h, o.USERAGENT, "dpl/" .. (require("dpl").version))
  setopt(h, o.CONNECTTIMEOUT, 30)
end

local function info_long(h, what)
  local v = ffi.new("long[1]")
  curl.lib().curl_easy_getinfo(h, what, v)
  return tonumber(v[0])
end

-- One GET into `part`, appending from `offset`. `expect` (fresh downloads only) is the exact size the file must have:
-- a server announcing another size is cut off at once. Returns {ok, code (HTTP), err (text), curlcode, announced}.
local function transfer(url, part, offset, bar, expect)
  local C = curl.lib()
  local h = C.curl_easy_init()
  if h == nil then error("download: curl_easy_init failed", 3) end
  local fp = ffi.C.fopen(part, offset > 0 and "ab" or "wb")
  if fp == nil then
    C.curl_easy_cleanup(h)
    error("download: cannot write " .. part, 3)
  end
  local announced
  local cb = ffi.cast(curl.XFERINFO, function(_, dltotal, dlnow)
    if dltotal > 0 and not announced then
      announced = tonumber(dltotal) + offset
      if expect and offset == 0 and announced ~= expect then return 1 end   -- another file: do not fetch it
      if bar and not bar.total then bar.total = announced end
    end
    if bar then bar:set(offset + tonumber(dlnow)) end
    return 0
  end)
  local o = curl.opt
  common_options(h, url)
  setopt(h, o.WRITEDATA, fp)
  setopt(h, o.LOW_SPEED_LIMIT, 1)
  setopt(h, o.LOW_SPEED_TIME, 60)
  C.curl_easy_setopt(h, o.RESUME_FROM_LARGE, ffi.cast("int64_t", offset))
  setopt(h, o.NOPROGRESS, 0)
  C.curl_easy_setopt(h, o.XFERINFOFUNCTION, cb)
  local rc = C.curl_easy_perform(h)
  local code = info_long(h, curl.info.RESPONSE_CODE)
  ffi.C.fclose(fp)
  C.curl_easy_cleanup(h)
  cb:free()
  local r = {ok = rc == 0, code = code, curlcode = rc, announced = announced}
  if rc == curl.code.ABORTED_BY_CALLBACK and announced then
    r.wrong_size = ("the server announces %s bytes, expected %s"):format(M.thousands(announced), M.thousands(expect))
  elseif rc ~= 0 then
    r.err = curl.strerror(rc)
  end
  return r
end
transfer = jit.off(transfer) or transfer   -- Lua callbacks from C need the interpreter here

-- Headers only (a HEAD request, following redirects): {ok, code, bytes (Content-Length, or nil), err}.
function M.head(url, timeout)
  local C = curl.lib()
  local h = C.curl_easy_init()
  if h == nil then error("download: curl_easy_init failed", 2) end
  common_options(h, url)
  setopt(h, curl.opt.NOBODY, 1)
  setopt(h, curl.opt.TIMEOUT, timeout or 60)
  local rc = C.curl_easy_perform(h)
  local code = info_long(h, curl.info.RESPONSE_CODE)
  local len = ffi.new("int64_t[1]", -1)
  C.curl_easy_getinfo(h, curl.info.CONTENT_LENGTH_DOWNLOAD_T, len)
  C.curl_easy_cleanup(h)
  local bytes = tonumber(len[0])
  return {ok = rc == 0, code = code, bytes = bytes >= 0 and bytes or nil, err = rc ~= 0 and curl.strerror(rc) or nil}
end

-- Asks a location for its headers and compares the size it announces with what the file must be (exact `bytes`,
-- torchvision's `mib`, or the publisher's rounded `approx_bytes`, taken as -25%/+33%). Returns a verdict: "ok",
-- "answers" (up, nothing to compare), "WRONG SIZE" or "FAIL"; a text (size, HTTP status or network error); and
-- whether the location is usable.
function M.check(url, e, timeout)
  local r = M.head(url, timeout or 30)
  if not r.ok then return "FAIL", r.code and r.code >= 400 and ("HTTP " .. r.code) or r.err, false end
  if not r.bytes then return "answers", "no size given", true end
  local text = M.thousands(r.bytes) .. " bytes"
  local lo, hi = M.size_range(e)
  local ok
  if lo then ok = r.bytes >= lo and r.bytes <= hi
  elseif e.approx_bytes then
    local ratio = r.bytes / e.approx_bytes
    ok = ratio > 0.75 and ratio < 1.34
    if ok then text = text .. ", about the expected" end
  else
    return "answers", text, true
  end
  return ok and "ok" or "WRONG SIZE", text, ok
end

local function reason_of(r)
  if r.wrong_size then return r.wrong_size end
  if r.code and r.code >= 400 then return ("HTTP %d"):format(r.code) end
  return r.err or "failed"
end

-- Downloads the first location that serves the expected file to dest and returns dest and {url, sha256, bytes}.
-- locations: a URL or a list of URLs, tried in order. opts: sha256 (full hex) or sha256_prefix, bytes (exact size)
-- or mib (torchvision's size in MiB), label (for the bar and the messages), quiet (no bar), log (function for the
-- per-location lines; default stderr), record = false (no SHA256SUMS: temporary files).
-- Raises one line naming every location tried, where to put the file by hand and what it must be.
function M.fetch(locations, dest, opts)
  opts = opts or {}
  if type(locations) == "string" then locations = {locations} end
  local name = opts.label or dest:match("[^/]*$")
  local log = opts.log or function(msg) io.stderr:write(msg, "\n") end
  local expect = {sha256 = opts.sha256, sha256_prefix = opts.sha256_prefix, bytes = opts.bytes, mib = opts.mib}
  if not expect.sha256 and opts.record ~= false then expect.recorded_sha256 = M.recorded(dest) end
  local part = dest .. ".part"
  local lo, hi = M.size_range(expect)
  if hi and (M.file_size(part) or 0) > hi then os.remove(part) end   -- longer than the file can be: not a partial copy
  local tried = {}
  for k, url in ipairs(locations) do
    if k > 1 then log(("%s: trying %s (location %d of %d)"):format(name, url, k, #locations)) end
    local offset = M.file_size(part) or 0
    local bar = not opts.quiet and progress.new({label = name, unit = "B", start = offset, total = lo == hi and lo or nil})
      or nil
    local r = transfer(url, part, offset, bar, lo == hi and lo or nil)
    if offset > 0 and (r.curlcode == curl.code.RANGE_ERROR or (r.ok and r.code == 200)) then
      -- the server ignores Range requests: start again from the first byte
      os.remove(part)
      if bar then bar.done, bar.start_done, bar.total = 0, 0, nil end
      r = transfer(url, part, 0, bar, lo == hi and lo or nil)
    elseif offset > 0 and r.code == 416 then
      r.ok = true   -- nothing left to send: the partial copy is complete (or too long, which verification catches)
    end
    if bar then bar:finish() end
    local problem, digest
    if r.ok then
      problem, digest = M.verify(part, expect, dest:match("[^/]*$"))
      if problem then os.remove(part) end   -- a wrong copy is never kept or resumed
    else
      problem = reason_of(r)
      if r.wrong_size or (M.file_size(part) or 0) == 0 then os.remove(part) end
    end
    if not problem then
      digest = digest or M.sha256(part)
      local size = M.file_size(part)
      local okr, e = os.rename(part, dest)
      if not okr then error(("download: cannot move %s to %s: %s"):format(part, dest, tostring(e)), 2) end
      if opts.record ~= false then M.record(dest, digest) end
      return dest, {url = url, sha256 = digest, bytes = size}
    end
    tried[#tried + 1] = url .. ": " .. problem
    log(("%s: %s: %s%s"):format(name, url, problem, k < #locations and "; trying the next location" or ""))
  end
  local kept = M.file_size(part)
  local wanted = M.expected_text(expect)
  error(("could not download %s (%s). Put the file there by hand: %s%s%s"):format(name, table.concat(tried, "; "),
    M.absolute(dest), wanted ~= "" and " (" .. wanted .. ")" or "",
    kept and kept > 0 and ("; or run the same command again to resume (%s bytes are kept in %s)"):format(
      M.thousands(kept), part:match("[^/]*$")) or "; or run the same command again to retry"), 0)
end

return M

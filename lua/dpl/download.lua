-- dpl.download: HTTP(S) downloads through libcurl (loaded with LuaJIT's FFI), with a progress bar, resumption of
-- partial downloads (FILE.part is kept and continued with a Range request), SHA-256 verification through OpenSSL's
-- libcrypto, and an atomic rename into place, so a killed download never leaves a file that looks complete.
local ffi = require "ffi"
local progress = require "dpl.progress"

pcall(ffi.cdef, [[
typedef void CURL;
CURL *curl_easy_init(void);
int curl_easy_setopt(CURL *curl, int option, ...);
int curl_easy_perform(CURL *curl);
void curl_easy_cleanup(CURL *curl);
const char *curl_easy_strerror(int code);
int curl_easy_getinfo(CURL *curl, int info, ...);
typedef struct FILE FILE;
FILE *fopen(const char *path, const char *mode);
int fclose(FILE *f);
]])

local M = {}

local curl = require("dpl.sys.lib").loader({"curl", "libcurl.so.4"}, "libcurl", "libcurl4")

-- hex SHA-256 of a file
M.sha256 = require("dpl.sys.crypto").sha256_file

local function file_size(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local n = f:seek("end")
  f:close()
  return n
end
M.file_size = file_size

local CURLOPT_URL, CURLOPT_WRITEDATA, CURLOPT_FOLLOWLOCATION = 10002, 10001, 52
local CURLOPT_RESUME_FROM_LARGE, CURLOPT_NOPROGRESS, CURLOPT_XFERINFOFUNCTION = 30116, 43, 20219
local CURLOPT_FAILONERROR, CURLOPT_USERAGENT, CURLOPT_CONNECTTIMEOUT = 45, 10018, 78
local CURLOPT_LOW_SPEED_LIMIT, CURLOPT_LOW_SPEED_TIME = 19, 20
local CURLINFO_RESPONSE_CODE = 0x200002

-- one transfer into `part` (appending from `offset`); returns ok, http code, curl error text
local function transfer(url, part, offset, bar)
  local C = curl()
  local h = C.curl_easy_init()
  if h == nil then error("download: curl_easy_init failed", 3) end
  local fp = ffi.C.fopen(part, offset > 0 and "ab" or "wb")
  if fp == nil then
    C.curl_easy_cleanup(h)
    error("download: cannot write " .. part, 3)
  end
  local cb = ffi.cast("int (*)(void *, int64_t, int64_t, int64_t, int64_t)", function(_, dltotal, dlnow)
    if bar then
      if not bar.total and dltotal > 0 then bar.total = tonumber(dltotal) + offset end
      bar:set(offset + tonumber(dlnow))
    end
    return 0
  end)
  C.curl_easy_setopt(h, CURLOPT_URL, url)
  C.curl_easy_setopt(h, CURLOPT_WRITEDATA, fp)
  C.curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, ffi.cast("long", 1))
  C.curl_easy_setopt(h, CURLOPT_FAILONERROR, ffi.cast("long", 1))
  C.curl_easy_setopt(h, CURLOPT_USERAGENT, "dpl/" .. (require("dpl").version))
  C.curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, ffi.cast("long", 30))
  C.curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, ffi.cast("long", 1))
  C.curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, ffi.cast("long", 60))
  C.curl_easy_setopt(h, CURLOPT_RESUME_FROM_LARGE, ffi.cast("int64_t", offset))
  C.curl_easy_setopt(h, CURLOPT_NOPROGRESS, ffi.cast("long", 0))
  C.curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, cb)
  local rc = C.curl_easy_perform(h)
  local code = ffi.new("long[1]")
  C.curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, code)
  ffi.C.fclose(fp)
  C.curl_easy_cleanup(h)
  cb:free()
  return rc == 0, tonumber(code[0]), rc ~= 0 and ffi.string(C.curl_easy_strerror(rc)) or nil
end
transfer = jit.off(transfer) or transfer   -- Lua callbacks from C need the interpreter here

-- Downloads url to dest. opts: sha256 (full hex) or sha256_prefix (hex prefix) to verify, label for the bar,
-- quiet. Keeps dest .. ".part" between attempts and resumes it. Returns dest.
function M.fetch(url, dest, opts)
  opts = opts or {}
  local part = dest .. ".part"
  local offset = file_size(part) or 0
  local bar = not opts.quiet and progress.new({label = opts.label or dest:match("[^/]*$"), unit = "B", start = offset}) or nil
  local ok, code, err = transfer(url, part, offset, bar)
  if ok and offset > 0 and code == 200 then
    -- the server ignored the range request and sent the whole file after the bytes we had: start again
    os.remove(part)
    if bar then bar.done, bar.start_done, bar.total = 0, 0, nil end
    ok, code, err = transfer(url, part, 0, bar)
  end
  if code == 416 and offset > 0 then
    -- the part file is already complete (or longer than the file): verify it as it is
    ok = true
  end
  if bar then bar:finish() end
  if not ok then
    error(("download of %s failed: %s (HTTP %s); run the same command again to resume"):format(url,
      err or "error", tostring(code)), 2)
  end
  if opts.sha256 or opts.sha256_prefix then
    local digest = M.sha256(part)
    local want = (opts.sha256 or opts.sha256_prefix):lower()
    if digest:sub(1, #want) ~= want then
      os.remove(part)
      error(("download of %s: SHA-256 %s does not match the expected %s; the partial file was removed, try again")
        :format(url, digest, want), 2)
    end
  end
  local okr, e = os.rename(part, dest)
  if not okr then error("download: cannot move " .. part .. " to " .. dest .. ": " .. tostring(e), 2) end
  return dest
end

return M

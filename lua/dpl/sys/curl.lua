-- dpl.sys.curl: libcurl's easy interface through LuaJIT's FFI: the declarations, the option and info numbers dpl
-- uses, and the library loaded on first use (libcurl.so.4, else the GnuTLS or NSS builds Debian also ships).
-- lua/dpl/download.lua builds downloads and header-only checks on it.
local ffi = require "ffi"

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

-- CURLOPT_* numbers (curl/curl.h: LONG options count from 0, OBJECTPOINT from 10000, FUNCTIONPOINT from 20000,
-- OFF_T from 30000)
M.opt = {
  WRITEDATA = 10001, URL = 10002, USERAGENT = 10018,
  LOW_SPEED_LIMIT = 19, LOW_SPEED_TIME = 20, NOPROGRESS = 43, NOBODY = 44, FAILONERROR = 45, FOLLOWLOCATION = 52,
  MAXREDIRS = 68, CONNECTTIMEOUT = 78, TIMEOUT = 13,
  XFERINFOFUNCTION = 20219,
  RESUME_FROM_LARGE = 30116,
}
-- CURLINFO_* numbers (LONG = 0x200000, OFF_T = 0x600000, STRING = 0x100000)
M.info = {RESPONSE_CODE = 0x200002, CONTENT_LENGTH_DOWNLOAD_T = 0x60000F}
-- CURLcode values dpl reacts to
M.code = {OK = 0, HTTP_RETURNED_ERROR = 22, RANGE_ERROR = 33, ABORTED_BY_CALLBACK = 42}

-- the signature of CURLOPT_XFERINFOFUNCTION's callback (clientp, dltotal, dlnow, ultotal, ulnow)
M.XFERINFO = "int (*)(void *, int64_t, int64_t, int64_t, int64_t)"

-- The loaded library (on first use); a clear error naming the Debian package when none of the names loads.
M.lib = require("dpl.sys.lib").loader({"curl", "libcurl.so.4", "libcurl-gnutls.so.4", "libcurl-nss.so.4"}, "libcurl",
                                      "libcurl4")

-- curl_easy_strerror as a Lua string
function M.strerror(code) return ffi.string(M.lib().curl_easy_strerror(code)) end

return M

-- dpl.sys.crypto: SHA-256 through OpenSSL's libcrypto (loaded on first use), of a string or of a file.
--   local crypto = require "dpl.sys.crypto"
--   crypto.sha256_string("abc"), crypto.sha256_file("weights/alexnet-owt-7be5be79.pth")   -- lower-case hex
local ffi = require "ffi"

pcall(ffi.cdef, [[
typedef struct EVP_MD_CTX EVP_MD_CTX;
typedef struct EVP_MD EVP_MD;
EVP_MD_CTX *EVP_MD_CTX_new(void);
void EVP_MD_CTX_free(EVP_MD_CTX *ctx);
const EVP_MD *EVP_sha256(void);
int EVP_DigestInit_ex(EVP_MD_CTX *ctx, const EVP_MD *type, void *engine);
int EVP_DigestUpdate(EVP_MD_CTX *ctx, const void *d, size_t cnt);
int EVP_DigestFinal_ex(EVP_MD_CTX *ctx, unsigned char *md, unsigned int *s);
]])

local M = {}
M.lib = require("dpl.sys.lib").loader({"crypto", "libcrypto.so.3"}, "OpenSSL's libcrypto", "libssl3")

-- the digest of the chunks `next_chunk()` returns until nil, as hex
local function digest(next_chunk)
  local C = M.lib()
  local ctx = C.EVP_MD_CTX_new()
  C.EVP_DigestInit_ex(ctx, C.EVP_sha256(), nil)
  for chunk in next_chunk do C.EVP_DigestUpdate(ctx, chunk, #chunk) end
  local md, n = ffi.new("unsigned char[32]"), ffi.new("unsigned int[1]")
  C.EVP_DigestFinal_ex(ctx, md, n)
  C.EVP_MD_CTX_free(ctx)
  local hex = {}
  for i = 0, 31 do hex[#hex + 1] = ("%02x"):format(md[i]) end
  return table.concat(hex)
end

function M.sha256_string(s)
  local done = false
  return digest(function() if done then return nil end done = true return s end)
end

function M.sha256_file(path)
  local f = io.open(path, "rb")
  if not f then error("sha256: cannot open " .. path, 2) end
  local ok, hex = pcall(digest, function() return f:read(1048576) end)
  f:close()
  if not ok then error(hex, 0) end
  return hex
end

return M

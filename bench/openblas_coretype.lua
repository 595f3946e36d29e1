-- bench/openblas_coretype.lua - OpenBLAS sgemm speed and correctness under several OPENBLAS_CORETYPE values.
--
--   dplrun bench/openblas_coretype.lua [--types default,Haswell,SkylakeX] [--n 2048]
--
-- OpenBLAS (DYNAMIC_ARCH builds, as Debian's) picks its kernels from the CPU model when the library loads, and falls
-- back to the slowest ("Prescott") for a model it does not know; OPENBLAS_CORETYPE, read at load time, forces a
-- choice. So each type runs in a fresh dplrun process (this script again, with --child) with the variable set; this
-- process's own environment is not changed. Each child checks cblas_sgemm against a double-precision triple loop on
-- odd sizes and all four transpose combinations, then times n x n x n.
local argparse = require "argparse"
local ffi = require "ffi"
local bench = require "dpl.bench"

local parser = argparse("dplrun bench/openblas_coretype.lua", "OpenBLAS sgemm under several OPENBLAS_CORETYPE values.")
parser:option("--types", "Core types to try ('default': the variable unset).", "default,Haswell,SkylakeX")
parser:option("--n", "Size of the timed square product.", "2048")
parser:option("--reps", "Timed runs (the best is shown).", "5")
parser:flag("--child", "(internal) measure in this process")
local args = parser:parse(arg)

pcall(ffi.cdef, [[
void cblas_sgemm(int order, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc);
char *openblas_get_corename(void);
int openblas_get_num_threads(void);
int getpid(void);
]])

if args.child then
  local ok = pcall(function() return ffi.C.cblas_sgemm end)
  local blas = ok and ffi.C or ffi.load("openblas")
  -- correctness: C = 1.5 op(A) op(B) + 0.5 C against a double-precision reference, relative to 1 + |ref|
  local worst = 0
  local seed = 12345
  local function rnd() seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 - 0.5 end
  for _, s in ipairs {{257, 131, 199}, {64, 64, 64}, {1000, 3, 517}, {33, 1025, 65}, {1, 1, 1}} do
    local m, n, k = s[1], s[2], s[3]
    for ta = 0, 1 do
      for tb = 0, 1 do
        local A, B, C = ffi.new("float[?]", m * k), ffi.new("float[?]", k * n), ffi.new("float[?]", m * n)
        for i = 0, m * k - 1 do A[i] = rnd() end
        for i = 0, k * n - 1 do B[i] = rnd() end
        for i = 0, m * n - 1 do C[i] = 1 end
        local lda, ldb = ta == 1 and m or k, tb == 1 and k or n
        blas.cblas_sgemm(101, ta == 1 and 112 or 111, tb == 1 and 112 or 111, m, n, k, 1.5, A, lda, B, ldb, 0.5, C, n)
        for i = 0, m - 1 do
          for j = 0, n - 1 do
            local acc = 0
            for p = 0, k - 1 do
              local a = ta == 1 and A[p * m + i] or A[i * k + p]
              local b = tb == 1 and B[j * k + p] or B[p * n + j]
              acc = acc + a * b
            end
            local ref = 1.5 * acc + 0.5
            local e = math.abs(ref - C[i * n + j]) / (1 + math.abs(ref))
            if e > worst then worst = e end
          end
        end
      end
    end
  end
  local n = tonumber(args.n)
  local A, B, C = ffi.new("float[?]", n * n), ffi.new("float[?]", n * n), ffi.new("float[?]", n * n)
  for i = 0, n * n - 1 do A[i] = rnd(); B[i] = rnd() end
  local r = bench.measure(function()
    blas.cblas_sgemm(101, 111, 111, n, n, n, 1, A, n, B, n, 0, C, n)
  end, {reps = tonumber(args.reps)})
  print(("%s\t%d\t%.3g\t%.1f"):format(ffi.string(blas.openblas_get_corename()), blas.openblas_get_num_threads(),
                                      worst, bench.gflops(2 * n ^ 3, r.best)))
  os.exit(0)
end

-- parent: one child per type
local exe = io.popen("readlink /proc/" .. ffi.C.getpid() .. "/exe"):read("*l")
local script = arg[0]
local rows = {}
for _, ct in ipairs(bench.word_list(args.types)) do
  local env = ct == "default" and "env -u OPENBLAS_CORETYPE" or ("env OPENBLAS_CORETYPE=%s"):format(ct)
  local cmd = ("%s DPL_QUIET=1 '%s' '%s' --child --n %s --reps %s 2>&1"):format(env, exe, script, args.n, args.reps)
  local p = io.popen(cmd)
  local out = p:read("*a")
  p:close()
  local core, threads, err, gflops = out:match("([^\t\n]+)\t(%d+)\t(%S+)\t(%S+)")
  if core then
    rows[#rows + 1] = {ct, core, threads, err, gflops, tonumber(err) < 1e-4 and "ok" or "WRONG"}
  else
    rows[#rows + 1] = {ct, "failed: " .. out:gsub("\n", " "):sub(1, 60), "", "", "", ""}
  end
end
print(("OpenBLAS sgemm, %s x %s x %s, best of %s (wall clock):"):format(args.n, args.n, args.n, args.reps))
bench.print_table({"OPENBLAS_CORETYPE", "core used", "threads", "max rel. error", "GFLOP/s", "check"}, rows)
print("max rel. error: |sgemm - double reference| / (1 + |reference|) over odd sizes and all transposes")

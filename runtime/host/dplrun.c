/* dplrun.c - the host program: `dplrun [options] script.lua [args...]` runs a Lua script under LuaJIT with the dpl
 * Lua library on package.path, `arg` set as the luajit command line does, and a stack trace plus a non-zero exit
 * status on error. SIGINT (Ctrl-C) and SIGTERM (what SLURM sends before its time limit) stop the script cleanly:
 * see "Signals" below and lua/dpl/signal.lua. */
#define _GNU_SOURCE   /* RTLD_DEFAULT */
#include "dpl.h"
#include "dpl_header_text.h"
#include <dlfcn.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <luajit.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

static void usage(FILE *f) {
  fprintf(f,
          "usage: dplrun [options] script.lua [args...]\n"
          "\n"
          "Runs a dpl Lua script (deep perceptual loss experiments on Vulkan or CPU).\n"
          "\n"
          "options:\n"
          "  --device D   cpu, vulkan or vulkan:N (default: $DPL_DEVICE, else the first GPU, else cpu)\n"
          "  --precision P  fp32 (default) or fp16: the Vulkan GPU kernels (tiled family) stage their tiles in float16\n"
          "               where the device has shaderFloat16, accumulating in float32 (docs/vulkan.md); sets DPL_PRECISION\n"
          "  --quiet      do not print the device banner\n"
          "  --devices    list the Vulkan devices and the CPU, one line each, and exit\n"
          "  --version    print the version and exit\n"
          "  --help       print this help and exit\n"
          "\n"
          "environment: DPL_DEVICE, DPL_VALIDATION=1 (Khronos validation layer), DPL_NO_VULKAN=1, DPL_CACHE_DIR,\n"
          "  OPENBLAS_CORETYPE (default: chosen from the CPU's AVX-512/AVX2 support when OpenBLAS does not know it)\n"
          "Every script accepts --help for its own options.\n"
          "\n"
          "SIGINT (Ctrl-C) or SIGTERM stops the script cleanly (open transactions rolled back, claims released) and\n"
          "exits 130 or 143; scripts that resume say \"rerun the same command to resume\"; a third signal exits at once.\n");
}

static int list_devices(void) {
  dpl_device *cpu = dpl_device_open("cpu");
  printf("%s\n", dpl_device_banner(cpu));
  int n = dpl_vulkan_device_count();
  if (n == 0) printf("vulkan: unavailable (%s)\n", dpl_vulkan_unavailable_reason());
  for (int i = 0; i < n; i++) printf("%s\n", dpl_vulkan_device_banner(i));
  dpl_device *d = dpl_device_open(NULL);
  printf("default: %s\n", d ? dpl_device_spec(d) : "none");
  return 0;
}

/* OpenBLAS (Debian's DYNAMIC_ARCH build, 0.3.21) chooses its kernels from the CPU model when it loads and falls back
 * to the SSE3 "Prescott" kernels for a model it does not know (e.g. Emerald Rapids, family 6 model 0xCF): sgemm then
 * runs about 4x slower. OPENBLAS_CORETYPE, read once at load time, overrides the choice. OpenBLAS is already loaded
 * when main() runs, so when it picked a generic core on a CPU that has AVX-512 (or AVX2 + FMA) usable by the OS, we
 * set the variable and re-execute ourselves; the new process loads OpenBLAS with the right kernels. A user-set
 * OPENBLAS_CORETYPE is never touched, and the set variable stops a second re-exec. */
static const char *best_coretype(void) {
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return NULL;
  int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
  if (!osxsave || !avx) return NULL;
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  (void)hi;
  int os_ymm = (lo & 0x6) == 0x6, os_zmm = (lo & 0xe6) == 0xe6;   /* XMM|YMM state; plus opmask|ZMM_Hi256|Hi16_ZMM */
  if (!os_ymm || __get_cpuid_max(0, NULL) < 7) return NULL;
  __cpuid_count(7, 0, a, b, c, d);
  int avx2 = (b >> 5) & 1, f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
  if (os_zmm && f && dq && bw && vl) return "SkylakeX";
  if (avx2 && fma) return "Haswell";
#endif
  return NULL;
}

/* whether OpenBLAS should be told a better core type (see above); sets OPENBLAS_CORETYPE when so */
static int choose_blas_kernels(void) {
  const char *set = getenv("OPENBLAS_CORETYPE");
  if (set && *set) return 0;
  const char *want = best_coretype();
  /* looked up, not linked: OpenBLAS is libdpl's dependency, not ours */
  char *(*corename)(void) = (char *(*)(void))dlsym(RTLD_DEFAULT, "openblas_get_corename");
  const char *have = corename ? corename() : NULL;
  if (!want || !have) return 0;
  static const char *generic[] = {"prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "katmai",
                                  "coppermine", "northwood", "banias", "unknown", NULL};
  int weak = 0;
  for (int k = 0; generic[k]; k++) weak |= !strcasecmp(have, generic[k]);
  if (!weak) return 0;
  setenv("OPENBLAS_CORETYPE", want, 1);
  return 1;
}

/* libgomp's idle threads spin about 300000 times (~0.1 ms) before they sleep. A network alternates short parallel
 * regions with serial work (the Lua side, small ops), so on a small VM the spinning worker took the CPU time the
 * serial work needed: ResNet-50 at 1x3x224x224 ran 1.5-2x slower with 2 threads than with a short spin. Unless the
 * user chose (OMP_WAIT_POLICY or GOMP_SPINCOUNT), the spin is shortened; libgomp reads it when it loads, hence the
 * re-exec below. */
static int choose_omp_spin(void) {
  const char *policy = getenv("OMP_WAIT_POLICY"), *spin = getenv("GOMP_SPINCOUNT");
  if ((policy && *policy) || (spin && *spin)) return 0;
  setenv("GOMP_SPINCOUNT", "10000", 1);
  return 1;
}

/* Settings the libraries read when they load: set what is missing and re-execute ourselves once (the variables are
 * then set, so there is no second re-exec). */
static void choose_runtime_settings(char **argv) {
  int changed = choose_blas_kernels();
  changed |= choose_omp_spin();
  if (!changed) return;
  fflush(stdout);
  fflush(stderr);
  execv("/proc/self/exe", argv);
  /* exec failed (no /proc): keep running with what we have */
}

static int file_exists(const char *path) { return access(path, R_OK) == 0; }

/* ---- Signals ----------------------------------------------------------------------------------------------------
 * The first SIGINT or SIGTERM is recorded and, unless the script deferred it, a Lua hook raises an "interrupted"
 * error at the next Lua call or return; the hook stays armed, so a pcall that catches the error is interrupted again
 * at its next call, until the script has unwound. dplrun then runs the cleanups the libraries registered with
 * lua/dpl/signal.lua (the results store rolls back an open transaction and releases its claims), closes the Lua
 * state (closing a database connection rolls back what was not committed), prints "interrupted" - with "rerun the
 * same command to resume" when the script said it resumes - and exits 128 + the signal: 130 for SIGINT, 143 for
 * SIGTERM, as a shell reports a process killed by it. A script that checkpoints (a training loop) defers the
 * signal: it polls dpl.signal.pending() between steps, saves, and calls dpl.signal.stop(). A second signal raises
 * the error even when deferred; a third ends the process at once. LuaJIT runs no hook inside compiled code, so a
 * loop compiled whole (no call left to the interpreter) notices the error only when its trace exits; polling
 * dpl.signal.pending() raises it too. The flag, the count and the switch are exported for the FFI
 * (dplrun_signal_pending, dplrun_signal_count, dplrun_signal_defer). docs/robustness.md. */
static lua_State *main_L;
static volatile sig_atomic_t pending_signal, signal_count, deferred;

static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  if (deferred && signal_count < 2) { lua_sethook(L, NULL, 0, 0); return; }
  luaL_error(L, "interrupted by %s", pending_signal == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void arm_interrupt(void) {
  lua_sethook(main_L, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

static void on_signal(int sig) {
  if (!pending_signal) pending_signal = sig;
  signal_count++;
  if (signal_count >= 3) {
    static const char msg[] = "\ndplrun: interrupted again; stopping now\n";
    if (write(2, msg, sizeof msg - 1) < 0) {}
    _exit(128 + pending_signal);
  }
  if (!deferred || signal_count >= 2) arm_interrupt();
}

/* 0, SIGINT or SIGTERM: the first signal received */
int dplrun_signal_pending(void) { return pending_signal; }
/* how many were received */
int dplrun_signal_count(void) { return signal_count; }

/* on != 0: signals only set the flag (the script polls it); 0: they interrupt the script. Returns the previous
 * setting; turning deferral off with a signal pending interrupts at once. */
int dplrun_signal_defer(int on) {
  int was = deferred;
  deferred = on != 0;
  if (!deferred && pending_signal) arm_interrupt();
  return was;
}

static void install_signal_handlers(lua_State *L) {
  main_L = L;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

/* After an interruption: the cleanups of lua/dpl/signal.lua (with the hook off), and the message. */
static void finish_interrupt(lua_State *L) {
  lua_sethook(L, NULL, 0, 0);
  const char *resume = NULL;
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "loaded");
  lua_getfield(L, -1, "dpl.signal");
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "run_cleanups");
    if (lua_isfunction(L, -1) && lua_pcall(L, 0, 0, 0) != 0) {
      fprintf(stderr, "dplrun: while cleaning up after the interruption: %s\n", lua_tostring(L, -1));
      lua_pop(L, 1);
    }
    lua_getfield(L, -1, "resume_hint");
    if (lua_isstring(L, -1)) resume = lua_tostring(L, -1);
  }
  fflush(stdout);
  fprintf(stderr, "\ndplrun: interrupted by %s%s%s\n", pending_signal == SIGTERM ? "SIGTERM" : "SIGINT",
          resume ? "; " : "", resume ? resume : "");
  lua_settop(L, 0);
}

/* Where dpl's files are. No path is compiled in: the binary finds them from where it is.
 *   installed (cmake --install build --prefix P): P/bin/dplrun, the Lua library in P/share/dpl/lua and the scripts
 *     (experiments/, examples/, data/, weights/) in P/share/dpl; root = P/share/dpl;
 *   a build tree: the file dpl-source-root next to the binary (written by CMake) names the source tree; root = it.
 * $DPL_LUA_DIR overrides the Lua library folder. `installed` tells the Lua side which layout it runs in (weights then
 * default to the XDG cache instead of the source tree's weights/). */
static void find_roots(char *lua_dir, char *root, size_t n, int *installed) {
  *installed = 0;
  root[0] = 0;
  char exe[PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len > 0) {
    exe[len] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) {
      *slash = 0;
      char candidate[PATH_MAX + 64];
      snprintf(candidate, sizeof candidate, "%s/../share/dpl/lua/dpl/init.lua", exe);
      if (file_exists(candidate)) {
        snprintf(root, n, "%.4000s/../share/dpl", exe);
        char *real = realpath(root, NULL);
        if (real) { snprintf(root, n, "%s", real); free(real); }
        *installed = 1;
      } else {
        snprintf(candidate, sizeof candidate, "%s/dpl-source-root", exe);
        FILE *f = fopen(candidate, "r");
        if (f) {
          if (fgets(root, (int)n, f)) root[strcspn(root, "\r\n")] = 0;
          fclose(f);
        }
      }
    }
  }
  const char *env = getenv("DPL_LUA_DIR");
  if (env && *env) snprintf(lua_dir, n, "%s", env);
  else if (root[0]) snprintf(lua_dir, n, "%.4000s/lua", root);
  else snprintf(lua_dir, n, "lua");   /* nothing found: the current folder's lua/ (an error names it if missing) */
}

/* LuaJIT's allocation sinking (Debian's 2.1.0~beta3+git20220320) rebuilds a sunk variable-length cdata,
 * ffi.new("int64_t[?]", n), with size -1 when a side exit restores it: the FFI call that then fills it writes over
 * the GC heap, and a later collection crashes (issue 18 item 2; a pure LuaJIT reproducer without dpl is in
 * tests/lua/test_robustness.lua). dpl's Lua library allocates such buffers throughout, so dplrun turns sinking off
 * for the whole script (bench/lossnets.lua: no systematic slowdown, docs/robustness.md). DPL_JIT_SINK=1 keeps it. */
static void avoid_luajit_sink_bug(lua_State *L) {
  const char *keep = getenv("DPL_JIT_SINK");
  if (keep && !strcmp(keep, "1")) return;
  lua_getglobal(L, "jit");
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "opt");
    if (lua_istable(L, -1)) {
      lua_getfield(L, -1, "start");
      lua_pushstring(L, "-sink");
      if (lua_pcall(L, 1, 0, 0) != 0) lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* os.exit replacement: release the devices before exit() runs the libraries' destructors (the Vulkan layers and
 * drivers register theirs after our atexit handler, so theirs would run first and our cleanup would then touch
 * freed state). */
static int host_exit(lua_State *L) {
  lua_sethook(L, NULL, 0, 0);   /* exiting: an interruption arriving now changes nothing */
  int code = 0;
  if (lua_isboolean(L, 1)) code = lua_toboolean(L, 1) ? 0 : 1;
  else if (!lua_isnoneornil(L, 1)) code = (int)luaL_checkinteger(L, 1);
  fflush(stdout);
  fflush(stderr);
  dpl_shutdown();
  exit(code);
  return 0;
}

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  /* debug.traceback(msg, 2) */
  lua_getglobal(L, "debug");
  lua_getfield(L, -1, "traceback");
  lua_pushstring(L, msg);
  lua_pushinteger(L, 2);
  lua_call(L, 2, 1);
  return 1;
}

int main(int argc, char **argv) {
  choose_runtime_settings(argv);
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || !strcmp(a, "-")) break;
    if (!strcmp(a, "--")) { i++; break; }
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
    if (!strcmp(a, "--version")) { printf("dplrun %s (%s)\n", dpl_version(), LUAJIT_VERSION); return 0; }
    if (!strcmp(a, "--devices")) { int rc = list_devices(); dpl_shutdown(); return rc; }
    if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) { setenv("DPL_QUIET", "1", 1); continue; }
    if (!strcmp(a, "--device") || !strncmp(a, "--device=", 9)) {
      const char *d = a[8] == '=' ? a + 9 : (i + 1 < argc ? argv[++i] : NULL);
      if (!d) { fprintf(stderr, "dplrun: --device needs a value (cpu, vulkan or vulkan:N)\n"); return 2; }
      setenv("DPL_DEVICE", d, 1);
      setenv("DPL_DEVICE_ORIGIN", "dplrun --device", 1);   /* a bad value is blamed on the option, not DPL_DEVICE */
      continue;
    }
    if (!strcmp(a, "--precision") || !strncmp(a, "--precision=", 12)) {
      const char *p = a[11] == '=' ? a + 12 : (i + 1 < argc ? argv[++i] : NULL);
      if (!p || (strcmp(p, "fp32") && strcmp(p, "fp16"))) {
        fprintf(stderr, "dplrun: --precision needs fp32 or fp16\n");
        return 2;
      }
      setenv("DPL_PRECISION", p, 1);
      continue;
    }
    fprintf(stderr, "dplrun: unknown option %s (see dplrun --help)\n", a);
    return 2;
  }
  if (i >= argc) { usage(stderr); return 2; }
  const char *script = argv[i];
  char lua_dir[PATH_MAX], root[PATH_MAX];
  int installed;
  find_roots(lua_dir, root, sizeof lua_dir, &installed);
  /* a relative script path that is not in the current folder is looked for in dpl's own tree, so that
   * `P/bin/dplrun experiments/bapps.lua` runs from any folder */
  char in_root[2 * PATH_MAX];
  if (!file_exists(script) && script[0] != '/' && root[0]) {
    snprintf(in_root, sizeof in_root, "%s/%s", root, script);
    if (file_exists(in_root)) { script = in_root; argv[i] = in_root; }
  }
  if (!file_exists(script)) { fprintf(stderr, "dplrun: cannot open %s\n", script); return 1; }

  atexit(dpl_shutdown);   /* also when a script calls os.exit: the pipeline cache is still saved */
  lua_State *L = luaL_newstate();
  if (!L) { fprintf(stderr, "dplrun: cannot create a Lua state\n"); return 1; }
  luaL_openlibs(L);
  avoid_luajit_sink_bug(L);

  lua_getglobal(L, "os");
  lua_pushcfunction(L, host_exit);
  lua_setfield(L, -2, "exit");
  lua_pop(L, 1);

  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", lua_dir, lua_dir, lua_tostring(L, -1));
  lua_setfield(L, -3, "path");
  lua_pop(L, 1);
  /* the exact header this binary was built with, for the FFI binding */
  lua_getfield(L, -1, "loaded");
  lua_pushstring(L, dpl_header_text);
  lua_setfield(L, -2, "dpl.cheader");
  lua_pop(L, 2);
  lua_pushstring(L, lua_dir);
  lua_setglobal(L, "DPL_LUA_DIR");
  if (root[0]) {   /* the source tree, or P/share/dpl when installed */
    lua_pushstring(L, root);
    lua_setglobal(L, "DPL_SOURCE_ROOT");
  }
  lua_pushboolean(L, installed);
  lua_setglobal(L, "DPL_INSTALLED");

  /* arg: arg[0] the script, arg[1..] its arguments, negative indices the interpreter and its options */
  lua_createtable(L, argc - i - 1, i + 1);
  for (int k = 0; k < argc; k++) {
    lua_pushstring(L, argv[k]);
    lua_rawseti(L, -2, k - i);
  }
  lua_setglobal(L, "arg");

  install_signal_handlers(L);
  lua_pushcfunction(L, traceback);
  int status = luaL_loadfile(L, script);
  if (status == 0) {
    int nargs = argc - i - 1;
    luaL_checkstack(L, nargs + 1, "too many arguments");
    for (int k = i + 1; k < argc; k++) lua_pushstring(L, argv[k]);
    status = lua_pcall(L, nargs, 0, -2 - nargs);
  }
  int rc = 0;
  if (pending_signal && status != 0) {   /* the error is the interruption, or came after it */
    finish_interrupt(L);
    rc = 128 + pending_signal;
  } else if (status != 0) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "dplrun: %s\n", msg ? msg : "(error without a message)");
    rc = 1;
  }
  fflush(stdout);
  lua_close(L);      /* runs the finalizers that free tensors */
  dpl_shutdown();    /* then the devices (saving the pipeline cache) */
  return rc;
}

#!/bin/sh
# bench/gpu/package.sh - makes the self-contained folder of the GPU benchmark (bench/gpu/README.md): dplrun, libdpl and
# every shared library they load (except the C library itself and the GPU's own Vulkan driver), the Lua library, the
# benchmark scripts and a run.sh; copied to a Linux machine with a Vulkan GPU and PyTorch, it runs with nothing to
# compile and nothing to fetch.
#
#   sh bench/gpu/package.sh OUT                   a fresh Release build without oneDNN (the CPU library the GPU
#                                                 benchmark does not use: 40 MB less to carry), installed into OUT
#   sh bench/gpu/package.sh OUT --build-dir DIR   package an existing build instead (faster; keeps its oneDNN)
#   sh bench/gpu/package.sh OUT --check           then run the packaged benchmark from another folder, quick sizes
#
# Run it from the repository's root. Needs cmake, a C compiler and glslangValidator (the build's needs) here; on the
# target only a glibc at least as new as this machine's (Debian 12: 2.36) and, for the comparison, python3 with torch.
set -eu

usage() { echo "usage: sh bench/gpu/package.sh OUT [--build-dir DIR] [--check]" >&2; exit 2; }
[ $# -ge 1 ] || usage
out=$1
shift
build=""
check=0
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) [ $# -ge 2 ] || usage; build=$2; shift 2 ;;
    --check) check=1; shift ;;
    *) usage ;;
  esac
done
[ -f CMakeLists.txt ] && [ -d lua/dpl ] || { echo "package.sh: run it from the repository's root" >&2; exit 2; }
case "$out" in /*) ;; *) out=$(pwd)/$out ;; esac
if [ -e "$out" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ]; then
  echo "package.sh: $out exists and is not empty; give a new folder" >&2
  exit 2
fi
mkdir -p "$out/bin" "$out/lib/loader" "$out/share/dpl" "$out/bench/gpu"

if [ -z "$build" ]; then
  build=$(mktemp -d)
  trap 'rm -rf "$build"' EXIT
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DDPL_WITH_DNNL=OFF >/dev/null
  cmake --build "$build" -j "$(nproc)" --target dplrun >/dev/null
fi
[ -x "$build/dplrun" ] || { echo "package.sh: no dplrun in $build (build first)" >&2; exit 2; }

# the binary and the library, stripped of debug information
cp "$build/dplrun" "$out/bin/"
for f in "$build"/libdpl.so*; do cp -P "$f" "$out/lib/"; done
strip --strip-unneeded "$out/bin/dplrun" "$out/lib/"libdpl.so.*.* 2>/dev/null || true

# every library they load, as found here, except the C library's own (they must be the target's) and libdpl
ldd "$out/bin/dplrun" "$out/lib/libdpl.so.0" | awk '/=> \// { print $3 }' | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|libresolv.so.*|ld-linux*|libdpl.so*) ;;
    *) cp -L "$lib" "$out/lib/" ;;
  esac
done
# the Vulkan loader (opened at run time by volk), used only where the target has none: its own driver (ICD) is found
# by the loader as usual
loader=$(ldconfig -p | awk '/libvulkan\.so\.1 .*x86-64/ { print $NF; exit }')
[ -n "$loader" ] && cp -L "$loader" "$out/lib/loader/"

# the Lua library, with the one Lua module from outside it the scripts use (Debian's lua-argparse)
cp -R lua "$out/share/dpl/lua"
argparse=""
for d in /usr/share/lua/5.1 /usr/local/share/lua/5.1; do [ -f "$d/argparse.lua" ] && argparse="$d/argparse.lua" && break; done
[ -n "$argparse" ] || { echo "package.sh: argparse.lua not found (Debian: lua-argparse)" >&2; exit 2; }
cp "$argparse" "$out/share/dpl/lua/"

cp bench/gpu/gpu.lua bench/gpu/tasks.lua bench/gpu/torch_gpu.py bench/gpu/README.md "$out/bench/gpu/"

cat >"$out/run.sh" <<'EOF'
#!/bin/sh
# Runs the GPU benchmark from this folder: ./run.sh [--help | options of bench/gpu/gpu.lua]
here=$(cd "$(dirname "$0")" && pwd)
libs="$here/lib"
ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1' || libs="$libs:$here/lib/loader"
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "$here/bin/dplrun" "$here/bench/gpu/gpu.lua" "$@"
EOF
chmod +x "$out/run.sh"

{
  echo "dpl GPU benchmark package"
  echo "commit: $(git describe --always --dirty 2>/dev/null || echo unknown)"
  echo "made: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -srm), glibc $(ldd --version | head -1 | awk '{print $NF}')"
  echo "files:"
  (cd "$out" && find . -type f ! -name MANIFEST | sort | xargs sha256sum)
} >"$out/MANIFEST"
echo "package.sh: $out ($(du -sh "$out" | cut -f1)); run $out/run.sh"

if [ "$check" = 1 ]; then
  # from another folder, without the source tree's Lua library or build on any path
  tmp=$(mktemp -d)
  py=python3
  [ -x /usr/bin/python3 ] && py=/usr/bin/python3   # Debian's, which has torch on the build machines
  (cd "$tmp" && env -u DPL_LUA_DIR DPL_QUIET=1 "$out/run.sh" --quick --rounds 1 --repeat 1 --python "$py" \
     --only "${DPL_PACKAGE_CHECK_ONLY:-}")
  rm -rf "$tmp"
fi

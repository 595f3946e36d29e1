#!/usr/bin/env bash
# bench/fuzz.sh - runs the libFuzzer harness of every reader (tests/fuzz, docs/robustness.md) for a set time and
# prints, per reader, the executions, their rate, the corpus size and the findings (crashes, sanitizer reports,
# leaks, timeouts, out-of-memory). Exits 1 when anything was found; each finding is kept in
# BUILD/fuzz/findings/<reader>/ - copy it to tests/fuzz/regressions/<reader>/ once the bug is fixed.
#
#   bench/fuzz.sh                          every reader for 10 minutes, two at a time
#   bench/fuzz.sh --seconds 30             CI: 30 s each (.ci/run)
#   bench/fuzz.sh --execs 1000000 pth npy  until each has run 10^6 inputs
#
# Options: --build DIR (default build-fuzz; configured with CC=clang -DDPL_FUZZ=ON and built when it lacks the
# harnesses), --seconds N (per reader), --execs N (per reader, instead of a time; --seconds then caps it), --jobs J
# (readers run at once, default 2), --nice (run at the lowest CPU priority), --timeout N (seconds one input may take
# before it counts as a hang: default 20, or 120 with --nice, where a busy machine can starve a process for longer).
# The corpus each run grows is kept in BUILD/fuzz/corpus/<reader> and reused by the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=build-fuzz seconds=600 execs=0 jobs=2 nice_cmd="" timeout=""
readers=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --execs) execs=$2; [ "$seconds" = 600 ] && seconds=86400; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --nice) nice_cmd="nice -n 19"; shift ;;
    --timeout) timeout=$2; shift 2 ;;
    --help|-h) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) readers+=("$1"); shift ;;
  esac
done
[ -z "$timeout" ] && { [ -n "$nice_cmd" ] && timeout=120 || timeout=20; }
all=(pth safetensors npy png jpeg tiff mat stl10)
[ ${#readers[@]} -eq 0 ] && readers=("${all[@]}")
for r in "${readers[@]}"; do
  [[ " ${all[*]} " == *" $r "* ]] || { echo "fuzz.sh: unknown reader $r (${all[*]})" >&2; exit 2; }
done

if [ ! -x "$build/tests/fuzz/fuzz_${readers[0]}" ]; then
  command -v clang >/dev/null || { echo "fuzz.sh: the fuzzers need clang (bash .ci/install-deps.sh)" >&2; exit 2; }
  CC=clang cmake -B "$build" -DDPL_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" -j"$(nproc)" --target $(printf 'fuzz_%s ' "${readers[@]}") >/dev/null
fi

# per reader: the longest input and extra libFuzzer options
max_len() { case "$1" in stl10) echo 60000 ;; png|jpeg|tiff|mat) echo 16384 ;; *) echo 8192 ;; esac; }
dict() { [ -f "tests/fuzz/$1.dict" ] && echo "-dict=$root/tests/fuzz/$1.dict" || true; }

run_one() {
  local r=$1 dir="$build/fuzz"
  mkdir -p "$dir/corpus/$r" "$dir/findings/$r" "$dir/logs"
  local inputs=("$dir/corpus/$r" "tests/fuzz/corpus/$r")
  [ -d "tests/fuzz/regressions/$r" ] && inputs+=("tests/fuzz/regressions/$r")
  local runs=()
  [ "$execs" != 0 ] && runs=(-runs="$execs")
  # the harnesses read their input from a file: each job runs in its own process, so /dev/shm names do not collide
  DPL_QUIET=1 DPL_NO_VULKAN=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
    $nice_cmd "$build/tests/fuzz/fuzz_$r" -max_total_time="$seconds" "${runs[@]}" -max_len="$(max_len "$r")" \
    -timeout="$timeout" -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$dir/findings/$r/" $(dict "$r") \
    "${inputs[@]}" >"$dir/logs/$r.log" 2>&1 || true
}

start=$(date +%s)
stamp=$(mktemp)   # findings newer than this are this run's (older ones in findings/ were reported before)
trap 'rm -f "$stamp"' EXIT
pids=()
for r in "${readers[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
  run_one "$r" &
  pids+=($!)
done
wait "${pids[@]}" 2>/dev/null || true

found=0
printf '%-12s %12s %10s %8s %9s\n' reader execs "exec/s" corpus findings
for r in "${readers[@]}"; do
  log="$build/fuzz/logs/$r.log"
  n=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  corpus=$(ls "$build/fuzz/corpus/$r" | wc -l)
  k=$(find "$build/fuzz/findings/$r" -type f -newer "$stamp" 2>/dev/null | grep -Ec '/(crash|leak|timeout|oom)-[^/]*$' || true)
  if grep -qE '^==[0-9]+==ERROR|^SUMMARY: (Address|Undefined|Leak)Sanitizer|runtime error:' "$log" && [ "$k" = 0 ]; then
    k=1
  fi
  [ -z "$n" ] && n=0
  printf '%-12s %12s %10s %8s %9s\n' "$r" "$n" "$rate" "$corpus" "$k"
  if [ "$k" != 0 ]; then
    found=1
    echo "  $r: see $log and $build/fuzz/findings/$r/" >&2
    grep -m3 -E 'ERROR|runtime error|SUMMARY|Test unit written' "$log" | sed 's/^/    /' >&2 || true
  fi
done
echo "fuzz.sh: $(( $(date +%s) - start )) s in all"
exit $found

#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS] — fuzz every reader of outside bytes (tests/fuzz, libFuzzer with ASan +
# UBSan): build the targets in build-fuzz/ (clang, ccache; CUDA and MPI off), replay every committed
# regression input and seed, then fuzz each target for SECONDS (default 30), two at a time.
#
#   bash scripts/fuzz.sh            # CI's short run
#   bash scripts/fuzz.sh 600        # a long run (RESULTS.md's numbers): nice it, the machine is shared
#   FERRY_FUZZ_TARGETS="checkpoint_fuzz llmc_fuzz" bash scripts/fuzz.sh 60
#   FERRY_FUZZ_JOBS=1               # targets at once (default 2)
#   SECONDS=0                       # replay only, no fuzzing
#   FERRY_FUZZ_SEED=1               # libFuzzer's -seed (CI's run sets it, so what CI finds, a rerun
#                                   # with the same seed and an empty corpus finds too); default random
#
# A target's corpus grows in build-fuzz/corpus/<target> (kept between runs, ignored by git). A crash,
# sanitizer report, failed property, timeout (30 s) or allocation over the limit stops that target;
# the script minimizes the input (libFuzzer -minimize_crash) into build-fuzz/crashes/<target>/ and
# fails. Commit the minimized input to tests/fuzz/regressions/<target>/, fix the reader, add a test.
# Last line: "fuzz: N passed, M failed" (targets).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-30}
JOBS=${FERRY_FUZZ_JOBS:-2}
BUILD=build-fuzz
# Limits each input runs under: a reader must check every size it reads against the file's length
# and sane caps before allocating, so no single allocation (a few-kilobyte input) nears 512 MiB.
# The timeout is generous because the vocabulary target loads 50,257 tokens per input under ASan
# on a shared machine; a hang still shows as one.
LIMITS=(-rss_limit_mb=3072 -malloc_limit_mb=512 -timeout=30)

need=()
for pkg in clang libclang-rt-14-dev libomp-14-dev cmake ninja-build ccache libtomlplusplus-dev libcli11-dev \
           nlohmann-json3-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
  echo "fuzz: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The tokenizer targets read GPT-2's real vocabulary.
[[ -f ${FERRY_ASSETS:-data/cache}/gpt2/encoder.json ]] || bash scripts/fetch_assets.sh

export CCACHE_BASEDIR="$PWD"
export CCACHE_DIR=${CCACHE_DIR:-/root/.cache/ccache}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DFERRY_FUZZ=ON -DFERRY_CUDA=OFF -DFERRY_MPI=OFF -DBUILD_TESTING=OFF >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target fuzz_targets

if [[ -n ${FERRY_FUZZ_TARGETS:-} ]]; then
  read -r -a targets <<<"$FERRY_FUZZ_TARGETS"
else
  targets=()
  for src in tests/fuzz/*_fuzz.cpp; do targets+=("$(basename "$src" .cpp)"); done
fi
# Leak checking would flag the tokenizer's per-thread caches and the targets' static vocabularies.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
mkdir -p "$BUILD/logs"

# run_target NAME: replay, then fuzz; prints one summary line; exit status 0 when nothing was found.
run_target() {
  local t=$1 bin=$BUILD/fuzz/$1 log=$BUILD/logs/$1.log
  local corpus=$BUILD/corpus/$t crashes=$BUILD/crashes/$t
  mkdir -p "$corpus" "$crashes"
  : >"$log"
  local replay=()
  for dir in tests/fuzz/regressions/$t tests/fuzz/corpus/$t; do
    [[ -d $dir ]] && while IFS= read -r -d '' f; do replay+=("$f"); done < <(find "$dir" -type f -print0)
  done
  if ((${#replay[@]})) && ! "$bin" "${LIMITS[@]}" "${replay[@]}" >>"$log" 2>&1; then
    echo "fuzz: $t FAILED replaying the committed inputs (see $log)"
    return 1
  fi
  if ((SECONDS_PER_TARGET == 0)); then
    echo "fuzz: $t replayed ${#replay[@]} inputs"
    return 0
  fi
  local rc=0
  "$bin" "${LIMITS[@]}" ${FERRY_FUZZ_SEED:+-seed="$FERRY_FUZZ_SEED"} -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 \
    -artifact_prefix="$crashes/" "$corpus" "tests/fuzz/corpus/$t" >>"$log" 2>&1 || rc=$?
  local execs cov ft units
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  cov=$(grep -oE '(DONE|pulse|NEW|REDUCE|INITED) +cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
  units=$(find "$corpus" -type f | wc -l)
  if ((rc != 0)); then
    local crash
    crash=$(ls -t "$crashes"/crash-* "$crashes"/leak-* "$crashes"/timeout-* "$crashes"/oom-* 2>/dev/null | head -1 || true)
    if [[ -n $crash ]]; then
      "$bin" "${LIMITS[@]}" -minimize_crash=1 -max_total_time=60 -exact_artifact_path="$crashes/minimized" \
        "$crash" >>"$log" 2>&1 || true
    fi
    echo "fuzz: $t FOUND a failure after ${execs:-?} runs: ${crash:-see $log} (minimized: $crashes/minimized; log $log)"
    return 1
  fi
  echo "fuzz: $t ok: ${execs:-?} runs in ${SECONDS_PER_TARGET}s, ${cov#* }, corpus ${units} files + $(find "tests/fuzz/corpus/$t" -type f 2>/dev/null | wc -l) seeds"
}

passed=0
failed=0
results=$BUILD/logs/results
: >"$results"
: >"$results.status"
for t in "${targets[@]}"; do
  [[ -x $BUILD/fuzz/$t ]] || { echo "fuzz: no target $t"; exit 2; }
  (if run_target "$t" >>"$results"; then echo "$t 0"; else echo "$t 1"; fi >>"$results.status") &
  while (($(jobs -rp | wc -l) >= JOBS)); do wait -n || true; done
done
wait || true
cat "$results"
while read -r t status; do
  if ((status == 0)); then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done <"$results.status"
rm -f "$results.status"
echo "fuzz: $passed passed, $failed failed"
((failed == 0))

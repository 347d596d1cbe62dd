# benchmarks/lib_steps.sh — the budgeted steps of the GPU-machine scripts (gpu_check.sh,
# gpu_transfer.sh), sourced by them. The caller sets OUT (logs land there), BUDGET (seconds for the
# whole script) and START (=$SECONDS when the budget began) and creates "$OUT/steps.txt".
# shellcheck shell=bash

# Seconds of the budget left.
left() { echo $((BUDGET - (SECONDS - START))); }

# step NAME LIMIT_S COMMAND...: runs with the smaller of LIMIT_S and the time left; log in $OUT/NAME.log.
step() {
  local name=$1 limit=$2
  shift 2
  local remaining
  remaining=$(left)
  ((limit > remaining)) && limit=$remaining
  if ((limit < 10)); then
    echo "$name: skipped, budget spent" | tee -a "$OUT/steps.txt"
    return 124
  fi
  echo "== $name (limit ${limit}s)"
  local t0=$SECONDS
  timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "$name: rc=$rc in $((SECONDS - t0))s" | tee -a "$OUT/steps.txt"
  tail -n 8 "$OUT/$name.log"
  return $rc
}

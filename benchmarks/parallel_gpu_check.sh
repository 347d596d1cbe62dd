#!/usr/bin/env bash
# benchmarks/parallel_gpu_check.sh — the one runner under data, tensor and pipeline parallelism and
# ZeRO-1 on one GPU (issue 15): `ferry pretrain --device cuda` on `mpirun -np 2` (both ranks on the
# one device; the MPI communicator stages the gradients, the TP collectives, ZeRO-1's reduce-scatter
# and all-gather or the pipeline's activations through host memory, eager steps), as DP2, DP2 with
# --zero1, TP2 and PP2, must write the losses of one process with the global batch, within bf16's
# rounding (1e-2 relative). Run by gpu_check.sh.
#
#   bash benchmarks/parallel_gpu_check.sh PATH/TO/ferry SOURCE_DIR WORK_DIR
#
# What one GPU cannot show, and this script therefore does not try: NCCL with several ranks (NCCL
# refuses two ranks on one device: DP buckets, TP collectives and PP messages device to device).
set -euo pipefail
FERRY=$1
SRC=$2
WORK=$3
mkdir -p "$WORK"
MPIRUN=(mpirun --allow-run-as-root --oversubscribe)
common=(pretrain --config "$SRC/configs/tiny.toml" --device cuda --max-steps 8 --seq-len 128 --eval-every 0)
losses() { grep -o '"train_loss":[^,}]*' "$1/metrics.jsonl" | cut -d: -f2; }

"$FERRY" "${common[@]}" --batch-size 16 --out "$WORK/one" >"$WORK/one.log" 2>&1 ||
  { tail -20 "$WORK/one.log"; echo "FAIL: one process on CUDA"; exit 1; }
timeout 240 "${MPIRUN[@]}" -np 2 "$FERRY" "${common[@]}" --batch-size 8 --out "$WORK/dp2" >"$WORK/dp2.log" 2>&1 ||
  { tail -20 "$WORK/dp2.log"; echo "FAIL: mpirun -np 2 on one GPU"; exit 1; }
# compare NAME DIR [REFERENCE]: NAME's losses against one process's (WORK/one), within 1e-2 relative.
compare() {
  paste <(losses "${3:-$WORK/one}") <(losses "$2") | awk -v name="$1" '
    { d = $1 - $2; if (d < 0) d = -d; printf "step %d: one process %s, %s %s\n", NR, $1, name, $2; if (d > 1e-2 * $1) bad = 1 }
    END { if (NR == 0) { print "FAIL: no losses"; exit 1 } exit bad }'
}
compare dp2 "$WORK/dp2"
echo "ok: dp2 on one GPU equals one process (bf16, 1e-2)"

# ZeRO-1 over the same two ranks: each keeps the optimizer state of half the parameters.
timeout 240 "${MPIRUN[@]}" -np 2 "$FERRY" "${common[@]}" --batch-size 8 --zero1 --out "$WORK/zero1" >"$WORK/zero1.log" 2>&1 ||
  { tail -20 "$WORK/zero1.log"; echo "FAIL: mpirun -np 2 --zero1 on one GPU"; exit 1; }
compare dp2-zero1 "$WORK/zero1"
echo "ok: dp2 with zero1 on one GPU equals one process (bf16, 1e-2)"

# TP2: each rank holds half of every split layer and of the vocabulary, the whole batch.
timeout 240 "${MPIRUN[@]}" -np 2 "$FERRY" "${common[@]}" --batch-size 16 --tp 2 --out "$WORK/tp2" >"$WORK/tp2.log" 2>&1 ||
  { tail -20 "$WORK/tp2.log"; echo "FAIL: mpirun -np 2 --tp 2 on one GPU"; exit 1; }
compare tp2 "$WORK/tp2"
echo "ok: tp2 on one GPU equals one process (bf16, 1e-2)"

# PP2: two stages on 1F1B over 2 micro-batches of 8 rows, against one process with the same
# micro-batches.
"$FERRY" "${common[@]}" --batch-size 8 --grad-accum 2 --out "$WORK/one_accum2" >"$WORK/one_accum2.log" 2>&1 ||
  { tail -20 "$WORK/one_accum2.log"; echo "FAIL: one process with --grad-accum 2 on CUDA"; exit 1; }
timeout 240 "${MPIRUN[@]}" -np 2 "$FERRY" "${common[@]}" --batch-size 8 --grad-accum 2 --pp 2 --out "$WORK/pp2" \
  >"$WORK/pp2.log" 2>&1 || { tail -20 "$WORK/pp2.log"; echo "FAIL: mpirun -np 2 --pp 2 on one GPU"; exit 1; }
compare pp2 "$WORK/pp2" "$WORK/one_accum2"
echo "ok: pp2 on one GPU equals one process (bf16, 1e-2)"

#!/usr/bin/env bash
# tests/parallel/pretrain_mpirun_test.sh — `ferry pretrain` under mpirun trains like one process.
#
#   bash tests/parallel/pretrain_mpirun_test.sh "MPIRUN [FLAGS]" PATH/TO/ferry SOURCE_DIR
#
# For each layout, a short run of configs/tiny.toml on mpirun must write the same train_loss at
# every step (within 1e-5 relative) as one process fed the same global batch: DP ranks read their
# rows of the dp·B-row global batch, so one process with batch dp·B sees the same tokens.
#   -np 4 --tp 2                  tp2 × dp2: batch 4 per DP rank  ⇔ one process, batch 8
#   -np 2 --pp 2 --grad-accum 2   pp2 on 1F1B over 2 micro-batches ⇔ one process, 2 micro-batches
# and, starting from a model file (--init, an llm.c file converted from a 3-step run: every rank
# reads it and its layout cuts the full weights as it cuts a resumed checkpoint's):
#   -np 2 --tp 2 --init M                    ⇔ one process --init M
#   -np 4 --pp 2 --grad-accum 2 --zero1 --init M   dp2 × pp2, ZeRO-1 ⇔ one process, batch 2B, --init M
# Also checks that only one rank wrote metrics (one line per step).
set -euo pipefail
read -r -a MPIRUN <<<"$1"
FERRY=$2
SRC=$3
STEPS=3
WORK=$(mktemp -d /tmp/ferry-pretrain-mpirun.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export OMP_NUM_THREADS=1
common=(pretrain --config "$SRC/configs/tiny.toml" --max-steps $STEPS --seq-len 32 --eval-every 0)

losses() { grep -o '"train_loss":[^,}]*' "$1/metrics.jsonl" | cut -d: -f2; }

check() {  # name, single-process flags, mpirun flags
  local name=$1 single=$2 ranks=$3 parallel=$4
  read -r -a s <<<"$single"
  read -r -a p <<<"$parallel"
  "$FERRY" "${common[@]}" "${s[@]}" --out "$WORK/$name-one" >"$WORK/$name-one.log" 2>&1 ||
    { cat "$WORK/$name-one.log"; echo "FAIL $name: the single-process run failed"; exit 1; }
  timeout 120 "${MPIRUN[@]}" -np "$ranks" "$FERRY" "${common[@]}" "${p[@]}" --out "$WORK/$name-mpi" \
    >"$WORK/$name-mpi.log" 2>&1 || { cat "$WORK/$name-mpi.log"; echo "FAIL $name: mpirun -np $ranks failed"; exit 1; }
  local want got
  want=$(losses "$WORK/$name-one")
  got=$(losses "$WORK/$name-mpi")
  [[ $(wc -l <<<"$got") == "$STEPS" ]] || { echo "FAIL $name: expected $STEPS metric lines, got: $got"; exit 1; }
  paste <(echo "$want") <(echo "$got") | awk -v name="$name" '
    { d = $1 - $2; if (d < 0) d = -d; if (d > 1e-5 * $1) { printf "FAIL %s step %d: one process %s, mpirun %s\n", name, NR, $1, $2; bad = 1 } }
    END { exit bad }'
  echo "ok $name: $(echo $got)"
}

check tp2xdp2 "--batch-size 8" 4 "--batch-size 4 --tp 2"
check pp2 "--batch-size 4 --grad-accum 2" 2 "--batch-size 4 --grad-accum 2 --pp 2"

# --init: a tiny model trained 3 steps, as an llm.c model file.
printf '[model]\npreset = "tiny"\n[train]\nbatch_size = 4\nseq_len = 32\nmax_steps = 3\neval_every = 0\ncheckpoint_every = 3\n' \
  >"$WORK/source.toml"
"$FERRY" pretrain --config "$WORK/source.toml" --out "$WORK/source" >"$WORK/source.log" 2>&1 &&
  "$FERRY" convert "$WORK/source/checkpoints/step_00000003.ckpt" "$WORK/init.bin" >>"$WORK/source.log" 2>&1 ||
  { cat "$WORK/source.log"; echo "FAIL init: the source model could not be made"; exit 1; }
check tp2_init "--batch-size 4 --init $WORK/init.bin" 2 "--batch-size 4 --tp 2 --init $WORK/init.bin"
check dp2xpp2_zero1_init "--batch-size 8 --grad-accum 2 --init $WORK/init.bin" 4 \
  "--batch-size 4 --grad-accum 2 --pp 2 --zero1 --init $WORK/init.bin"
# The weights did come from the file: the same run from the seed's initialization starts elsewhere.
"$FERRY" "${common[@]}" --batch-size 4 --out "$WORK/scratch" >"$WORK/scratch.log" 2>&1 ||
  { cat "$WORK/scratch.log"; echo "FAIL init: the scratch run failed"; exit 1; }
[[ $(losses "$WORK/scratch" | head -1) != $(losses "$WORK/tp2_init-one" | head -1) ]] ||
  { echo "FAIL init: --init gave the seed's first loss"; exit 1; }
echo "ok init: the first loss differs from the seed's ($(losses "$WORK/tp2_init-one" | head -1) vs $(losses "$WORK/scratch" | head -1))"

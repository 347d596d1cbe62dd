#!/usr/bin/env bash
# tests/parallel/finetune_mpirun_test.sh — `ferry finetune` under mpirun trains like one process.
#
#   bash tests/parallel/finetune_mpirun_test.sh "MPIRUN [FLAGS]" PATH/TO/ferry
#
# A short from-scratch fine-tuning run (a small model, a compact vocabulary) on mpirun must write the
# same train_loss at every step (within 1e-5 relative) as one process with the same --batch-size:
# each DP rank trains on its rows of every global batch, and each loss divides by the labelled rows
# of the whole batch (NER's unlabelled sub-words make them differ from rank to rank).
#   sentiment  -np 2          dp2 (IMDB reviews, data/cache/imdb); also --zero1, --tp 2 on the GPT
#                             trunk (the classifier head replicated) and --pp 2
#   ner        -np 2          dp2 (a small synthetic WNUT-17-shaped corpus written here, so the test
#                             needs no data outside the checkout; FERRY_NER_DIR overrides)
#   ner        -np 2 --tp 2   tp2 on the encoder
#   multi      -np 2          dp2, sentiment + NER heads on one trunk (rows alternate between them)
# Only rank 0 writes the output folder. Skips (77) when a task's data is not on this machine.
set -euo pipefail
read -r -a MPIRUN <<<"$1"
FERRY=$2
STEPS=4
WORK=$(mktemp -d /tmp/ferry-finetune-mpirun.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export OMP_NUM_THREADS=1
# The NER side needs only CoNLL files of the right shape (the check compares losses, not F1): 120
# training and 24 dev/test sentences of tab-separated token/tag lines, entities spanning 1-2 tokens.
ner_corpus() {  # dir, sentences, seed
  awk -v n="$2" -v seed="$3" 'BEGIN {
    split("the a my new old big city team show game song film day night with at in on for and", w, " ")
    split("Paris London Ada Grace Turing Lovelace Berlin Tokyo Python Rust", e, " ")
    split("location location person person person person location location product product", k, " ")
    x = seed
    for (s = 0; s < n; ++s) {
      len = 5 + (x = (x * 1103515245 + 12345) % 2147483648) % 9
      for (i = 0; i < len; ++i) {
        r = (x = (x * 1103515245 + 12345) % 2147483648) % 10
        if (r < 3) {
          j = 1 + int(x / 16) % 10
          printf "%s\tB-%s\n", e[j], k[j]
          if (r == 0) printf "%s\tI-%s\n", e[1 + (j % 10)], k[j]
        } else {
          printf "%s\tO\n", w[1 + int(x / 16) % 20]
        }
      }
      printf "\n"
    }
  }' >"$1"
}
if [[ -z ${FERRY_NER_DIR:-} ]]; then
  mkdir -p "$WORK/ner/wnut17"
  ner_corpus "$WORK/ner/wnut17/train.conll" 120 1
  ner_corpus "$WORK/ner/wnut17/dev.conll" 24 2
  ner_corpus "$WORK/ner/wnut17/test.conll" 24 3
  export FERRY_NER_DIR=$WORK/ner
fi
common=(finetune --from-scratch --steps $STEPS --batch-size 4 --seq-len 32 --eval-every 0 --dev-limit 8
        --test-limit 8 --labels 64 --vocab-size 512 --n-layer 2 --n-embd 32 --n-head 4 --warmup 1 --seed 7
        --device cpu)

task_flags() { if [[ $1 == multi ]]; then echo "--task multi --tasks sentiment,ner"; else echo "--task $1"; fi; }
losses() { grep -o '"train_loss":[^,}]*' "$1/metrics.jsonl" | cut -d: -f2; }

check() {  # name, task, mpirun ranks, mpirun-only flags
  local name=$1 task=$2 ranks=$3 parallel=$4
  read -r -a p <<<"$parallel"
  local t
  read -r -a t <<<"$(task_flags "$task")"
  if [[ ! -f "$WORK/$task-one/metrics.jsonl" ]]; then
    if ! "$FERRY" "${common[@]}" "${t[@]}" --out "$WORK/$task-one" >"$WORK/$task-one.log" 2>&1; then
      if grep -qiE "not found|no such file|cannot open|missing" "$WORK/$task-one.log"; then
        cat "$WORK/$task-one.log"; echo "SKIP $name: the $task data is not on this machine"; exit 77
      fi
      cat "$WORK/$task-one.log"; echo "FAIL $name: the single-process run failed"; exit 1
    fi
  fi
  timeout 240 "${MPIRUN[@]}" -np "$ranks" "$FERRY" "${common[@]}" "${t[@]}" "${p[@]}" --out "$WORK/$name-mpi" \
    >"$WORK/$name-mpi.log" 2>&1 || { cat "$WORK/$name-mpi.log"; echo "FAIL $name: mpirun -np $ranks failed"; exit 1; }
  local want got
  want=$(losses "$WORK/$task-one")
  got=$(losses "$WORK/$name-mpi")
  [[ $(wc -l <<<"$got") == "$STEPS" ]] || { echo "FAIL $name: expected $STEPS metric lines, got: $got"; exit 1; }
  paste <(echo "$want") <(echo "$got") | awk -v name="$name" '
    { d = $1 - $2; if (d < 0) d = -d; if (d > 1e-5 * $1) { printf "FAIL %s step %d: one process %s, mpirun %s\n", name, NR, $1, $2; bad = 1 } }
    END { exit bad }'
  [[ -f "$WORK/$name-mpi/eval.json" ]] || { echo "FAIL $name: no eval.json written"; exit 1; }
  [[ $(grep -c "^step .*| loss" "$WORK/$name-mpi.log") == $(grep -c "^step .*| loss" "$WORK/$task-one.log") ]] ||
    { echo "FAIL $name: progress printed by more than one rank"; exit 1; }
  echo "ok $name: $(echo $got)"
}

check sentiment_dp2 sentiment 2 ""
check sentiment_dp2_zero1 sentiment 2 "--zero1"
check sentiment_tp2 sentiment 2 "--tp 2"
check sentiment_pp2 sentiment 2 "--pp 2"
check ner_dp2 ner 2 ""
check ner_tp2 ner 2 "--tp 2"
check multi_dp2 multi 2 ""

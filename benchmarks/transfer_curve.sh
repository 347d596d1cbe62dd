#!/usr/bin/env bash
# benchmarks/transfer_curve.sh — what pretraining buys on IMDB, as a table: each pretrained model
# fine-tuned (and linearly probed: frozen trunk, mean pooling) on a few label counts and seeds, beside
# the same architecture and vocabulary fine-tuned from scratch with the same labels, seed and budget
# (configs/finetune_sentiment.toml for every side). benchmarks/RESULTS.md ("Transfer learning on
# IMDB") reports its tables.
#
#   benchmarks/transfer_curve.sh run MODEL...     fine-tune every missing run (resumable: a run whose
#                                                 eval.json exists is skipped), $JOBS at a time
#   benchmarks/transfer_curve.sh table MODEL...   the table: per model and label count, the mean test
#                                                 accuracy of each side over the seeds and the mean
#                                                 pretrained − scratch difference (paired by seed)
#                                                 with its standard error over the seeds
#
# MODEL is a `ferry finetune` output folder (a pretrained trunk). Scratch runs depend only on the
# architecture and vocabulary, so models that share them share scratch runs (keyed by the model's
# trunk shape). Environment: FERRY (default build/ferry), OUT (runs/curve), LABELS ("100 1000 5000"),
# SEEDS ("1 2 3"), SIDES ("pre scratch probe"), JOBS (2; each run single-threaded), FT_FLAGS (extra
# flags for every fine-tuning run, e.g. "--seq-len 256"; they name the runs' folder too).
set -euo pipefail
cd "$(dirname "$0")/.."
FERRY=${FERRY:-build/ferry}
OUT=${OUT:-runs/curve}
LABELS=${LABELS:-100 1000 5000}
SEEDS=${SEEDS:-1 2 3}
SIDES=${SIDES:-pre scratch probe}
JOBS=${JOBS:-2}
FT_FLAGS=${FT_FLAGS:-}
tag=$(echo "$FT_FLAGS" | tr -c 'A-Za-z0-9.=' '_' | sed 's/__*/_/g; s/^_//; s/_$//')

# The architecture and vocabulary of a model folder (from model.ckpt's JSON header: the trunk's
# "model" and the fine-tuning metadata's "vocab"), as a folder name for its scratch runs.
shape() {
  local h model
  h=$(head -c 1048576 "$1/model.ckpt" | tr -d '\0' | tr '\n' ' ')
  model=$(echo "$h" | grep -a -o '"model":{[^}]*}' | head -n 1)
  printf '%s-%s-%s' "$(echo "$model" | grep -o '"n_layer":[0-9]*' | cut -d: -f2)x$(echo "$model" | grep -o '"n_embd":[0-9]*' | cut -d: -f2)" \
    "$(echo "$model" | grep -o '"causal":[a-z]*' | cut -d: -f2)" \
    "$( (echo "$model"; echo "$h" | grep -a -o '"vocab":{[^}]*}' | head -n 1) | md5sum | cut -c1-8)"
}

run_dir() {  # MODEL SIDE LABELS SEED
  local base
  if [ "$2" = scratch ]; then base="$OUT/scratch-$(shape "$1")"; else base="$OUT/$(basename "$1")"; fi
  echo "$base/$2-L$3-s$4${tag:+-$tag}"
}

one() {  # MODEL SIDE LABELS SEED
  local dir flags=()
  dir=$(run_dir "$@")
  [ -f "$dir/eval.json" ] && return 0
  case $2 in
    pre) flags=(--init "$1") ;;
    scratch) flags=(--init "$1" --from-scratch) ;;
    probe) flags=(--init "$1" --freeze trunk --pooling mean --lr 3e-3) ;;
    *) echo "transfer_curve: unknown side '$2'" >&2; return 2 ;;
  esac
  mkdir -p "$(dirname "$dir")"
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=1 "$FERRY" finetune --config configs/finetune_sentiment.toml "${flags[@]}" --labels "$3" \
    --seed "$4" --out "$dir" $FT_FLAGS > "$dir.log" 2>&1 || { echo "failed: $dir (see $dir.log)" >&2; return 1; }
  echo "done: $dir $(grep -o '"value": [0-9.]*' "$dir/eval.json")"
}

accuracy() { [ -f "$1/eval.json" ] && sed -n 's/^  "value": \([0-9.]*\),\{0,1\}$/\1/p' "$1/eval.json" | head -n 1; }

cmd=${1:-}
shift || true
[ $# -gt 0 ] || { echo "usage: $0 run|table MODEL..." >&2; exit 2; }
for m in "$@"; do [ -f "$m/model.ckpt" ] || { echo "transfer_curve: $m/model.ckpt not found" >&2; exit 2; }; done

case $cmd in
  run)
    export -f one run_dir shape
    export FERRY OUT tag FT_FLAGS
    for m in "$@"; do for l in $LABELS; do for s in $SEEDS; do for side in $SIDES; do
      echo "$m $side $l $s"
    done; done; done; done | sort -u -k2,2 -k1,1 -k3,3n -k4,4n |
      xargs -P "$JOBS" -L 1 bash -c 'one "$@"' _
    ;;
  table)
    echo "| model | labels | pretrained | scratch | difference (± s.e., n) | linear probe |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: |"
    for m in "$@"; do for l in $LABELS; do
      rows=""
      for s in $SEEDS; do
        p=$(accuracy "$(run_dir "$m" pre "$l" "$s")" || true)
        z=$(accuracy "$(run_dir "$m" scratch "$l" "$s")" || true)
        q=$(accuracy "$(run_dir "$m" probe "$l" "$s")" || true)
        rows+="${p:--} ${z:--} ${q:--}"$'\n'
      done
      printf '%s' "$rows" | awk -v m="$(basename "$m")" -v l="$l" '
        function mean(a, n,   i, s) { s = 0; for (i = 1; i <= n; ++i) s += a[i]; return n ? s / n : 0 }
        $1 != "-" { P[++np] = 100 * $1 }
        $2 != "-" { S[++ns] = 100 * $2 }
        $3 != "-" { Q[++nq] = 100 * $3 }
        $1 != "-" && $2 != "-" { D[++nd] = 100 * ($1 - $2) }
        END {
          md = mean(D, nd); v = 0
          for (i = 1; i <= nd; ++i) v += (D[i] - md) ^ 2
          se = nd > 1 ? sqrt(v / (nd - 1) / nd) : 0
          printf "| %s | %s | %s | %s | %s | %s |\n", m, l,
            np ? sprintf("%.1f", mean(P, np)) : "-", ns ? sprintf("%.1f", mean(S, ns)) : "-",
            nd ? sprintf("%+.1f ± %.1f (%d)", md, se, nd) : "-", nq ? sprintf("%.1f", mean(Q, nq)) : "-"
        }'
    done; done
    ;;
  *) echo "usage: $0 run|table MODEL..." >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# scripts/run_default.sh — the README's main command: what pretraining buys, on a 2-core machine in
# about 15 minutes.
#   1. set up (packages, assets, build: scripts/setup.sh);
#   2. take ferry's release model (models/ferry-release.ckpt: a GPT pretrained by
#      scripts/pretrain_release.sh on Gutenberg prose plus the IMDB pretraining pool — reviews that
#      may only ever be sentiment TRAIN examples; its manifest is models/ferry-release.json). Without
#      it (or with FERRY_TRANSFER_PRETRAIN=1) pretrain today's small one first
#      (scripts/pretrain_transfer.sh, configs/finetune_pretrain.toml, about 6 minutes);
#   3. fine-tune it on 1,000 IMDB labels and, beside it (one core each), the same architecture and
#      vocabulary from scratch on the same labels with the same budget (configs/finetune_sentiment.toml
#      for both), once per seed (FERRY_TRANSFER_SEEDS, default "1 2 3": each seed draws its own
#      labels, order and initialization, the same for both sides);
#   4. print both sides' test accuracy (2,000 stratified test reviews, none of them ever pretraining
#      text) per seed, their means, and the mean difference with its standard error over the seeds;
#      draw the first seed's dev-accuracy curves into runs/transfer/dev_accuracy.svg.
# Everything lands in runs/transfer/ (each run's eval.json, metrics.jsonl and model.ckpt). Extra
# arguments go to every fine-tuning run (e.g. --steps 150). With a usable GPU, ferry runs there
# (--device auto).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh build ferry
F=./build/ferry
OUT=runs/transfer
SEEDS=${FERRY_TRANSFER_SEEDS:-1 2 3}
mkdir -p "$OUT"
start=$(date +%s)

MODEL=models/ferry-release.ckpt
if [ "${FERRY_TRANSFER_PRETRAIN:-0}" = 1 ] || [ ! -f "$MODEL" ]; then
  [ -f "$MODEL" ] || echo "== no $MODEL: pretraining today's small model first"
  bash scripts/pretrain_transfer.sh --skip-setup
  MODEL=$OUT/pretrain
  what="ferry LM pretrained just now (configs/finetune_pretrain.toml)"
else
  what="ferry's release model, $MODEL"
fi

echo "== fine-tuning on 1,000 IMDB labels: $what, and the same architecture from scratch,"
echo "   side by side (one core each), seeds: $SEEDS (progress in $OUT/<side>-s<seed>.log)"
for s in $SEEDS; do
  OMP_NUM_THREADS=1 $F finetune --config configs/finetune_sentiment.toml --init "$MODEL" --seed "$s" \
    --out "$OUT/pretrained-s$s" "$@" > "$OUT/pretrained-s$s.log" 2>&1 &
  pretrained=$!
  OMP_NUM_THREADS=1 $F finetune --config configs/finetune_sentiment.toml --init "$MODEL" --from-scratch --seed "$s" \
    --out "$OUT/scratch-s$s" "$@" > "$OUT/scratch-s$s.log" 2>&1 &
  scratch=$!
  # Show the pretrained side's progress while both run.
  tail -n +1 -f "$OUT/pretrained-s$s.log" --pid "$pretrained" 2>/dev/null | grep --line-buffered -E '^step' |
    sed -u "s/^/seed $s: /" || true
  status=0
  wait "$pretrained" || status=$?
  wait "$scratch" || status=$?
  if [ "$status" -ne 0 ]; then
    tail -n 3 "$OUT/pretrained-s$s.log" "$OUT/scratch-s$s.log"
    echo "a fine-tuning run failed (see $OUT/*-s$s.log)"
    exit "$status"
  fi
done

first=${SEEDS%% *}
$F plot --key dev --title "IMDB dev accuracy, 1,000 training labels (seed $first)" --y-label "dev accuracy" \
  --out "$OUT/dev_accuracy.svg" pretrained="$OUT/pretrained-s$first/metrics.jsonl" \
  scratch="$OUT/scratch-s$first/metrics.jsonl"

value() { sed -n "s/^  \"$2\": \(.*\),\{0,1\}$/\1/p" "$1" | tr -d '",' | head -n 1; }
{
  for s in $SEEDS; do
    echo "$s $(value "$OUT/pretrained-s$s/eval.json" value) $(value "$OUT/scratch-s$s/eval.json" value)"
  done
} | awk -v n="$(value "$OUT/pretrained-s$first/eval.json" n_train_labels)" \
      -v e="$(value "$OUT/pretrained-s$first/eval.json" examples)" -v t="$(($(date +%s) - start))" -v what="$what" '
  { seed[NR] = $1; p[NR] = 100 * $2; s[NR] = 100 * $3; d[NR] = p[NR] - s[NR]; sp += p[NR]; ss += s[NR]; sd += d[NR] }
  END {
    k = NR; mp = sp / k; ms = ss / k; md = sd / k
    for (i = 1; i <= k; ++i) v += (d[i] - md) ^ 2
    se = k > 1 ? sqrt(v / (k - 1) / k) : 0
    printf "\nIMDB sentiment, %d training labels, %d test reviews (after %dm%02ds):\n", n, e, t / 60, t % 60
    printf "  pretrained: %s\n", what
    printf "  %-6s %12s %14s %12s\n", "seed", "pretrained", "from scratch", "difference"
    for (i = 1; i <= k; ++i) printf "  %-6s %11.1f%% %13.1f%% %+11.1f\n", seed[i], p[i], s[i], d[i]
    printf "  %-6s %11.1f%% %13.1f%% %+11.1f", "mean", mp, ms, md
    if (k > 1) printf " ± %.1f (standard error over %d seeds)", se, k
    printf "\n"
  }'
echo "dev accuracy curves: $OUT/dev_accuracy.svg; runs, metrics and models: $OUT/"

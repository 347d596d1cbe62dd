#!/usr/bin/env bash
# scripts/run_default.sh — the README's main command: what pretraining buys, on a 2-core machine in
# about 15 minutes.
#   1. set up (packages, assets, build: scripts/setup.sh);
#   2. pretrain a tiny GPT (4 layers, 128 wide, a 4,096-piece GPT-2 vocabulary) on general prose
#      (Gutenberg) plus the IMDB pretraining pool (tools/data/imdb_pretrain.h: reviews that may only
#      ever be sentiment TRAIN examples) — configs/finetune_pretrain.toml;
#   3. fine-tune it on 1,000 IMDB labels and, at the same time (one core each), fine-tune the same
#      architecture and vocabulary from scratch on the same labels with the same budget —
#      configs/finetune_sentiment.toml for both;
#   4. print both test accuracies (2,000 stratified test reviews, none of them seen in pretraining)
#      and draw both dev-accuracy curves into runs/transfer/dev_accuracy.svg.
# Everything lands in runs/transfer/ (each run's eval.json, metrics.jsonl and model.ckpt). Extra
# arguments go to both fine-tuning runs (e.g. --steps 150). FERRY_TRANSFER_PRETRAIN_STEPS and
# FERRY_TRANSFER_ADAPT_STEPS (ULMFiT-style LM steps on the review text before the pretrained side's
# classifier; off by default) set the lengths of the two unlabeled-text phases. With a usable GPU,
# ferry runs there (--device auto).
#
# Pretraining alone on the whole prepared corpus (GPT-2 vocabulary, llm.c shards, checkpoints,
# samples) is scripts/pretrain_small.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh build ferry
F=./build/ferry
OUT=runs/transfer
mkdir -p "$OUT"
PRE_STEPS=${FERRY_TRANSFER_PRETRAIN_STEPS:-}
ADAPT_STEPS=${FERRY_TRANSFER_ADAPT_STEPS:-0}
start=$(date +%s)

echo "== 1/3 pretraining a tiny GPT on Gutenberg + the IMDB pretraining pool (configs/finetune_pretrain.toml)"
$F finetune --config configs/finetune_pretrain.toml ${PRE_STEPS:+--steps "$PRE_STEPS"} --out "$OUT/pretrain"

echo "== 2/3 and 3/3 at once, one core each: the pretrained model on 1,000 labels, beside the same"
echo "   architecture, vocabulary and budget from scratch (progress in $OUT/pretrained.log and $OUT/scratch.log)"
OMP_NUM_THREADS=1 $F finetune --config configs/finetune_sentiment.toml --init "$OUT/pretrain" \
  --adapt-steps "$ADAPT_STEPS" --out "$OUT/pretrained" "$@" > "$OUT/pretrained.log" 2>&1 &
pretrained=$!
OMP_NUM_THREADS=1 $F finetune --config configs/finetune_sentiment.toml --init "$OUT/pretrain" --from-scratch \
  --out "$OUT/scratch" "$@" > "$OUT/scratch.log" 2>&1 &
scratch=$!
# Show the pretrained side's progress while both run.
tail -n +1 -f "$OUT/pretrained.log" --pid "$pretrained" 2>/dev/null | grep --line-buffered -E '^step' || true
status=0
wait "$pretrained" || status=$?
wait "$scratch" || status=$?
[ "$status" -eq 0 ] || { tail -n 3 "$OUT/pretrained.log" "$OUT/scratch.log"; echo "a fine-tuning run failed (see $OUT/*.log)"; exit "$status"; }

$F plot --key dev --title "IMDB dev accuracy, 1,000 training labels" --y-label "dev accuracy" \
  --out "$OUT/dev_accuracy.svg" pretrained="$OUT/pretrained/metrics.jsonl" scratch="$OUT/scratch/metrics.jsonl"

value() { sed -n "s/^  \"$2\": \(.*\),\{0,1\}$/\1/p" "$1" | tr -d '",' | head -n 1; }
p_acc=$(value "$OUT/pretrained/eval.json" value)
s_acc=$(value "$OUT/scratch/eval.json" value)
labels=$(value "$OUT/pretrained/eval.json" n_train_labels)
examples=$(value "$OUT/pretrained/eval.json" examples)
awk -v p="$p_acc" -v s="$s_acc" -v n="$labels" -v e="$examples" -v t="$(( $(date +%s) - start ))" 'BEGIN {
  printf "\nIMDB sentiment, %d training labels, %d test reviews (after %dm%02ds):\n", n, e, t / 60, t % 60
  printf "  pretrained (ferry LM on prose + the IMDB pool): %5.1f%% accuracy\n", 100 * p
  printf "  from scratch (same architecture and budget):    %5.1f%% accuracy\n", 100 * s
  printf "  difference: %+.1f points\n", 100 * (p - s)
}'
echo "dev accuracy curves: $OUT/dev_accuracy.svg; runs, metrics and models: $OUT/"

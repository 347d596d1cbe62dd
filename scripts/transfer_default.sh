#!/usr/bin/env bash
# scripts/transfer_default.sh — what pretraining buys, on a 2-core CPU in about 15 minutes:
#   1. set up (packages, assets, build) as run_default.sh does;
#   2. pretrain a tiny GPT (4 layers, 128 wide, a 4,096-piece GPT-2 vocabulary) on general prose
#      (Gutenberg) plus the IMDB pretraining pool (tools/data/imdb_pretrain.h: reviews that may only
#      ever be sentiment TRAIN examples) — configs/finetune_pretrain.toml;
#   3. fine-tune it on 1,000 IMDB labels and, at the same time (one core each), fine-tune the same
#      architecture and vocabulary from scratch on the same labels with the same budget —
#      configs/finetune_sentiment.toml for both (FERRY_TRANSFER_ADAPT_STEPS=N adds N ULMFiT-style
#      domain-adaptation LM steps on the review text before the pretrained side's classifier; off by
#      default: 200 steps did not raise dev accuracy, benchmarks/RESULTS.md);
#   4. print both test accuracies (2,000 stratified test reviews, none of them seen in pretraining).
# Everything lands in runs/transfer/ (each run's eval.json and model.ckpt). Extra arguments go to both
# fine-tuning runs (e.g. --steps 150). FERRY_TRANSFER_PRETRAIN_STEPS and FERRY_TRANSFER_ADAPT_STEPS
# set the lengths of the two unlabeled-text phases. With a GPU, ferry uses it (--device auto).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh build
F=./build/ferry
OUT=runs/transfer
mkdir -p "$OUT"
PRE_STEPS=${FERRY_TRANSFER_PRETRAIN_STEPS:-1000}
ADAPT_STEPS=${FERRY_TRANSFER_ADAPT_STEPS:-0}

echo "== 1/3 pretraining a tiny GPT on Gutenberg + the IMDB pretraining pool ($PRE_STEPS steps)"
$F finetune --config configs/finetune_pretrain.toml --steps "$PRE_STEPS" --out "$OUT/pretrain"

echo "== 2/3 and 3/3 at once: the pretrained model on 1,000 labels (after $ADAPT_STEPS domain-adaptation steps)"
echo "   beside the same architecture, vocabulary and budget from scratch (logs in $OUT/*.log)"
OMP_NUM_THREADS=1 $F finetune --config configs/finetune_sentiment.toml --init "$OUT/pretrain" \
  --adapt-steps "$ADAPT_STEPS" --out "$OUT/pretrained" "$@" > "$OUT/pretrained.log" 2>&1 &
pretrained=$!
OMP_NUM_THREADS=1 $F finetune --config configs/finetune_sentiment.toml --init "$OUT/pretrain" --from-scratch \
  --out "$OUT/scratch" "$@" > "$OUT/scratch.log" 2>&1 &
scratch=$!
status=0
wait "$pretrained" || status=$?
wait "$scratch" || status=$?
tail -n 1 "$OUT/pretrained.log" "$OUT/scratch.log"
[ "$status" -eq 0 ] || { echo "a fine-tuning run failed (see $OUT/*.log)"; exit "$status"; }

python3 - "$OUT" <<'PY' 2>/dev/null || true
import json, sys
out = sys.argv[1]
p = json.load(open(f"{out}/pretrained/eval.json"))
s = json.load(open(f"{out}/scratch/eval.json"))
print()
print(f"IMDB sentiment, {p['n_train_labels']} training labels, {p['examples']} test reviews:")
print(f"  pretrained (ferry LM on prose + the IMDB pool): {100 * p['value']:.1f}% accuracy")
print(f"  from scratch (same architecture, vocabulary and budget): {100 * s['value']:.1f}% accuracy")
print(f"  difference: {100 * (p['value'] - s['value']):+.1f} points")
PY

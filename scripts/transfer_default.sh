#!/usr/bin/env bash
# scripts/transfer_default.sh — what pretraining buys, on a 2-core CPU in about 15 minutes:
#   1. set up (packages, assets, build) as run_default.sh does;
#   2. pretrain a tiny GPT (4 layers, 128 wide, a 4,096-piece GPT-2 vocabulary) on general prose
#      (Gutenberg) plus the IMDB pretraining pool (tools/data/imdb_pretrain.h: reviews that may only
#      ever be sentiment TRAIN examples);
#   3. fine-tune it on 1,000 IMDB labels, and fine-tune the same architecture from scratch on the
#      same labels with the same budget;
#   4. print both test accuracies (2,000 stratified test reviews, none of them seen in pretraining).
# Everything lands in runs/transfer/ (each run's eval.json, the models). Extra arguments go to both
# fine-tuning runs (e.g. --steps 300). FERRY_TRANSFER_PRETRAIN_STEPS sets the pretraining length.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh build
F=./build/ferry
OUT=runs/transfer
mkdir -p "$OUT"
PRE_STEPS=${FERRY_TRANSFER_PRETRAIN_STEPS:-250}

echo "== 1/3 pretraining a tiny GPT on Gutenberg + the IMDB pretraining pool ($PRE_STEPS steps)"
$F finetune --task lm --from-scratch --model tiny --vocab-size 4096 --sources imdb,gutenberg \
  --lm-bytes 3000000 --steps "$PRE_STEPS" --batch-size 8 --seq-len 128 --warmup 20 --lr 2e-3 \
  --eval-every 125 --out "$OUT/pretrain"

common=(--task sentiment --labels 1000 --steps 150 --batch-size 16 --seq-len 128 --lr 1e-3 --warmup 15
        --eval-every 50 --dev-limit 300 --test-limit 2000)
echo "== 2/3 fine-tuning the pretrained model on 1,000 IMDB labels"
$F finetune "${common[@]}" --init "$OUT/pretrain" --out "$OUT/pretrained" "$@" | tee "$OUT/pretrained.txt"
echo "== 3/3 the same architecture, vocabulary and budget from scratch"
$F finetune "${common[@]}" --init "$OUT/pretrain" --from-scratch --out "$OUT/scratch" "$@" |
  tee "$OUT/scratch.txt"

python3 - "$OUT" <<'PY' 2>/dev/null || cat "$OUT/pretrained.txt" "$OUT/scratch.txt"
import json, sys
out = sys.argv[1]
p = json.load(open(f"{out}/pretrained/eval.json"))
s = json.load(open(f"{out}/scratch/eval.json"))
print()
print(f"IMDB sentiment, {p['n_train_labels']} training labels, {p['examples']} test reviews:")
print(f"  pretrained (ferry LM on prose + IMDB pool): {100 * p['value']:.1f}% accuracy")
print(f"  from scratch (same architecture and budget): {100 * s['value']:.1f}% accuracy")
print(f"  difference: {100 * (p['value'] - s['value']):+.1f} points")
PY

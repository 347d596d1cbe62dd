#!/usr/bin/env bash
# scripts/pretrain_transfer.sh — the main command's pretraining step of before the release model,
# on its own: a tiny GPT (4 layers, 128 wide, a 4,096-piece GPT-2 BPE vocabulary) on Gutenberg prose
# plus the IMDB pretraining pool (tools/data/imdb_pretrain.h), 3.1M tokens seen
# (configs/finetune_pretrain.toml), about 6 minutes on 2 idle cores, into runs/transfer/pretrain.
# scripts/run_default.sh uses it when models/ferry-release.ckpt is absent or FERRY_TRANSFER_PRETRAIN=1.
# FERRY_TRANSFER_PRETRAIN_STEPS=N shortens or lengthens it; other arguments go to `ferry finetune`
# (--skip-setup: the caller has built ferry already).
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
setup=1
for a in "$@"; do
  if [ "$a" = --skip-setup ]; then setup=0; else args+=("$a"); fi
done
[ "$setup" = 0 ] || bash scripts/setup.sh build ferry
STEPS=${FERRY_TRANSFER_PRETRAIN_STEPS:-}
echo "== pretraining a tiny GPT on Gutenberg + the IMDB pretraining pool (configs/finetune_pretrain.toml)"
./build/ferry finetune --config configs/finetune_pretrain.toml ${STEPS:+--steps "$STEPS"} --out runs/transfer/pretrain \
  "${args[@]}"

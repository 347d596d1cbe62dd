#!/usr/bin/env bash
# scripts/pretrain_small.sh — pretraining alone, on the whole corpus: set up (packages, assets, build), prepare the
# real pretraining corpus as GPT-2 token shards (`ferry data prepare`: Gutenberg, State of the Union,
# the IMDB pretraining pool → data/corpus; a no-op when up to date), then pretrain a small BPE GPT on
# it (configs/small.toml), printing progress and samples and writing runs/small/metrics.jsonl,
# runs/small/loss.svg and checkpoints in runs/small/checkpoints. Extra arguments go to
# `ferry pretrain` (e.g. --max-steps 50, --resume).
#
# FERRY_PRETRAIN_CONFIG=configs/tiny.toml runs the byte-level model on the generated corpus instead
# (no corpus preparation needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh build ferry
config="${FERRY_PRETRAIN_CONFIG:-configs/small.toml}"
if grep -q '^source = "shards"' "$config"; then
  ./build/ferry data prepare
fi
./build/ferry pretrain --config "$config" "$@"

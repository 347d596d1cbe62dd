#!/usr/bin/env bash
# scripts/fetch_translate_data.sh — the English–Spanish Bible texts for the translation task:
# Debian's sword-text-web (World English Bible), sword-text-sparv (Reina-Valera 1909) and the
# diatheke reader that `ferry data prepare --task translate` runs. Installs only what is missing
# (idempotent); needs root (or sudo) and Debian's apt.
set -euo pipefail

packages=(diatheke sword-text-web sword-text-sparv)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "fetch_translate_data: ${packages[*]} already installed"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "fetch_translate_data: installing ${missing[*]}"
$SUDO apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null || {
  $SUDO apt-get update >/dev/null
  $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
}
diatheke -b engWEB2015eb -f plain -k "Gen 1:1" >/dev/null
diatheke -b spaRV1909eb -f plain -k "Gen 1:1" >/dev/null
echo "fetch_translate_data: ok"

#!/usr/bin/env bash
# Installs the Debian packages Melodist needs. Idempotent: does nothing when all are present.
#   scripts/install-deps.sh          packages to build and run melodist
#   scripts/install-deps.sh --test   plus the oracles and tools the test suite uses
set -euo pipefail

runtime=(build-essential cmake pkg-config libfluidsynth-dev fluid-soundfont-gm abcmidi abcm2ps nodejs)
testing=(clang libclang-rt-14-dev sentencepiece python3-sentencepiece python3-numpy python3-torch
         libopenblas0-pthread libopenmpi-dev openmpi-bin chromium)

packages=("${runtime[@]}")
if [[ "${1:-}" == "--test" ]]; then
  packages+=("${testing[@]}")
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo_cmd=()
[[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

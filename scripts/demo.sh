#!/usr/bin/env bash
# The main job (make demo): the shipped model models/melodist-mini composes a jig; the tune is checked and written
# as ABC, MIDI, WAV and (with abcm2ps) an SVG score into out/.
set -euo pipefail
cd "$(dirname "$0")/.."
melodist=${MELODIST:-./build/melodist}
mkdir -p out
"$melodist" compose --seed "${SEED:-1}" --type jig --key D --bars 16 --title "Melodist Demo Jig" \
    -o out/demo.abc --midi out/demo.mid --wav out/demo.wav $(command -v abcm2ps >/dev/null && echo --svg out/demo.svg)
"$melodist" abc check out/demo.abc
"$melodist" analyze out/demo.abc "what key is it?"
ls -l out/demo.*

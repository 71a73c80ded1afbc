#!/usr/bin/env bash
# The main job on the bundled default; filled in as the engine grows.
set -euo pipefail
cd "$(dirname "$0")/.."
./build/melodist --help

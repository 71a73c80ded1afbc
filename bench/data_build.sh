#!/usr/bin/env bash
# Time and peak memory of `melodist data build` on the shared corpus, then on the corpus given twice (memory should
# stay flat: the pipeline streams tune by tune and keeps only 64-bit hashes).
#   bench/data_build.sh [BUILD_DIR]      (default: build)
set -euo pipefail
build=${1:-build}
melodist=$build/melodist
shared=$(cd "$(dirname "$0")/.." && pwd)/../shared/data
[[ -x $melodist ]] || { echo "no $melodist; build first (make build)" >&2; exit 1; }
[[ -d $shared ]] || { echo "no shared corpus at $shared" >&2; exit 1; }
corpus=("$shared"/nottingham/nottingham.abc "$shared"/essen_europe/essen_europe.abc
        "$shared"/essen_china/essen_china.abc "$shared"/shlien_balkan/shlien_balkan.abc)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run() {
  local label=$1; shift
  /usr/bin/time -v "$melodist" data build --out "$tmp/out" "$@" 2>"$tmp/log" >/dev/null
  local secs rss mb
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$tmp/log")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tmp/log")
  mb=$(cat "$@" | wc -c)
  printf '%-22s input %6.1f MB  wall %8s  peak RSS %6.1f MB  tunes read %s\n' "$label" \
    "$(echo "$mb / 1048576" | bc -l)" "$secs" "$(echo "$rss / 1024" | bc -l)" \
    "$(python3 -c "import json;print(json.load(open('$tmp/out/stats.json'))['tunes_read'])")"
}

run "shared corpus" "${corpus[@]}"
run "shared corpus x2" "${corpus[@]}" "${corpus[@]}"

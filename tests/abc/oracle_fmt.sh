#!/bin/bash
# The canonical text is still the same music for abc2midi: run the abc2midi oracle on `melodist abc fmt`
# of every collection (same known differences as the originals).
# usage: oracle_fmt.sh MELODIST ABC_EVENTS KNOWN_DIFFERENCES.tsv FILE.abc...
set -u
melodist=$1 events=$2 known=$3
shift 3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
for f in "$@"; do
    [[ -r $f ]] || continue
    "$melodist" abc fmt "$f" > "$tmp/$(basename "$f")" 2>/dev/null
    [[ $? -le 1 ]] || { echo "FAIL: melodist abc fmt $f"; exit 1; }
    n=$((n + 1))
done
[[ $n -gt 0 ]] || { echo "SKIP: no ABC collection found"; exit 77; }
exec /usr/bin/python3 "$(dirname "$0")/oracle_abc2midi.py" "$events" "$known" "$tmp"/*.abc

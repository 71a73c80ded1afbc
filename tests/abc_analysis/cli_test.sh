#!/bin/sh
# The analysis commands on the command line: melodist abc transpose / search / info (analysis fields),
# exit codes 0 ok, 1 invalid input, 2 usage.   cli_test.sh MELODIST DATA_DIR
set -u
M=$1
D=$2
T=${TMPDIR:-/tmp}/melodist_ana_cli.$$
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
fail=0
check() { # name, expected exit code, command...
    name=$1 want=$2
    shift 2
    "$@" >"$T/out" 2>"$T/err"
    got=$?
    if [ "$got" != "$want" ]; then
        echo "FAIL $name: exit $got, want $want"; cat "$T/err"; fail=1
    fi
}
has() { # name, file, text
    grep -qF -- "$3" "$2" || { echo "FAIL $1: '$3' not in output:"; cat "$2"; fail=1; }
}

check "transpose -k 2" 0 "$M" abc transpose "$D/two_tunes.abc" -k 2
has "transpose -k 2 key" "$T/out" "K:E"
has "transpose -k 2 key of tune 2" "$T/out" "K:F#m"
has "transpose -k 2 chords" "$T/out" '"B7"'
check "transpose --to G --tune 2" 0 "$M" abc transpose "$D/two_tunes.abc" --to G --tune 2
has "transpose --to G" "$T/out" "K:Gm"
check "transpose -o" 0 "$M" abc transpose "$D/two_tunes.abc" -k -3 -o "$T/down.abc"
has "transpose -o file" "$T/down.abc" "K:B"
check "transpose stdin" 0 sh -c "\"$M\" abc transpose -k 12 < \"$D/two_tunes.abc\""
check "transpose without -k" 2 "$M" abc transpose "$D/two_tunes.abc"
check "transpose bad -k" 2 "$M" abc transpose "$D/two_tunes.abc" -k two
check "transpose bad --to" 1 "$M" abc transpose "$D/two_tunes.abc" --to Q
check "transpose missing file" 1 "$M" abc transpose "$T/nothing.abc" -k 1
check "transpose missing tune" 1 "$M" abc transpose "$D/two_tunes.abc" -k 1 --tune 9

# the opening phrase of tune 1 (DEFG ABAF in D) asked for in G: found in bars 1 and 3
check "search" 0 "$M" abc search "$D/two_tunes.abc" --melody "GABc dedB"
has "search bar 1" "$T/out" "X:1 voice 1 bars 1-1 (-5 semitones)"
has "search bar 3" "$T/out" "X:1 voice 1 bars 3-3 (-5 semitones)"
has "search count" "$T/err" "2 occurrences in 2 tunes"
check "search --rhythm --json" 0 "$M" abc search "$D/two_tunes.abc" --melody "G/A/B/c/ d/e/d/B/" --rhythm --json
/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["count"] == 2, d' "$T/out" ||
    { echo "FAIL search --json"; fail=1; }
check "search without --melody" 2 "$M" abc search "$D/two_tunes.abc"
check "search bad phrase" 1 "$M" abc search "$D/two_tunes.abc" --melody "G A ["

check "info --json" 0 "$M" abc info --json "$D/two_tunes.abc"
/usr/bin/python3 - "$T/out" <<'PY' || { echo "FAIL info --json analysis"; fail=1; }
import json, sys
t = json.load(open(sys.argv[1]))["tunes"]
a, b = t[0]["analysis"], t[1]["analysis"]
assert a["form"] == "AABB" and [s["bars"] for s in a["sections"]] == [4, 4, 4, 4], a["sections"]
assert a["key_declared"] == "D" and a["bars_written"] == 9 and a["bars_played"] == 17, a
assert [c["chords"] for c in a["chords_per_bar"][:2]] == [["D"], ["G", "A7"]], a["chords_per_bar"]
assert b["key_detected"] == "Em" and b["range"]["lowest_name"] == "E4", b
assert b["meter"] == "3/4" and b["bars_written"] == 8 and b["note_histogram"]["pitch_classes"]["G"] == 3, b
# the rhythm types by their meters (and the reel's even eighth-note pairs); a 3/4 air is a waltz by that rule
assert a["rhythm_type"] == "reel" and b["rhythm_type"] == "waltz", (a["rhythm_type"], b["rhythm_type"])
PY
exit $fail

#!/bin/bash
# melodist abc check/fmt/info on small fixtures: exit codes, diagnostics with positions, JSON, atomic -o, stdin.
# usage: cli_test.sh MELODIST DATA_DIR
set -u
m=$1 data=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
expect() { # expect WANT_RC DESCRIPTION -- command...
    local want=$1 what=$2
    shift 3
    "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [[ $rc -ne $want ]]; then
        echo "FAIL: $what: exit $rc, wanted $want"; cat "$tmp/err"; fail=1
    fi
}
expect 0 "check valid" -- "$m" abc check "$data/valid.abc"
expect 1 "check invalid" -- "$m" abc check "$data/invalid.abc"
grep -q "invalid.abc:6:21: error\[length\]: .*(hint: " "$tmp/err" || { echo "FAIL: A/0 not reported at 6:21"; cat "$tmp/err"; fail=1; }
grep -q "invalid.abc:6:11: error\[bar-length\]" "$tmp/err" || { echo "FAIL: short bar not reported at 6:11"; fail=1; }
grep -q "invalid.abc:6:32: error\[slur\]" "$tmp/err" || { echo "FAIL: open slur not reported at 6:32"; fail=1; }
expect 1 "check missing file" -- "$m" abc check "$tmp/none.abc"
expect 2 "check bad option" -- "$m" abc check --bogus "$data/valid.abc"
expect 0 "check --help" -- "$m" abc check --help
expect 1 "check --json invalid" -- "$m" abc check --json "$data/invalid.abc"
/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert not d["valid"] and d["files"][0]["errors"] >= 3, d' "$tmp/out" \
    || { echo "FAIL: check --json"; fail=1; }
expect 0 "check --tune 2 from stdin" -- bash -c "\"$m\" abc check --tune 2 - < \"$data/valid.abc\""
expect 1 "check --tune missing" -- "$m" abc check --tune 9 "$data/valid.abc"

expect 0 "fmt" -- "$m" abc fmt "$data/valid.abc"
cp "$tmp/out" "$tmp/once.abc"
expect 0 "fmt of fmt" -- "$m" abc fmt "$tmp/once.abc"
cmp -s "$tmp/out" "$tmp/once.abc" || { echo "FAIL: fmt not idempotent"; diff "$tmp/once.abc" "$tmp/out"; fail=1; }
# a staccato dot left just before a bar line (found by fuzz_abc): ".|" must not come back as a dotted bar line
printf 'X:1\nL:1/8\nK:C\neceG   .  | G<c c<d|\n' > "$tmp/dot.abc"
"$m" abc fmt "$tmp/dot.abc" > "$tmp/dot1.abc" 2>/dev/null
"$m" abc fmt "$tmp/dot1.abc" > "$tmp/dot2.abc" 2>/dev/null
cmp -s "$tmp/dot1.abc" "$tmp/dot2.abc" || { echo "FAIL: fmt not idempotent on a dot before a bar"; diff "$tmp/dot1.abc" "$tmp/dot2.abc"; fail=1; }
grep -q '^K:G$' "$tmp/once.abc" || { echo "FAIL: fmt lost K:G"; fail=1; }
expect 0 "fmt -o" -- "$m" abc fmt --tune 2 -o "$tmp/two.abc" "$data/valid.abc"
[[ -s "$tmp/two.abc" && ! -s "$tmp/out" ]] && grep -q '^X:2$' "$tmp/two.abc" && ! grep -q '^X:1$' "$tmp/two.abc" \
    || { echo "FAIL: fmt -o / --tune"; fail=1; }
ls "$tmp" | grep -q tmp && { echo "FAIL: fmt -o left a temp file"; fail=1; }
expect 2 "fmt two files" -- "$m" abc fmt "$data/valid.abc" "$data/valid.abc"

expect 0 "info --json" -- "$m" abc info --json "$data/valid.abc"
/usr/bin/python3 - "$tmp/out" <<'PY' || { echo "FAIL: info --json content"; fail=1; }
import json, sys
d = json.load(open(sys.argv[1]))
t1, t2 = d["tunes"]
assert t1["title"] == "Valid Tune" and t1["meter"] == "3/4" and t1["unit"] == "1/8", t1
assert t1["key"] == "G major" and t1["tempo"] == {"beat": "1/4", "bpm": 120}, t1
# pickup + 8 bars written, played twice (one repeat): 9 written, 18 played
assert t1["bars_written"] == 9 and t1["bars_played"] == 18, t1
# 3/4 at 1/4=120: pickup 1/4 + 7 bars of 3/4 + last bar 1/2 = 6 whole notes = 12 s; played twice
assert abs(t1["seconds"] - 12.0) < 1e-6 and abs(t1["seconds_played"] - 24.0) < 1e-6, t1
assert t2["key"] == "D minor" and t2["bars_written"] == 2 and t2["bars_played"] == 4, t2
PY
expect 1 "info missing tune" -- "$m" abc info --tune 5 "$data/valid.abc"
expect 0 "info text" -- "$m" abc info "$data/valid.abc"
grep -q "Valid Tune" "$tmp/out" || { echo "FAIL: info text"; fail=1; }
[[ $fail -eq 0 ]] && echo "abc CLI: all checks pass"
exit $fail

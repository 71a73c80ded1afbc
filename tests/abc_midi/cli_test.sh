#!/usr/bin/env bash
# melodist abc midi / wav on the command line: exit codes, messages, atomic output, and a WAV of the right
# length. usage: cli_test.sh MELODIST WORKDIR
set -uo pipefail
melodist=$1
work=$2
here=$(cd "$(dirname "$0")" && pwd)
abc=$here/data/features.abc
mkdir -p "$work" && cd "$work" && rm -f ./*.mid ./*.wav ./*.tmp*
failures=0

# expect STATUS PATTERN COMMAND...: the command exits with STATUS and its stderr matches PATTERN.
expect() {
  local want=$1 pattern=$2
  shift 2
  "$@" >out.txt 2>err.txt
  local got=$?
  if [[ $got -ne $want ]] || { [[ -n $pattern ]] && ! grep -qE -- "$pattern" err.txt; }; then
    echo "FAIL: '$*' exited $got (want $want), stderr: $(head -c 300 err.txt) (want /$pattern/)"
    failures=$((failures + 1))
  fi
}

expect 0 '' "$melodist" abc midi "$abc" -o first.mid
expect 0 '' "$melodist" abc midi --tune 3 -o third.mid --chords "$abc"
expect 0 '' "$melodist" abc midi - -o stdin.mid <"$abc"
cmp -s first.mid stdin.mid || { echo "FAIL: stdin and file input give different MIDI"; failures=$((failures + 1)); }
# The first tune by default: the same file as --tune 1, and a different one from X:3.
"$melodist" abc midi "$abc" --tune 1 -o one.mid
cmp -s first.mid one.mid || { echo "FAIL: the default tune is not the first"; failures=$((failures + 1)); }
cmp -s first.mid third.mid && { echo "FAIL: --tune 3 gives the first tune"; failures=$((failures + 1)); }

expect 2 'no output file' "$melodist" abc midi "$abc"
expect 2 'reference number' "$melodist" abc midi "$abc" -o x.mid --tune three
expect 2 'unknown option' "$melodist" abc midi "$abc" -o x.mid --bogus
expect 2 'ticks per quarter' "$melodist" abc midi "$abc" -o x.mid --tpq 0
expect 1 'no tune X:9.*X:1.*X:5' "$melodist" abc midi "$abc" -o x.mid --tune 9
expect 1 'cannot read /nonexistent.abc' "$melodist" abc midi /nonexistent.abc -o x.mid
expect 1 'holds no tune' sh -c "echo 'no tune here' | '$melodist' abc midi -o x.mid"
expect 1 '/nonexistent-dir/x.mid' "$melodist" abc midi "$abc" -o /nonexistent-dir/x.mid
expect 1 'soundfont /nonexistent.sf2' "$melodist" abc wav "$abc" -o x.wav --soundfont /nonexistent.sf2
[[ -e x.mid || -e x.wav ]] && { echo "FAIL: a failed command left an output file"; failures=$((failures + 1)); }
# A bad tune is reported with its position, and still rendered (as abc2midi does).
printf 'X:1\nT:t\nK:C\nA/0 B c|\n' >bad.abc
expect 0 'bad.abc:4:[0-9]+: error' "$melodist" abc midi bad.abc -o bad.mid
[[ -s bad.mid ]] || { echo "FAIL: the bad tune was not rendered"; failures=$((failures + 1)); }
# A failed write keeps the previous file intact (not checkable as root, who writes anyway).
cp first.mid keep.mid
chmod a-w . 2>/dev/null
if [[ ! -w . ]]; then
  expect 1 'keep.mid' "$melodist" abc midi "$abc" --tune 3 -o keep.mid
  cmp -s first.mid keep.mid || { echo "FAIL: a failed write changed the old file"; failures=$((failures + 1)); }
fi
chmod u+w .
ls ./*.tmp* >/dev/null 2>&1 && { echo "FAIL: temporary files left behind"; failures=$((failures + 1)); }

# WAV of X:2: three bars of 3/4 at Q:3/8=60 (one dotted quarter per second) = 6 dotted quarters = 6 s.
if [[ -r /usr/share/sounds/sf2/FluidR3_GM.sf2 ]]; then
  expect 0 'wrote tune2.wav' "$melodist" abc wav "$abc" --tune 2 --chords -o tune2.wav
  /usr/bin/python3 "$here/wav_check.py" tune2.wav 6.0 || failures=$((failures + 1))
  # X:5 changes tempo on the way: 5 quarters at 120 per minute, then 21 at 90 (repeat played) = 16.5 s.
  expect 0 'wrote tune5.wav' "$melodist" abc wav "$abc" --tune 5 -o tune5.wav
  /usr/bin/python3 "$here/wav_check.py" tune5.wav 16.5 || failures=$((failures + 1))
else
  echo "SKIP: WAV part (no soundfont; Debian fluid-soundfont-gm)"
fi

echo "cli_test: $failures failure(s)"
[[ $failures -eq 0 ]]

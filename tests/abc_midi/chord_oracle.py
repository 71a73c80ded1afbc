#!/usr/bin/python3
"""The chord accompaniment's notes against abc2midi's guitar-chord notes, chord symbol by chord symbol.

One bar of rest per chord symbol (4/4); `melodist abc midi --chords` and abc2midi both accompany it. Per bar,
the pitch classes of the bass notes and of the chord notes must be equal. abc2midi plays 9th chords with the
9th, we play the seventh chord under it: there the 9th is the only tone allowed to be missing. Symbols abc2midi
does not know (it reports an error) are not compared with it; Nottingham's own spellings ("Cd" diminished, "Ca"
augmented, "D/f+" D over F sharp; its SOURCE.md) are checked against those stated meanings instead.

usage: chord_oracle.py MELODIST WORKDIR"""
import collections
import os
import re
import subprocess
import sys

ROOTS = ["C", "G", "D", "A", "E", "B", "F#", "Db", "Ab", "Eb", "Bb", "F"]
QUALITIES = ["", "m", "7", "m7", "maj7", "M7", "6", "m6", "aug", "+", "dim", "dim7", "9", "m9", "sus", "sus2",
             "m7b5"]
SLASHED = ["G/B", "D7/F#", "Am/G", "C/E", "F/C", "Em/D", "Bb/D"]
# Nottingham spellings: (symbol, bass pitch class, chord pitch classes) from its SOURCE.md.
NOTTINGHAM = [("Cd", 0, {0, 3, 6}), ("Ca", 0, {0, 4, 8}), ("D/f+", 6, {2, 6, 9}), ("Gm/bb", 10, {7, 10, 2}),
              ("Fa7", 5, {5, 9, 1, 3})]
BAR = 1920  # ticks of a 4/4 bar at 480 per quarter


def bar_pitch_classes(midi, bass_channels, chord_channels, offset):
    out = subprocess.run(["mftext", midi], capture_output=True, text=True, check=True).stdout
    bars = collections.defaultdict(lambda: (set(), set()))
    for line in out.splitlines():
        m = re.match(r"Time=(\d+)\s+Note on, chan=(\d+) pitch=(\d+) vol=(\d+)", line)
        if not m or int(m.group(4)) == 0:
            continue
        tick, chan, pitch = int(m.group(1)) - offset, int(m.group(2)), int(m.group(3))
        if chan in bass_channels:
            bars[tick // BAR][0].add(pitch % 12)
        elif chan in chord_channels:
            bars[tick // BAR][1].add(pitch % 12)
    return bars


def main():
    melodist, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    symbols = [r + q for r in ROOTS for q in QUALITIES] + SLASHED + [s for s, _, _ in NOTTINGHAM]
    abc = os.path.join(work, "chords.abc")
    with open(abc, "w") as f:
        f.write("X:1\nT:chords\nM:4/4\nL:1/4\nK:C\n" + "|".join(f'"{s}"z4' for s in symbols) + "|]\n")
    theirs, ours = os.path.join(work, "theirs.mid"), os.path.join(work, "ours.mid")
    r = subprocess.run(["abc2midi", abc, "-o", theirs], capture_output=True, text=True)
    unknown = set(re.findall(r'Unrecognized chord name "([^"]*)"', r.stdout + r.stderr))
    subprocess.run([melodist, "abc", "midi", abc, "--chords", "-o", ours], check=True)
    # abc2midi: bass on channel 2, chords on channel 3, one tick late. Ours: the melody has channel 1 (no notes),
    # then bass on 2 and chords on 3 (mftext counts channels from 1).
    their_bars = bar_pitch_classes(theirs, {2}, {3}, 1)
    our_bars = bar_pitch_classes(ours, {2}, {3}, 0)
    problems, compared = [], 0
    stated = {s: (b, c) for s, b, c in NOTTINGHAM}
    for i, s in enumerate(symbols):
        ours_bass, ours_chord = our_bars[i]
        if s in stated:
            want_bass, want_chord = {stated[s][0]}, stated[s][1]
        elif re.sub(r"^[A-G][#b]?", "", s.split("/")[0]) in unknown:
            continue
        else:
            want_bass, want_chord = their_bars[i]
        compared += 1
        ninth = set()
        if re.search(r"9", s):
            ninth = want_chord - ours_chord
            ninth = ninth if len(ninth) == 1 else set()
        if ours_bass != want_bass or ours_chord | ninth != want_chord:
            problems.append(f'"{s}": bass {sorted(ours_bass)} chord {sorted(ours_chord)}, '
                            f"want bass {sorted(want_bass)} chord {sorted(want_chord)}")
    print("\n".join(problems))
    print(f"chord_oracle: {compared - len(problems)}/{compared} chord symbols agree "
          f"({len(unknown)} qualities abc2midi does not know: {sorted(unknown)})")
    return 1 if problems or compared < len(symbols) // 2 else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Reads a MIDI file with mftext (Debian abcmidi: an independent SMF reader) and compares it with the
expected content written by one of our test programs.

Expected lines (channels 0-based, as in the file):
  header NTRKS DIVISION
  name TRACK TEXT              tempo TRACK TICK USEC       timesig TRACK TICK NUM DEN
  keysig TRACK TICK SHARPS MINOR                          program TRACK TICK CHANNEL PROGRAM
  note TRACK CHANNEL PITCH ON OFF                          an exact note
  loose TRACK CHANNEL PITCH FROM TO                        a note sounding within [FROM, TO]
                                                           (grace notes and the notes they delay)
  chordspan TRACK FROM TO PCMASK BASS                      on an accompaniment TRACK: within [FROM, TO]
      only notes whose pitch class is in PCMASK (bit 0 = C), and a bass note (below C3 = 48) of pitch
      class BASS at FROM; every note of the track must lie within one span
Also checks what every file must satisfy: each note-off has a note-on, nothing is left sounding, at one tick
a note's end comes before the same pitch starts again, and every track ends at the same tick.

usage: mftext_compare.py EXPECTED.txt FILE.mid      exit 0 equal, 1 different
"""
import collections
import re
import subprocess
import sys


def read_mftext(path):
    out = subprocess.run(["mftext", path], capture_output=True, text=True, check=True).stdout
    facts, notes, problems, ends = [], collections.Counter(), [], set()
    track = -1
    open_notes = collections.defaultdict(list)
    last_tick = collections.defaultdict(lambda: -1)
    lines = out.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"Header format=(\d+) ntrks=(\d+) division=(\d+)", line)
        if m:
            facts.append(("header", m.group(2), m.group(3)))
            continue
        if line.startswith("Track start"):
            track += 1
            continue
        m = re.match(r"Time=(\d+)\s+(.*)", line)
        if not m:
            continue
        tick, what = int(m.group(1)), m.group(2)
        if tick < last_tick[track]:
            problems.append(f"track {track}: time goes backwards at {tick}")
        last_tick[track] = tick
        if m := re.match(r"Note (on|off), chan=(\d+) pitch=(\d+) vol=(\d+)", what):
            kind, chan, pitch, vol = m.group(1), int(m.group(2)) - 1, int(m.group(3)), int(m.group(4))
            k = (track, chan, pitch)
            if kind == "on" and vol > 0:
                if open_notes[k] and open_notes[k][-1] == tick:
                    problems.append(f"track {track}: pitch {pitch} struck twice at {tick}")
                open_notes[k].append(tick)
            elif not open_notes[k]:
                problems.append(f"track {track}: note-off without note-on, pitch {pitch} at {tick}")
            else:
                start = open_notes[k].pop()  # last in, first out: a misordered off/on pair shows as length 0
                if start == tick:
                    problems.append(f"track {track}: zero-length note, pitch {pitch} at {tick}")
                notes[(track, chan, pitch, start, tick)] += 1
        elif m := re.match(r"Tempo, microseconds-per-MIDI-quarter-note=(\d+)", what):
            facts.append(("tempo", str(track), str(tick), m.group(1)))
        elif m := re.match(r"Time signature=(\d+)/(\d+)", what):
            facts.append(("timesig", str(track), str(tick), m.group(1), m.group(2)))
        elif m := re.match(r"Key signature, sharp/flats=(-?\d+)\s+minor=(\d+)", what):
            facts.append(("keysig", str(track), str(tick), m.group(1), m.group(2)))
        elif m := re.match(r"Program, chan=(\d+) program=(\d+)", what):
            facts.append(("program", str(track), str(tick), str(int(m.group(1)) - 1), m.group(2)))
        elif what.startswith("Meta Text, type=0x03"):
            text = re.match(r"\s*Text = <(.*)>$", lines[i + 1]).group(1)
            facts.append(("name", str(track), text))
        elif what.startswith("Meta event, end of track"):
            ends.add(tick)
    for k, starts in open_notes.items():
        if starts:
            problems.append(f"track {k[0]}: pitch {k[2]} never ends")
    if len(ends) > 1:
        problems.append(f"tracks end at different ticks: {sorted(ends)}")
    return facts, notes, problems


def main():
    expected_path, midi_path = sys.argv[1], sys.argv[2]
    facts, notes, problems = read_mftext(midi_path)
    want_facts, want_notes, loose, spans = [], collections.Counter(), [], []
    for line in open(expected_path, encoding="utf-8"):
        parts = line.rstrip("\n").split(" ")
        if parts[0] == "note":
            want_notes[tuple(int(x) for x in parts[1:6])] += 1
        elif parts[0] == "loose":
            loose.append(tuple(int(x) for x in parts[1:6]))
        elif parts[0] == "chordspan":
            spans.append(tuple(int(x) for x in parts[1:6]))
        elif parts[0] == "name":
            want_facts.append(("name", parts[1], " ".join(parts[2:])))
        elif parts[0]:
            want_facts.append(tuple(parts))
    span_tracks = {s[0] for s in spans}
    accompaniment = [n for n in notes.elements() if n[0] in span_tracks]
    notes = collections.Counter(n for n in notes.elements() if n[0] not in span_tracks)
    for track, chan, pitch, on, off in accompaniment:
        if not any(t == track and lo <= on and off <= hi and mask >> (pitch % 12) & 1 for t, lo, hi, mask, _ in spans):
            problems.append(f"accompaniment note {pitch} [{on}, {off}] outside the chord sounding then")
    for track, lo, hi, mask, bass in spans:
        if not any(n[0] == track and n[3] == lo and n[2] < 48 and n[2] % 12 == bass for n in accompaniment):
            problems.append(f"no bass note of pitch class {bass} at {lo} on track {track}")
    missing = want_notes - notes
    extra = notes - want_notes
    for track, chan, pitch, lo, hi in loose:
        match = next((n for n in extra if n[:3] == (track, chan, pitch) and lo <= n[3] and n[4] <= hi), None)
        if match:
            extra[match] -= 1
            extra = +extra
        else:
            problems.append(f"no note of pitch {pitch} within [{lo}, {hi}] on track {track}")
    for n in sorted(missing.elements())[:10]:
        problems.append(f"missing note (track, chan, pitch, on, off) = {n}")
    for n in sorted(extra.elements())[:10]:
        problems.append(f"unexpected note (track, chan, pitch, on, off) = {n}")
    if sorted(facts) != sorted(want_facts):
        problems.append(f"meta/program events differ:\n  mftext:   {sorted(facts)}\n  expected: {sorted(want_facts)}")
    total = sum(want_notes.values()) + len(loose) + len(accompaniment)
    if problems:
        print(f"{midi_path}: {len(problems)} problems ({len(missing)} missing, {len(extra)} unexpected of {total} notes)")
        print("\n".join(problems[:30]))
        return 1
    print(f"{midi_path}: {total} notes and {len(facts)} meta/program events as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Oracle: our played note events against abc2midi + mftext, tune by tune.

abc2midi realises decorations (ornaments as extra notes, staccato at half length, fermatas longer); they are
blanked out (spaces, positions kept) in the copy abc2midi reads, so both sides play the written notes.

For every tune of the given ABC files that abc2midi accepts without error, compare per voice the sounding
notes (pitch, start tick, duration tick; repeats expanded, ties merged, grace notes/ornaments/guitar chords
off) with the note on/off pairs of abc2midi's MIDI file, read back by mftext. Tunes listed in
oracle_known_differences.tsv (X, file, reason) may differ. Passes when >= 99.5% of the compared tunes agree
and every disagreeing tune is listed.

usage: oracle_abc2midi.py ABC_EVENTS_BINARY KNOWN_DIFFERENCES.tsv FILE.abc...
"""
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from abcmidi_notes import ABC2MIDI_FLAGS, mftext_notes  # noqa: E402

TPQ = 480


def order(note):
    return (note[1], note[0], note[2])


def ours(binary, path, stripped):
    """{x: [sorted notes of voice 0, voice 1, ...]} with voices that have no notes dropped; writes the
    decoration-free copy of the file for abc2midi to `stripped`."""
    out = subprocess.run([binary, path, stripped], capture_output=True, text=True, check=True).stdout
    tunes, x, voice = {}, None, None
    for line in out.splitlines():
        f = line.split()
        if f[0] == "X":
            x = int(f[1])
            tunes[x] = []
        elif f[0] == "V":
            voice = []
            tunes[x].append(voice)
        else:
            voice.append(tuple(int(v) for v in f))
    return {x: [sorted(v, key=order) for v in vs if v] for x, vs in tunes.items()}


def tune_lines(path):
    """[(first line, last line, X)] of the tunes in a file."""
    spans, cur = [], None
    with open(path, encoding="utf-8", errors="replace") as fh:
        lines = fh.read().split("\n")
    for i, line in enumerate(lines, 1):
        if line.startswith("X:"):
            if cur:
                spans.append((cur[0], i - 1, cur[1]))
            try:
                cur = (i, int(line[2:].split()[0]))
            except (ValueError, IndexError):
                cur = None
    if cur:
        spans.append((cur[0], len(lines), cur[1]))
    return spans, lines


def check_file(args):
    binary, path = args
    work = tempfile.mkdtemp(prefix="oracle-")
    try:
        stripped = os.path.join(work, "stripped.abc")
        mine = ours(binary, path, stripped)
        spans, lines = tune_lines(stripped)
        # Chords start together: a chordattack of 0 in every tune (one added line after X:).
        copy = os.path.join(work, "t.abc")
        added = []
        with open(copy, "w", encoding="utf-8", errors="replace") as fh:
            for i, line in enumerate(lines, 1):
                if line.startswith("%%MIDI") or line.startswith("R:"):
                    # MIDI rendering settings (transpose, trim, drones...) are not notation, and abc2midi
                    # swings R:hornpipe tunes
                    line = "%"
                fh.write(line + "\n")
                if line.startswith("X:"):
                    fh.write("%%MIDI chordattack 0\n")
                    added.append(i + len(added) + 1)  # line number of the added line in the copy
        res = subprocess.run(["abc2midi", copy] + ABC2MIDI_FLAGS, cwd=work, capture_output=True, text=True,
                             errors="replace")
        rejected = set()
        for m in re.finditer(r"Error in line-char (\d+)-", res.stdout + res.stderr):
            copy_line = int(m[1])
            orig = copy_line - sum(1 for a in added if a < copy_line)
            for first, last, x in spans:
                if first <= orig <= last:
                    rejected.add(x)
        results = []
        for first, last, x in spans:
            mid = os.path.join(work, "t%d.mid" % x)
            if x in rejected or not os.path.exists(mid):
                results.append((path, x, "rejected", ""))
                continue
            theirs = mftext_notes(mid, late_start=True, key=order)  # abc2midi starts every note one tick late
            got = mine.get(x, [])
            if theirs == got:
                results.append((path, x, "equal", ""))
            else:
                results.append((path, x, "differ", describe(got, theirs)))
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


def describe(got, theirs):
    if len(got) != len(theirs):
        return "voices: ours %d, abc2midi %d" % (len(got), len(theirs))
    for v, (a, b) in enumerate(zip(got, theirs)):
        if a != b:
            for i, (p, q) in enumerate(zip(a, b)):
                if p != q:
                    return "voice %d note %d: ours %s abc2midi %s" % (v, i, p, q)
            return "voice %d: ours %d notes, abc2midi %d" % (v, len(a), len(b))
    return "?"


def main():
    binary, known_path, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    files = [f for f in files if os.path.exists(f)]
    if not files or not shutil.which("abc2midi") or not shutil.which("mftext"):
        print("SKIP: no ABC files or abc2midi/mftext missing")
        return 77
    known = {}
    if os.path.exists(known_path):
        with open(known_path, encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("#") or not line.strip():
                    continue
                x, name, reason = line.rstrip("\n").split("\t", 2)
                known[(name, int(x))] = reason
    # Split the files into chunks of tunes so both cores stay busy.
    with multiprocessing.Pool(2) as pool:
        results = [r for rs in pool.map(check_file, [(binary, f) for f in files]) for r in rs]
    compared = [r for r in results if r[2] != "rejected"]
    equal = [r for r in compared if r[2] == "equal"]
    differ = [r for r in compared if r[2] == "differ"]
    unlisted = [r for r in differ if (os.path.basename(r[0]), r[1]) not in known]
    pct = 100.0 * len(equal) / max(1, len(compared))
    print("tunes: %d, rejected by abc2midi: %d, compared: %d, equal: %d (%.2f%%), differ: %d (unlisted %d)"
          % (len(results), len(results) - len(compared), len(compared), len(equal), pct, len(differ), len(unlisted)))
    fixed = sorted(set(known) - {(os.path.basename(r[0]), r[1]) for r in differ}
                   & {(os.path.basename(r[0]), r[1]) for r in compared})
    if fixed:
        print("listed as different but now equal: %s" % " ".join("%s:%d" % k for k in fixed))
    for path, x, _, why in unlisted[:40]:
        print("UNLISTED %s X:%d %s" % (os.path.basename(path), x, why))
    if os.environ.get("ORACLE_WRITE_DIFFS"):
        with open(os.environ["ORACLE_WRITE_DIFFS"], "w") as fh:
            for path, x, _, why in differ:
                fh.write("%d\t%s\t%s\n" % (x, os.path.basename(path), why))
    return 0 if pct >= 99.5 and not unlisted else 1


if __name__ == "__main__":
    sys.exit(main())

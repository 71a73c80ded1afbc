#!/usr/bin/python3
"""Our MIDI file against abc2midi's, both read back with mftext (Debian abcmidi).

For each tune: `melodist abc midi FILE --tune X` and `abc2midi FILE X -NGUI` (no chord accompaniment, which
abc2midi plays with its own pattern); the notes of each voice (pitch, on, off in ticks at 480 per quarter,
repeats played) must be equal, and so must the tempo changes (tick and value, repeats played too) and the
time and key signature at the start. abc2midi starts every
note one tick late (on = start + 1) and staggers chord notes by 10 ticks; both are undone before comparing. Tunes abc2midi reports errors for are
skipped, as are tunes holding what abc2midi plays its own way (decorations it realises as ornaments,
hornpipes it swings, notes it shortens by %%MIDI trim, its %%MIDI drum track).

usage: abc2midi_compare.py MELODIST WORKDIR [--min-agree FRACTION] [--sample N] FILE.abc...
  --sample N   every tune of the file when N is 0, else N tunes spread evenly over it
exit 0 when the fraction of agreeing tunes is at least --min-agree (default 1.0), 77 when an input is missing
"""
import argparse
import collections
import os
import re
import subprocess
import sys


def mftext_summary(path):
    out = subprocess.run(["mftext", path], capture_output=True, text=True, check=True).stdout
    voices = collections.defaultdict(list)
    meta = {}
    open_notes = collections.defaultdict(list)
    track = -1
    for line in out.splitlines():
        if line.startswith("Track start"):
            track += 1
        m = re.match(r"Time=(\d+)\s+(.*)", line)
        if not m:
            continue
        tick, what = int(m.group(1)), m.group(2)
        if n := re.match(r"Note (on|off), chan=(\d+) pitch=(\d+) vol=(\d+)", what):
            chan, pitch = int(n.group(2)), int(n.group(3))
            if chan == 10:  # abc2midi's %%MIDI drum pattern: an accompaniment of its own
                continue
            if n.group(1) == "on" and int(n.group(4)) > 0:
                open_notes[(chan, pitch)].append(tick)
            elif open_notes[(chan, pitch)]:
                voices[chan].append((open_notes[(chan, pitch)].pop(0), tick, pitch))
        elif track > 0:  # abc2midi repeats the settings, placed differently, in the voice tracks
            continue
        elif n := re.match(r"Tempo, microseconds-per-MIDI-quarter-note=(\d+)", what):
            setting(meta, "tempo", tick, int(n.group(1)))
        elif n := re.match(r"Time signature=(\d+/\d+)", what):
            setting(meta, "meter", tick, n.group(1))
        elif n := re.match(r"Key signature, sharp/flats=(-?\d+)\s+minor=(\d+)", what):
            setting(meta, "key", tick, (int(n.group(1)), int(n.group(2))))
    if not meta.get("meter") or meta["meter"][0][0] > 0:  # the SMF default, which abc2midi writes out
        meta.setdefault("meter", []).insert(0, (0, "4/4"))
    for kind, changes in meta.items():  # a change to the value already in force changes nothing
        meta[kind] = [c for i, c in enumerate(changes) if i == 0 or c[1] != changes[i - 1][1]]
    # Voices in channel order; each voice's notes sorted.
    return [sorted(voices[c]) for c in sorted(voices)], meta


def setting(meta, kind, tick, value):
    """Records a tempo/meter/key change. abc2midi writes some a tick late (at 1 instead of 0, or with the note
    after it); of changes within one tick of each other the last one counts, at the first one's tick."""
    changes = meta.setdefault(kind, [])
    if changes and tick - changes[-1][0] <= 1:
        changes[-1] = (changes[-1][0], value)
    else:
        changes.append((0 if tick <= 1 else tick, value))


def same_settings(theirs, ours):
    """The tempo changes equal, and the meter and key at the start. abc2midi writes a tempo change up to one
    tick late, or early: before the rests that precede the note it belongs to; so its tick may lie anywhere
    after our previous change, up to ours + 1. (Meter and key changes on the way do not sound, and abc2midi
    places them by rules of its own: in the voice tracks, not again at repeats.)"""
    if theirs.keys() != ours.keys() or any(theirs[k][0] != ours[k][0] for k in ("meter", "key") if k in theirs):
        return False
    a, b = theirs.get("tempo", []), ours.get("tempo", [])
    if len(a) != len(b):
        return False
    for i, (x, y) in enumerate(zip(a, b)):
        earliest = b[i - 1][0] if i else 0
        if x[1] != y[1] or not earliest <= x[0] <= y[0] + 1:
            return False
    return True


def unstagger(notes):
    """abc2midi strikes the notes of a [chord] 10 ticks apart; put them back together (same end, start
    within 10 ticks per note of the first)."""
    out, group_on, group_off, k = [], None, None, 0
    for on, off, p in sorted(notes, key=lambda n: (n[1], n[0])):
        k = k + 1 if off == group_off and on - group_on <= 10 * (k + 1) else 0
        if k == 0:
            group_on, group_off = on, off
        out.append((group_on, off, p))
    return sorted(out)


def tune_numbers(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return [int(m.group(1)) for m in re.finditer(r"^X:\s*(\d+)", f.read(), re.M)]


def tune_text(path, x):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    m = re.search(rf"^X:\s*{x}\b.*?(?=^X:|\Z)", text, re.M | re.S)
    return m.group(0) if m else ""


# Decorations abc2midi turns into extra notes or changed lengths (ornaments, fermata, staccato...).
PLAYED_DIFFERENTLY = re.compile(r"![^!\n]*!|\+[a-z]+\+|[~.HLMOPSTuv](?=[\^_=]*[A-Ga-g\[])")


def compare(melodist, work, path, x):
    text = tune_text(path, x)
    body = "\n".join(l for l in text.splitlines() if not re.match(r"^[A-Za-z]:|^%", l))
    if PLAYED_DIFFERENTLY.search(body):
        return "skip", "decorations abc2midi realises"
    if re.search(r"^R:\s*hornpipe", text, re.M | re.I):
        return "skip", "abc2midi swings hornpipes"
    if re.search(r"^%%MIDI\s+trim", text, re.M):
        return "skip", "abc2midi shortens notes by %%MIDI trim"
    theirs, ours = os.path.join(work, "theirs.mid"), os.path.join(work, "ours.mid")
    for f in (theirs, ours):
        if os.path.exists(f):
            os.unlink(f)
    r = subprocess.run(["abc2midi", path, str(x), "-NGUI", "-o", theirs], capture_output=True, text=True)
    if re.search(r"^Error", r.stdout + r.stderr, re.M) or not os.path.exists(theirs):
        return "skip", "abc2midi reports errors"
    r = subprocess.run([melodist, "abc", "midi", path, "--tune", str(x), "-o", ours], capture_output=True, text=True)
    if r.returncode != 0:
        return "fail", f"melodist abc midi exit {r.returncode}: {r.stderr.strip()[:200]}"
    their_voices, their_meta = mftext_summary(theirs)
    our_voices, our_meta = mftext_summary(ours)
    their_voices = [unstagger([(on - 1, off, p) for on, off, p in v]) for v in their_voices]
    if not same_settings(their_meta, our_meta):
        return "fail", f"meta events: abc2midi {their_meta}, ours {our_meta}"
    if len(their_voices) != len(our_voices):
        return "fail", f"{len(their_voices)} voices with notes in abc2midi's file, {len(our_voices)} in ours"
    for v, (a, b) in enumerate(zip(their_voices, our_voices)):
        if a != b:
            sa, sb = collections.Counter(a), collections.Counter(b)
            first = sorted((sa - sb).elements())[:3], sorted((sb - sa).elements())[:3]
            return "fail", (f"voice {v + 1}: {len(a)} notes in abc2midi's file, {len(b)} in ours; "
                            f"only abc2midi (on, off, pitch): {first[0]}; only ours: {first[1]}")
    return "ok", f"{sum(len(v) for v in our_voices)} notes"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("melodist")
    ap.add_argument("work")
    ap.add_argument("--min-agree", type=float, default=1.0)
    ap.add_argument("--sample", type=int, default=0)
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    if not all(os.path.exists(f) for f in args.files):
        print("abc2midi_compare: SKIP: input missing (the shared corpus is at ../shared/data)")
        return 77
    os.makedirs(args.work, exist_ok=True)
    counts = collections.Counter()
    failures = []
    for path in args.files:
        xs = tune_numbers(path)
        if args.sample and len(xs) > args.sample:
            xs = [xs[i * len(xs) // args.sample] for i in range(args.sample)]
        for x in xs:
            status, detail = compare(args.melodist, args.work, path, x)
            counts[status] += 1
            if status == "fail":
                failures.append(f"{path} X:{x}: {detail}")
    compared = counts["ok"] + counts["fail"]
    agree = counts["ok"] / compared if compared else 0.0
    print("\n".join(failures))
    print(f"abc2midi_compare: {counts['ok']}/{compared} tunes agree ({100 * agree:.1f}%), {counts['skip']} skipped")
    return 0 if compared and agree >= args.min_agree else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Transposition judged by independent programs: abc2midi (the interpreter) and abc2abc -t (another
transposer), both from Debian's abcmidi.

For each sampled tune (SAMPLE: every 3rd of Nottingham, 2nd of Balkan, 40th of the Essen collections) and k in K_VALUES:
  O = notes abc2midi plays from the original tune
  N = notes abc2midi plays from `melodist abc transpose -k 0` (the tune only re-printed by our normaliser,
      so that a difference in how abc2midi reads the normalised layout is not blamed on the transposer)
  U = notes abc2midi plays from `melodist abc transpose -k k`
  A = notes abc2midi plays from `abc2abc -t k`
(notes per track: pitch, start tick, duration; read back with mftext). Checks U == N moved by k (our
transposer, judged by abc2midi's reading of both texts) and reports how often abc2abc's output gives O moved
by k, and how often both agree. Tunes abc2midi rejects (errors) are left out. Passes when U == N + k for
>= 99% of the compared transpositions. Known: %%MIDI drone pitches are directives, not notes, and stay.

usage: oracle_abc2abc.py MELODIST SHARED_DATA_DIR
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

K_VALUES = (-5, 3)
SAMPLE = {"nottingham": 3, "shlien_balkan": 2, "essen_europe": 40, "essen_china": 40}  # every n-th tune
BOUND = 99.0
MELODIST = None


def notes(abc_path, tmp):
    """abc2midi's notes of the single tune in abc_path, or None when abc2midi reports an error."""
    mid = os.path.join(tmp, "out.mid")
    if os.path.exists(mid):
        os.remove(mid)
    run = subprocess.run(["abc2midi", abc_path, "-o", mid] + ABC2MIDI_FLAGS, capture_output=True, text=True)
    if "Error" in run.stdout or "error" in run.stderr or not os.path.exists(mid):
        return None
    return mftext_notes(mid)


def shifted(tracks, k):
    return [sorted((p + k, s, d) for p, s, d in tr) for tr in tracks]


def check_tune(job):
    name, x, text = job
    tmp = tempfile.mkdtemp(prefix="ana_a2a_")
    try:
        orig = os.path.join(tmp, "orig.abc")
        with open(orig, "w", encoding="utf-8") as fh:
            fh.write(text)
        o = notes(orig, tmp)
        if o is None or not any(o):
            return []
        ours = os.path.join(tmp, "ours.abc")

        def transposed(k):
            with open(ours, "w", encoding="utf-8") as fh:
                subprocess.run([MELODIST, "abc", "transpose", orig, "-k", str(k)], stdout=fh,
                               stderr=subprocess.DEVNULL)
            return notes(ours, tmp)

        n = transposed(0)
        if n is None:
            return []
        results = []
        for k in K_VALUES:
            u = transposed(k)
            theirs = os.path.join(tmp, "a2a.abc")
            with open(theirs, "w", encoding="utf-8") as fh:
                subprocess.run(["abc2abc", orig, "-t", str(k)], stdout=fh, stderr=subprocess.DEVNULL)
            a = notes(theirs, tmp)
            results.append((name, x, k, u == shifted(n, k), a == shifted(o, k), a is not None and u == a,
                            n == o))
        return results
    finally:
        shutil.rmtree(tmp)


def tunes_of(path, every):
    text = open(path, encoding="utf-8").read()
    parts = re.split(r"\n(?=X:)", text)
    out = []
    for i, part in enumerate(p for p in parts if p.startswith("X:")):
        if i % every == 0:
            out.append((int(re.match(r"X:\s*(\d+)", part).group(1)), part.strip() + "\n"))
    return out


def main():
    global MELODIST
    MELODIST, data = sys.argv[1], sys.argv[2]
    if not os.path.isdir(data) or not shutil.which("abc2midi") or not shutil.which("abc2abc"):
        print("SKIP: shared data or abcmidi (abc2midi, abc2abc, mftext) missing")
        return 77
    jobs = []
    for name, every in SAMPLE.items():
        jobs += [(name, x, text) for x, text in tunes_of(os.path.join(data, name, name + ".abc"), every)]
    with multiprocessing.Pool(2) as pool:
        results = [r for rs in pool.map(check_tune, jobs, chunksize=8) for r in rs]
    n = len(results)
    ours_ok = sum(r[3] for r in results)
    a2a_ok = sum(r[4] for r in results)
    agree = sum(r[5] for r in results if r[4])
    print(f"{len(jobs)} tunes, {n} transpositions (k in {K_VALUES}) of tunes abc2midi reads without error")
    print(f"  melodist transpose: abc2midi plays the normalised original moved by k in {ours_ok}/{n} "
          f"({100.0 * ours_ok / max(1, n):.2f}%)")
    print(f"  abc2abc -t:         abc2midi plays the original moved by k in {a2a_ok}/{n} "
          f"({100.0 * a2a_ok / max(1, n):.2f}%)")
    print(f"  where abc2abc is right, abc2midi plays the same notes from both: {agree}/{a2a_ok} "
          f"({100.0 * agree / max(1, a2a_ok):.2f}%)")
    relaid = sum(1 for r in results if not r[6]) // len(K_VALUES)
    print(f"  (tunes whose normalised layout abc2midi plays differently from the original: {relaid})")
    bad = [f"{r[0]} X:{r[1]} k={r[2]}" for r in results if not r[3]]
    if bad:
        print(f"  ours differ ({len(bad)}): {', '.join(bad[:20])}")
    return 0 if 100.0 * ours_ok / max(1, n) >= BOUND else 1


if __name__ == "__main__":
    sys.exit(main())

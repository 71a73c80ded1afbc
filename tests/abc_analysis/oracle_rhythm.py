#!/usr/bin/python3
"""The engine's rhythm type (abc_analysis.rhythm_type) against the Nottingham Music Database's own labels.

    oracle_rhythm.py DUMP_TOOL SHARED_DATA_DIR

The oracle is the collection's editors: each Nottingham tune sits in a file of one dance type (index.tsv's group:
jigs, slip, reels*, hpps, waltzes). The labels the engine can be checked on are those its rule claims to read:
jigs (6/8), slip jigs (9/8), waltzes (3/4), reels in 4/4 or 2/2. Hornpipes are reported, not bounded: the
Nottingham editors write them in even notes, so their notes cannot tell them from reels (abc_analysis.h says so),
and the reels files' 2/4 tunes are polkas and marches. Exits 1 when the agreement is below its bound, 77 when the
shared data is missing.
"""
import collections
import os
import subprocess
import sys

dump, shared = sys.argv[1:3]
notts = os.path.join(shared, "nottingham")
if not os.path.exists(os.path.join(notts, "nottingham.abc")):
    print("SKIP: the shared Nottingham collection is absent")
    sys.exit(77)

LABEL = {"jigs": "jig", "slip": "slip jig", "hpps": "hornpipe", "waltzes": "waltz"}
CHECKED = {"jig": {"6/8"}, "slip jig": {"9/8"}, "waltz": {"3/4"}, "reel": {"4/4", "2/2"}}
BOUND = 99.0  # percent of the checked tunes

label = {}
with open(os.path.join(notts, "index.tsv"), encoding="utf-8") as index:
    next(index)
    for line in index:
        x, group = line.split("\t")[:2]
        label[x] = "reel" if group.startswith("reels") else LABEL.get(group)

out = subprocess.run([dump, os.path.join(notts, "nottingham.abc")], capture_output=True, text=True, check=True).stdout
agree, total, confusion = collections.Counter(), collections.Counter(), collections.Counter()
for line in out.splitlines():
    f = line.split("\t")
    want, meter, got = label.get(f[0]), f[4], f[16]
    if want is None:
        continue
    confusion[(want, meter, got)] += 1
    if meter in CHECKED.get(want, ()):
        total[want] += 1
        agree[want] += got == want

for (want, meter, got), n in sorted(confusion.items()):
    print(f"label {want:9} meter {meter:5} engine {got:10} {n:4} tunes")
checked, right = sum(total.values()), sum(agree.values())
if checked == 0:
    print("FAIL: no labelled tune was checked")
    sys.exit(1)
share = 100.0 * right / checked
print(f"agreement on the checked labels: {right}/{checked} = {share:.1f}% (bound {BOUND}%)")
for want in sorted(total):
    print(f"  {want}: {agree[want]}/{total[want]}")
sys.exit(0 if share >= BOUND and all(agree[w] for w in CHECKED) else 1)

"""melodist data build on small fixtures: repairs, de-duplication and splits, pass-through inputs, JSONL validity,
engine re-check of the answers, byte-identical reruns, and clean failure on malformed inputs (nothing partial)."""
import json
import os
import shutil
import sys

from common import (build, fail, quoted_tune, read_documents, read_records, recheck_and_rerun, tree_bytes,
                    without_x)

melodist, checker, fixtures, work = sys.argv[1:5]
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
inputs = [os.path.join(fixtures, n) for n in ("small.abc", "irishman.jsonl", "musicpile.jsonl", "knowledge.md")]

out = os.path.join(work, "out")
build(melodist, out, inputs)
stats = json.load(open(os.path.join(out, "stats.json")))
expect = {"tunes_read": 9, "exact_duplicates": 1, "knowledge_docs": 1, "musicpile_records": 3, "lyrics_tunes": 1}
for k, v in expect.items():
    if stats[k] != v:
        fail(f"stats.json {k} = {stats[k]}, the fixtures hold {v}")
if stats["drops"] != {"invalid: bar-length": 1}:
    fail(f"drops {stats['drops']}: only 'Broken Bars' has a wrong bar length")
if stats["repairs"] != {"missing X:": 2, "placeholder meter": 2, "stray ] in field": 1}:
    fail(f"repairs {stats['repairs']}")

docs = {s: read_documents(out, s) for s in ("train", "valid", "test")}
by_title = {}
for split, ds in docs.items():
    for d in ds:
        for line in d.split("\n"):
            if line.startswith("T:"):
                by_title.setdefault(line[2:], set()).add(split)
# X:1 is suggested 'test'; X:4 (same melody) and X:5 / X:7 (transposed copy) must follow it there.
for title in ("Placeholder Meter Jig", "Placeholder Meter Jig Again", "Transposed Copy"):
    if by_title.get(title) != {"test"}:
        fail(f"'{title}' is in {by_title.get(title)}, expected only test (same melody as a test tune)")
jig = next(d for d in docs["test"] if "T:Placeholder Meter Jig\n" in d)
header = jig.split("K:")[0]
if "M:6/8" not in header or "M:4/4" in jig or "L:1/8" not in header:
    fail("placeholder meter not repaired:\n" + jig)
song = next(d for ds in docs.values() for d in ds if "Stray Bracket" in d)
if "]" in song.split("K:")[0]:
    fail("stray ] left in a field:\n" + song)
if not any("号子是劳动时演唱的民歌" in d for d in docs["train"]):
    fail("the knowledge text is not in train/pretrain.txt")
if not any("K:Ador" in d for ds in docs.values() for d in ds):
    fail("the IrishMAN tune without X: is missing")

records = read_records(out)
# MusicPile records as Python's json decodes them (escapes, surrogate pairs), markers removed as documented.
pile = sorted((r[2], r[3]) for s in records.values() for r in s if r[0] == "musicpile")
want = []
for line in open(os.path.join(fixtures, "musicpile.jsonl"), encoding="utf-8"):
    o = json.loads(line)
    ins = o["instruction"].replace("Human: ", "").strip()
    inp = o["input"].replace("</s>", "").strip()
    outp = o["output"].replace("</s>", "").replace("Assistant: ", "").strip()
    want.append((ins + ("\n" + inp if inp else ""), outp))
if pile != sorted(want):
    fail(f"MusicPile records not passed through as JSON decodes them: {pile} != {sorted(want)}")
test_tunes = {without_x(d) for d in docs["test"] if d.startswith("X:")}
for task, _, inp, outp in records["train"]:
    for t in (quoted_tune(inp), quoted_tune(outp)):
        if t and without_x(t) in test_tunes:
            fail(f"a test tune appears in a train {task} record")
recheck_and_rerun(melodist, checker, records, work, out, inputs, 3000)

# Malformed inputs: a clear message with file:line, exit 1, and nothing written.
cases = [
    ([os.path.join(fixtures, "bad.jsonl")], [], "bad.jsonl:2: invalid JSON"),
    ([inputs[0]], ["--knowledge", os.path.join(fixtures, "bad_utf8.txt")], "bad_utf8.txt:2: invalid UTF-8"),
    ([os.path.join(fixtures, "index.tsv")], [], "unknown input type"),
    ([os.path.join(fixtures, "missing.abc")], [], "cannot open"),
]
for args, extra, message in cases:
    bad = os.path.join(work, "bad")
    r = build(melodist, bad, inputs + args, extra, expect_rc=1)
    if message not in r.stderr:
        fail(f"expected '{message}' in the error, got: {r.stderr}")
    if os.path.exists(bad) or os.path.exists(bad + ".tmp"):
        fail(f"a failed build left output behind ({message})")
    # A failing rebuild keeps the previous good build as it was.
    before = tree_bytes(out)
    build(melodist, out, inputs + args, extra, expect_rc=1)
    if tree_bytes(out) != before or os.path.exists(out + ".tmp"):
        fail(f"a failed rebuild changed the previous build ({message})")

# A directory that is not a previous build is never replaced.
keep = os.path.join(work, "keep")
os.makedirs(keep)
open(os.path.join(keep, "notes.txt"), "w").write("mine")
r = build(melodist, keep, inputs, expect_rc=1)
if open(os.path.join(keep, "notes.txt")).read() != "mine" or "not a previous build" not in r.stderr:
    fail("refused --out directory handled wrongly: " + r.stderr)
print("data fixtures: ok")

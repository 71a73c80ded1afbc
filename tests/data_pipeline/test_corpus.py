"""melodist data build on the whole shared corpus (+ the pass-through fixtures): every task family produced, ~3/4
Chinese instructions, JSONL valid line by line, no test tune in any train output, stats.json consistent with the
files, every analysis answer re-checked by the engine, byte-identical rerun."""
import json
import os
import shutil
import sys

from common import CJK, build, fail, quoted_tune, read_documents, read_records, recheck_and_rerun, without_x

melodist, checker, shared, fixtures, work = sys.argv[1:6]
collections = [os.path.join(shared, c, c + ".abc") for c in ("nottingham", "essen_europe", "essen_china",
                                                              "shlien_balkan")]
if not all(os.path.exists(c) for c in collections):
    print("SKIP: shared corpus not found at", shared)
    sys.exit(77)
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
inputs = collections + [os.path.join(fixtures, n) for n in ("musicpile.jsonl", "knowledge.md")]

out = os.path.join(work, "out")
build(melodist, out, inputs)
stats = json.load(open(os.path.join(out, "stats.json")))
records = read_records(out)

tasks = ["continuation", "compose_mood", "compose_motif", "compose_chords", "compose_form", "compose_reference",
         "compose_style", "lyrics", "analysis_find_melody", "analysis_find_chord", "analysis_count",
         "analysis_progression", "harmonise", "melodise", "genre", "key_mode", "self_cognition", "musicpile"]
for split, rows in records.items():
    counts = {t: 0 for t in tasks}
    for r in rows:
        counts[r[0]] += 1
    if counts != stats["splits"][split]["tasks"]:
        fail(f"{split}: stats.json task counts {stats['splits'][split]['tasks']} != files {counts}")
    if split == "train":
        zero = [t for t in tasks if counts[t] == 0]
        if zero:
            fail(f"task families with no train record: {zero}")
        print("train records per task:", counts)
    docs = read_documents(out, split)
    tunes = sum(1 for d in docs if d.startswith("X:"))
    if tunes != stats["splits"][split]["tunes"]:
        fail(f"{split}: {tunes} tunes in pretrain.txt, stats.json says {stats['splits'][split]['tunes']}")

rows = [r for r in records["train"] if r[0] != "musicpile"]
zh = sum(1 for r in rows if CJK.search(r[2])) / len(rows)
print(f"Chinese instructions: {zh:.3f}")
if not 0.65 <= zh <= 0.85:
    fail(f"{zh:.3f} of the instructions are Chinese; about 3/4 expected")

test_tunes = {without_x(d) for d in read_documents(out, "test") if d.startswith("X:")}
train_docs = read_documents(out, "train")
leaks = [d for d in train_docs if without_x(d) in test_tunes]
for task, _, inp, outp in records["train"]:
    for t in (quoted_tune(inp), quoted_tune(outp)):
        if t and without_x(t) in test_tunes:
            leaks.append(task)
if leaks:
    fail(f"{len(leaks)} test tunes appear in train outputs, e.g. {leaks[0][:200]}")
print(f"test tunes: {len(test_tunes)}, none in train pretrain.txt or train SFT records")

recheck_and_rerun(melodist, checker, records, work, out, inputs, 4000)
print("data corpus: ok")

"""scripts/paraphrase-questions.py: the analysis questions of a data build reworded in held-out words.

Each output record must keep its family, its tune (the question's text from "X:" on) and its reference answer; its
question words must differ from the input's and be one of the script's wordings, with the phrase or chord the input
quotes; only the six analysis families come out. And the script must refuse to run when one of its wordings is a
training template of src/data/sft.c (a copy of the script beside a doctored sft.c).

usage: test_paraphrase.py MELODIST SCRIPT WORK_DIR INPUT.abc... (exit 77 when an input is absent)
"""
import json
import os
import re
import shutil
import subprocess
import sys

from common import build_inputs, fail

melodist, script, work, *inputs = sys.argv[1:]
out = build_inputs(melodist, work, inputs)
FAMILIES = {"key_mode", "analysis_count", "genre", "analysis_find_melody", "analysis_find_chord",
            "analysis_progression"}
QUOTED = re.compile(r"「([^」]*)」|`([^`]*)`")

source = os.path.join(out, "test", "sft.xtuner.jsonl")
if sum(json.loads(line)["task"] in FAMILIES for line in open(source, encoding="utf-8")) == 0:
    source = os.path.join(out, "sft.xtuner.jsonl")
reworded = os.path.join(work, "reworded.jsonl")
r = subprocess.run(["/usr/bin/python3", script, source, reworded], capture_output=True, text=True)
if r.returncode != 0:
    fail(f"paraphrase-questions exited {r.returncode}: {r.stderr}")

originals = {}
for line in open(source, encoding="utf-8"):
    rec = json.loads(line)
    turn = rec["conversation"][0]
    at = turn["input"].find("\nX:")
    if rec["task"] in FAMILIES and at >= 0:
        originals.setdefault((rec["task"], turn["input"][at + 1:], turn["output"]), []).append(turn["input"][:at])
namespace = {}
exec(compile(open(script, encoding="utf-8").read().split("CJK = ")[0], script, "exec"), namespace)
wordings = namespace["WORDINGS"]
count = 0
for line in open(reworded, encoding="utf-8"):
    rec = json.loads(line)
    turn = rec["conversation"][0]
    words, tune = turn["input"].split("\n", 1)
    before = originals.get((rec["task"], tune, turn["output"]))
    if rec["task"] not in FAMILIES or before is None:
        fail(f"{rec['task']}: a record whose tune and answer are not those of an input record")
    if words in before:
        fail(f"{rec['task']}: the question kept its training wording {words!r}")
    en, zh = wordings[rec["task"]]
    quoted = [q.group(1) or q.group(2) for q in QUOTED.finditer(before[0])]
    allowed = [w.format(*quoted[:1]) if "{}" in w else w for w in en + zh]
    if words not in allowed:
        fail(f"{rec['task']}: {words!r} is not one of the held-out wordings with the quoted {quoted[:1]}")
    count += 1
if count == 0:
    fail("no question came out")
print(f"ok: {count} questions reworded, tunes and answers kept")

# Bad input: a missing file and a file that is not SFT records give a clear error, and no output.
bad = os.path.join(work, "bad.jsonl")
with open(bad, "w", encoding="utf-8") as f:
    f.write("not json\n")
for given, says in ((os.path.join(work, "absent.jsonl"), "cannot read"), (bad, "line 1 is not an SFT record")):
    target = os.path.join(work, "never.jsonl")
    r = subprocess.run(["/usr/bin/python3", script, given, target], capture_output=True, text=True)
    if r.returncode == 0 or says not in r.stderr or os.path.exists(target) or os.path.exists(target + ".tmp"):
        fail(f"bad input {given}: exit {r.returncode}, {r.stderr.strip()!r}, expected an error saying {says!r}")
print("ok: bad input is refused with a clear error")

# The guard: a wording that is also a training template stops the script.
fake = os.path.join(work, "fake")
os.makedirs(os.path.join(fake, "scripts"))
os.makedirs(os.path.join(fake, "src", "data"))
shutil.copy(script, os.path.join(fake, "scripts"))
with open(os.path.join(fake, "src", "data", "sft.c"), "w", encoding="utf-8") as f:
    f.write('static const char *const en_t[] = {\n    "Which key is this in?\\n{1}",\n};\n')
r = subprocess.run(["/usr/bin/python3", os.path.join(fake, "scripts", os.path.basename(script)), source,
                    os.path.join(work, "refused.jsonl")], capture_output=True, text=True)
if r.returncode == 0 or "training template" not in r.stderr or os.path.exists(os.path.join(work, "refused.jsonl")):
    fail(f"a wording that is a training template was not refused (exit {r.returncode}: {r.stderr.strip()})")
print("ok: a held-out wording found among the training templates is refused")

#!/usr/bin/python3
"""Rewrites the analysis questions of an SFT file (xtuner JSONL from melodist data build) in words the model was
never trained on, keeping each record's tune and reference answer, so that `melodist eval --sft` measures whether
the model picks its plugin by what a question means or by the few wordings of the training data (docs/eval.md,
"Questions in other words").

    scripts/paraphrase-questions.py IN.jsonl OUT.jsonl

The wordings below are held out: the script refuses to run when one of them is also a training template in
src/data/sft.c. Each record gets one of its family's wordings in its answer's language, drawn with a fixed seed.
"""
import json
import os
import random
import re
import sys

WORDINGS = {
    "key_mode": (["What key is it?", "Which key is this in?", "What is the tonality here?"],
                 ["这首曲子是什么调？", "这是什么调式？", "请告诉我它的调性。"]),
    "analysis_count": (["How long is it, in bars?", "Count the bars and voices, please."],
                       ["这首曲子有几个小节？", "数一数它有多少小节、几个声部。"]),
    "genre": (["What kind of dance is this?", "Which rhythm type is this tune?"],
              ["这是什么舞曲？", "它属于哪种节奏类型？"]),
    "analysis_find_melody": (["Where does the phrase `{}` occur?", "In which bars does `{}` appear?"],
                             ["「{}」这段旋律在哪几个小节出现？", "旋律「{}」出现在哪里？"]),
    "analysis_find_chord": (["In which bars is the chord `{}`?", "Where is `{}` played?"],
                            ["和弦「{}」在哪些小节？", "哪几个小节用了「{}」和弦？"]),
    "analysis_progression": (["What are the chords, bar by bar?", "List the chord progression."],
                             ["列出逐小节的和弦。", "它的和弦进行是什么？"]),
}
CJK = re.compile(r"[\u4e00-\u9fff]")
QUOTED = re.compile(r"「([^」]*)」|`([^`]*)`")

if len(sys.argv) != 3:
    sys.exit(__doc__)
source = open(os.path.join(os.path.dirname(__file__), "..", "src", "data", "sft.c"), encoding="utf-8").read()
for family, (en, zh) in WORDINGS.items():
    for wording in en + zh:
        if '"' + wording.replace("{}", "{1}") + "\\n" in source:
            sys.exit(f"paraphrase-questions: {wording!r} ({family}) is a training template in src/data/sft.c")

rng = random.Random(5)
written = 0
try:
    src = open(sys.argv[1], encoding="utf-8")
except OSError as e:
    sys.exit(f"paraphrase-questions: cannot read {sys.argv[1]}: {e.strerror}")
with src, open(sys.argv[2] + ".tmp", "w", encoding="utf-8") as out:
    for number, line in enumerate(src, 1):
        try:
            record = json.loads(line)
            task, turn = record["task"], record["conversation"][0]
        except (ValueError, KeyError, IndexError, TypeError):
            os.remove(sys.argv[2] + ".tmp")
            sys.exit(f"paraphrase-questions: {sys.argv[1]} line {number} is not an SFT record of melodist data "
                     "build (xtuner JSONL with \"task\" and \"conversation\")")
        if task not in WORDINGS:
            continue
        at = turn["input"].find("\nX:")
        if at < 0:
            continue
        words, tune = turn["input"][:at], turn["input"][at + 1:]
        en, zh = WORDINGS[task]
        wording = rng.choice(zh if CJK.search(turn["output"]) else en)
        if "{}" in wording:
            quoted = QUOTED.search(words)
            if not quoted:
                continue
            wording = wording.format(quoted.group(1) or quoted.group(2))
        record["conversation"] = [dict(turn, input=wording + "\n" + tune)]
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        written += 1
os.replace(sys.argv[2] + ".tmp", sys.argv[2])
print(f"paraphrase-questions: {written} questions written to {sys.argv[2]}")

"""Tool-use records of melodist data build (sft.tools.jsonl, docs/data.md "Tool use").

Each record must be InternLM2's agent format (plugin system prompt with the plugin schema, the tune attached as a
file, the question, the assistant's call between <|action_start|><|plugin|> and <|action_end|>, the environment's
result, the answer);
its question and answer must be those of an analysis record of the same split; its call must run (tool_run, the
ABC-engine plugins) and give exactly the recorded result; and the answer's facts (what melodist eval compares:
ASCII words and whole numbers) must be those of the answer written here from the result alone with the answer
wording of docs/data.md -- so the answer states the plugin's result, and a model that restates it is right.

usage: test_tools.py MELODIST TOOL_RUN WORK_DIR INPUT... (exit 77 when an input is absent)
"""
import json
import os
import re
import subprocess
import sys

from common import SPLITS, build_inputs, fail

melodist, tool_run, work, *inputs = sys.argv[1:]
out = build_inputs(melodist, work, inputs)

PLUGINS = {"key_mode": ("abc_key", None), "analysis_count": ("abc_count", None),
           "analysis_find_melody": ("abc_find_melody", "phrase"), "analysis_find_chord": ("abc_find_chord", "chord"),
           "analysis_progression": ("abc_progression", None), "genre": ("abc_rhythm", None)}
ROLES = ["system name=<|plugin|>", "user name=file", "user", "assistant", "environment name=<|plugin|>", "assistant"]
CALL = re.compile(r"<\|action_start\|><\|plugin\|>\n(\{.*\})<\|action_end\|>\Z", re.S)
CJK = re.compile(r"[\u4e00-\u9fff]")


def facts(s):
    """melodist eval's fact list: runs of [A-Za-z0-9#./:] starting with a letter, digit or #, trailing . and :
    removed, runs holding a '.' (decimals) left out."""
    out = []
    for m in re.finditer(r"[A-Za-z0-9#][A-Za-z0-9#./:]*", s):
        w = m.group(0).rstrip(".:")
        if "." not in w:
            out.append(w)
    return out


def plural(n, word):
    return word if n == 1 else word + "s"


def answer_from(task, zh, r):
    """The answer docs/data.md words for the plugin result r (Chinese wording only matters for its ASCII)."""
    if task == "analysis_count":
        if zh:
            return "共 %d 小节，展开 %d 小节；%d 声部。" % (r["bars_written"], r["bars_played"], r["voices"])
        return "As written the tune has %d bars; played with its repeats, %d bars. It has %d %s." % (
            r["bars_written"], r["bars_played"], r["voices"], plural(r["voices"], "voice"))
    if task == "key_mode":
        sig = ("K:%s（%s）" if zh else "The key signature is K:%s (%s). ") % (r["signature"], r["K"]) \
            if "signature" in r else ""
        key, mode = r["key"].split(" ")[0], r["mode"].split(" ")[0]
        if zh:
            return sig + "Krumhansl-Schmuckler %s（%.2f）；%s" % (key, r["correlation"], mode)
        text = sig + ("By its pitch distribution (Krumhansl-Schmuckler) the key is %s (correlation %.2f); from the "
                      "final note and the scale, the mode is %s") % (r["key"], r["correlation"], r["mode"])
        return text + (", on a pentatonic scale (%s mode)." % r["pentatonic"] if "pentatonic" in r else ".")
    if task == "analysis_find_melody":
        n, bars = r["occurrences"], ", ".join(map(str, r["bars"]))
        pickup = r["pickup_bar_0"]
        if zh:
            return "出现 %d 次，起始于第 %s 小节%s。" % (n, bars, "（弱起小节记为第 0 小节）" if pickup else "")
        return ("The phrase (matched by its intervals and rhythm, so transposed copies count) occurs %d %s, starting "
                "in %s %s%s") % (n, plural(n, "time"), plural(n, "bar"), bars,
                                 " (the pickup bar is bar 0)." if pickup else ".")
    if task == "analysis_find_chord":
        n, bars = r["bars_with_it"], ", ".join(map(str, r["bars"]))
        if zh:
            return "和弦「%s」出现在 %d 个小节：第 %s 小节。" % (r["chord"], n, bars)
        return "The chord `%s` appears in %d %s: %s." % (r["chord"], n, plural(n, "bar"), bars)
    if task == "analysis_progression":
        head = "逐小节的和弦进行：\n" if zh else \
            "The chord progression, one cell per bar (\"-\": the previous chord continues):\n"
        return head + r["progression"]
    if task == "genre":
        if zh:
            return "从拍号（%s）和节奏看，这是一首（%s）。" % (r["meter"], r["rhythm"])
        return "By its meter (%s) and rhythm, this is a %s." % (r["meter"], r["rhythm"])
    fail("unexpected task " + task)


total = 0
for split, sub in SPLITS.items():
    analysis = set()
    for line in open(os.path.join(out, sub, "sft.xtuner.jsonl"), encoding="utf-8"):
        rec = json.loads(line)
        if rec["task"] in PLUGINS:
            turn = rec["conversation"][0]
            analysis.add((rec["task"], turn["input"], turn["output"]))
    path = os.path.join(out, sub, "sft.tools.jsonl")
    lines = open(path, encoding="utf-8").read().splitlines()
    results = subprocess.run([tool_run], input="".join(line + "\n" for line in lines), capture_output=True,
                             text=True, check=True).stdout.splitlines()
    if len(results) != len(lines):
        fail(f"{split}: tool_run answered {len(results)} of {len(lines)} records")
    seen = set()
    for i, (line, result) in enumerate(zip(lines, results)):
        where = f"{split} sft.tools.jsonl line {i + 1}"
        rec = json.loads(line)
        task, msgs = rec["task"], rec["messages"]
        if task not in PLUGINS or [m["role"] for m in msgs] != ROLES:
            fail(f"{where}: task {task}, roles {[m['role'] for m in msgs]}, expected {ROLES}")
        schema = json.loads(msgs[0]["content"])
        names = {p["name"] for p in schema}
        call = CALL.match(msgs[3]["content"])
        if not call:
            fail(f"{where}: the call is not <|action_start|><|plugin|>\\n{{json}}<|action_end|>: {msgs[3]['content']!r}")
        call = json.loads(call.group(1))
        name, param = PLUGINS[task]
        if call["name"] != name or call["name"] not in names or set(call["parameters"]) != ({param} - {None}):
            fail(f"{where}: {task} answered by the call {call}, expected plugin {name} with {param or 'no'} parameter")
        if param and f"`{call['parameters'][param]}`" not in msgs[2]["content"] and \
                f"「{call['parameters'][param]}」" not in msgs[2]["content"]:
            fail(f"{where}: the call's {param} {call['parameters'][param]!r} is not the one the question quotes")
        # the record's question is the question's words, a newline and the tune (attached as a file here)
        question, answer = msgs[2]["content"] + "\n" + msgs[1]["content"], msgs[5]["content"]
        if (task, question, answer) not in analysis:
            fail(f"{where}: question and answer are not those of a {task} record of the split")
        seen.add((task, question, answer))
        if result != msgs[4]["content"]:
            fail(f"{where}: running the call gives\n {result}\nthe record says\n {msgs[4]['content']}")
        zh = bool(CJK.search(answer))
        want = facts(answer_from(task, zh, json.loads(result)))
        if facts(answer) != want:
            fail(f"{where}: the answer's facts {facts(answer)} are not the result's {want}\n{answer}\n{result}")
    if seen != analysis:
        fail(f"{split}: {len(analysis - seen)} analysis records of the plugin families have no tool-use record")
    total += len(lines)
    print(f"{split}: {len(lines)} tool-use records: calls run, results and answer facts agree")
if total == 0:
    fail("no tool-use records at all")
print(f"tool-use records: {total} checked")

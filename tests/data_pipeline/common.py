"""Helpers shared by the data pipeline tests: run the CLI, read its outputs with Python's json module."""
import json
import os
import re
import shutil
import subprocess
import sys

SPLITS = {"train": "", "valid": "valid/", "test": "test/"}
SEPARATOR = "<|endofdoc|>"
CJK = re.compile(r"[\u4e00-\u9fff]")


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def build(melodist, out, inputs, extra=(), expect_rc=0):
    r = subprocess.run([melodist, "data", "build", "--out", out, *inputs, *extra], capture_output=True, text=True)
    if r.returncode != expect_rc:
        fail(f"melodist data build exited {r.returncode} (expected {expect_rc})\n{r.stderr[-3000:]}")
    return r


def build_inputs(melodist, work, inputs):
    """A fresh data build of inputs into WORK/out (exit 77 when an input is absent); returns WORK/out."""
    if not inputs or not all(os.path.exists(p) for p in inputs):
        print("SKIP: inputs absent:", inputs)
        sys.exit(77)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    out = os.path.join(work, "out")
    build(melodist, out, inputs)
    return out


def read_records(out):
    """Every SFT record of both formats, checked line by line with json.loads; returns {split: [(task, system,
    input, output)]} after checking that the xtuner and OpenAI files say the same thing."""
    records = {}
    for split, sub in SPLITS.items():
        xt = open(os.path.join(out, sub, "sft.xtuner.jsonl"), encoding="utf-8").read().splitlines()
        oa = open(os.path.join(out, sub, "sft.openai.jsonl"), encoding="utf-8").read().splitlines()
        if len(xt) != len(oa):
            fail(f"{split}: {len(xt)} xtuner records but {len(oa)} OpenAI records")
        rows = []
        for i, (a, b) in enumerate(zip(xt, oa)):
            try:
                x, o = json.loads(a), json.loads(b)
            except json.JSONDecodeError as e:
                fail(f"{split} line {i + 1}: not JSON: {e}")
            conv = x["conversation"]
            if len(conv) != 1 or set(conv[0]) != {"system", "input", "output"}:
                fail(f"{split} line {i + 1}: bad xtuner conversation {conv}")
            m = o["messages"]
            if [t["role"] for t in m] != ["system", "user", "assistant"]:
                fail(f"{split} line {i + 1}: bad OpenAI roles")
            c = conv[0]
            if (c["system"], c["input"], c["output"], x["task"]) != (m[0]["content"], m[1]["content"],
                                                                     m[2]["content"], o["task"]):
                fail(f"{split} line {i + 1}: xtuner and OpenAI records differ")
            if not c["system"] or not c["input"] or not c["output"]:
                fail(f"{split} line {i + 1}: empty system/input/output")
            rows.append((x["task"], c["system"], c["input"], c["output"]))
        records[split] = rows
    return records


def read_documents(out, split):
    text = open(os.path.join(out, SPLITS[split], "pretrain.txt"), encoding="utf-8").read()
    if text and not text.endswith(SEPARATOR + "\n"):
        fail(f"{split}/pretrain.txt does not end with the separator line")
    docs = text.split(SEPARATOR + "\n")
    return [d for d in docs if d]


def without_x(tune):
    lines = tune.strip("\n").split("\n")
    return "\n".join(lines[1:] if lines and lines[0].startswith("X:") else lines)


def quoted_tune(text):
    i = text.find("X:")
    while i > 0 and text[i - 1] != "\n":
        i = text.find("X:", i + 1)
    return text[i:] if i >= 0 else None


def write_flat(records, path):
    with open(path, "w", encoding="utf-8") as f:
        for split in records:
            for task, _, inp, outp in records[split]:
                f.write(json.dumps({"task": task, "input": inp, "output": outp}, ensure_ascii=False) + "\n")


def tree_bytes(out):
    files = {}
    for root, _, names in os.walk(out):
        for n in names:
            p = os.path.join(root, n)
            files[os.path.relpath(p, out)] = open(p, "rb").read()
    return files


def recheck_and_rerun(melodist, checker, records, work, out, inputs, stderr_tail):
    """Every record's answer re-checked by the engine (CHECKER reads them as flat JSONL; the last `stderr_tail`
    characters of its complaints shown), then a rerun with the same inputs and seed byte-identical to OUT."""
    flat = os.path.join(work, "flat.jsonl")
    write_flat(records, flat)
    r = subprocess.run([checker, flat], capture_output=True, text=True)
    print(r.stdout, end="")
    if r.returncode:
        fail("engine re-check failed:\n" + r.stderr[-stderr_tail:])
    again = os.path.join(work, "again")
    build(melodist, again, inputs)
    if tree_bytes(out) != tree_bytes(again):
        fail("a rerun with the same inputs and seed is not byte-identical")

#!/usr/bin/python3
"""The SFT encoding (xtuner internlm2_chat template + encode_fn) against the verified xtuner vectors in
../shared/reference/internlm2-tokenizer-vectors.json, with the real InternLM2 tokenizer; also the OpenAI
"messages" form of the same records and the truncation to max_length.

  sft_vectors.py SFT_ENCODE SHARED_DIR WORK_DIR      (exit 77 when the shared files are absent)
"""
import json
import os
import subprocess
import sys

encode, shared, work = sys.argv[1:4]
vectors = os.path.join(shared, "reference", "internlm2-tokenizer-vectors.json")
model = os.path.join(shared, "models", "internlm2-tokenizer", "tokenizer.model")
if not (os.path.isfile(vectors) and os.path.isfile(model)):
    print("SKIP: %s or %s absent" % (vectors, model))
    sys.exit(77)
cases = [v for v in json.load(open(vectors)) if any(k.startswith("xtuner") for k in v)]
assert len(cases) >= 2, "expected the xtuner sample vectors"


def run(records, max_length):
    path = os.path.join(work, "sft_vectors.jsonl")
    with open(path, "w") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    out = subprocess.run([encode, model, path, str(max_length)], check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines()]


failures = 0
samples = [next(v for k, v in c.items() if k.startswith("xtuner")) for c in cases]
samples = [json.loads(s) if isinstance(s, str) else s for s in samples]
xtuner = run([{"conversation": [s], "task": "t"} for s in samples], 4096)
openai = run([{"messages": ([{"role": "system", "content": s["system"]}] if s["system"] else []) +
               [{"role": "user", "content": s["input"]}, {"role": "assistant", "content": s["output"]}]}
              for s in samples], 4096)
short = run([{"conversation": [s]} for s in samples], 12)
for c, x, o, t in zip(cases, xtuner, openai, short):
    name = next(k for k in c if k.startswith("xtuner"))
    for form, got in (("xtuner", x), ("openai", o)):
        ok = got["input_ids"] == c["input_ids"] and got["labels"] == c["labels"]
        print("%-26s %-6s %d tokens, %d scored: %s" % (name, form, len(c["input_ids"]),
              sum(l != -100 for l in c["labels"]), "identical" if ok else "DIFFERENT"))
        failures += not ok
    ok = t["input_ids"] == c["input_ids"][:12] and t["labels"] == c["labels"][:12]
    print("%-26s max_length 12: %s" % (name, "truncated as xtuner" if ok else "DIFFERENT"))
    failures += not ok
sys.exit(1 if failures else 0)

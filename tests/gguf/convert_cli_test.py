#!/usr/bin/env python3
"""`melodist convert --to gguf` without llama.cpp: a tiny random model with InternLM2's tokenizer converted to
each tensor type and checked key by key and tensor by tensor (gguf_tool check), and bad invocations failing
with a clear message and a non-zero status, leaving no output file behind.

usage: convert_cli_test.py MELODIST CHAT_TOOL GGUF_TOOL SHARED_DIR WORK_DIR   (exit 77 without the tokenizer)
"""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import melodist_testlib as T  # noqa: E402
from melodist_testlib import check  # noqa: E402

melodist, chat_tool, gguf_tool, shared, work = sys.argv[1:6]
TOK = os.path.join(shared, "models", "internlm2-tokenizer", "tokenizer.model")
if not os.path.exists(TOK):
    T.skip("%s absent (shared data)" % TOK)
os.makedirs(work, exist_ok=True)

model = os.path.join(work, "model")
subprocess.run([chat_tool, "mkmodel", model, "92544"], check=True)
shutil.copy(TOK, os.path.join(model, "tokenizer.model"))
for t in ("f32", "f16", "bf16", "q8_0", "q4_0"):
    out = os.path.join(work, "model_%s.gguf" % t)
    r = subprocess.run([melodist, "convert", "-m", model, "--to", "gguf", "-o", out, "--type", t],
                       capture_output=True, text=True)
    check(r.returncode == 0 and "wrote" in r.stderr, "convert --type %s: %s" % (t, r.stderr))
    r = subprocess.run([gguf_tool, "check", model, TOK, out], capture_output=True, text=True)
    check(r.returncode == 0, "check %s: %s" % (t, r.stderr[-1500:]))
    print(r.stdout.strip())

small = os.path.join(work, "small_vocab")
subprocess.run([chat_tool, "mkmodel", small, "1000"], check=True)
out = os.path.join(work, "bad.gguf")
cases = [(["-m", os.path.join(work, "missing"), "--to", "gguf", "-o", out], 1, "cannot load"),
         (["-m", small, "--tokenizer", TOK, "--to", "gguf", "-o", out], 1, "do not belong together"),
         (["-m", model, "--to", "onnx", "-o", out], 2, "only gguf"),
         (["-m", model, "--to", "gguf", "-o", out, "--type", "q5_k"], 2, "unknown --type"),
         (["-m", model, "--to", "gguf"], 2, "need -m"),
         (["-m", model, "--to", "gguf", "-o", os.path.join(work, "no", "such", "dir.gguf")], 1, "cannot create")]
for args, status, what in cases:
    r = subprocess.run([melodist, "convert"] + args, capture_output=True, text=True)
    check(r.returncode == status and what in r.stderr, "%s: status %d %r" % (args, r.returncode, r.stderr))
check(not os.path.exists(out) and not any(".tmp" in f for f in os.listdir(work)), "a failed convert left a file")
print("errors: %d bad invocations rejected clearly" % len(cases))

T.finish()

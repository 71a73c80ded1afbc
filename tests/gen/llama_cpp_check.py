#!/usr/bin/env python3
"""llama.cpp as a second, independent engine: the random model of generate_check.py in f32, bf16, q8 and q4
(`melodist quantize`), written as GGUF by bench/to_gguf.py, must give llama.cpp the same greedy continuation
(ids decoded by SentencePiece) as `melodist generate --temperature 0` prints.

usage: llama_cpp_check.py MELODIST TOKENIZER_MODEL WORK_DIR
Needs LLAMA_CPP=DIR with DIR/node_modules/node-llama-cpp (npm install node-llama-cpp); exit 77 without it,
without sentencepiece, or without the model generate_check.py leaves in WORK_DIR/generate_model.
"""
import os
import shutil
import subprocess
import sys

melodist, tokenizer, work = sys.argv[1:4]
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
llama = os.environ.get("LLAMA_CPP", "")
model = os.path.join(work, "generate_model")
if not os.path.isdir(os.path.join(llama, "node_modules", "node-llama-cpp")) or not shutil.which("node"):
    print("SKIP: set LLAMA_CPP to a directory holding node_modules/node-llama-cpp", file=sys.stderr)
    sys.exit(77)
if not os.path.exists(tokenizer) or not os.path.isdir(model):
    print("SKIP: %s or %s missing" % (tokenizer, model), file=sys.stderr)
    sys.exit(77)
try:
    import sentencepiece
except ImportError:
    print("SKIP: python3 sentencepiece is not installed", file=sys.stderr)
    sys.exit(77)

PROMPT, STEPS = "X:1\nT:Reel\nM:4/4\nK:D\n|:d2fd", 24
sp = sentencepiece.SentencePieceProcessor(model_file=tokenizer)
script = os.path.join(llama, ".melodist_llama_cpp_check.mjs")
shutil.copy(os.path.join(root, "bench", "llama_cpp.mjs"), script)
failed = 0
for fmt in ("f32", "bf16", "q8", "q4"):
    d = os.path.join(work, "llama_" + fmt)
    subprocess.run([melodist, "quantize", "-m", model, "-o", d, "--type", fmt], check=True, capture_output=True)
    gguf = d + ".gguf"
    subprocess.run(["/usr/bin/python3", os.path.join(root, "bench", "to_gguf.py"), d, tokenizer, gguf], check=True)
    ours = subprocess.run([melodist, "generate", "-m", d, "--tokenizer", tokenizer, "-p", PROMPT, "--temperature",
                           "0", "--max-tokens", str(STEPS), "--threads", "1"], capture_output=True).stdout.decode()
    ids = subprocess.run(["node", script, gguf, "1", str(STEPS), "--text", PROMPT], cwd=llama, capture_output=True,
                         check=True).stdout.decode().split()
    theirs = sp.decode([int(i) for i in ids])
    same = ours == theirs
    failed += not same
    print("%-4s %s\n  melodist : %r\n  llama.cpp: %r" % (fmt, "identical" if same else "DIFFERENT", ours, theirs))
os.remove(script)
sys.exit(1 if failed else 0)

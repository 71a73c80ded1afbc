#!/usr/bin/env python3
"""`melodist convert --to gguf` read by llama.cpp itself.

Random InternLM2 models with InternLM2's real vocabulary (PyTorch reference writer, tests/reference) in several
shapes and formats are converted; for each file:
  - gguf_tool check: every key, token and tensor against the checkpoint and tokenizer (q/k un-permuted);
  - llama.cpp (node-llama-cpp's prebuilt CPU build, via llama_check.mjs) loads it, and its greedy continuation
    of a chat prompt (HF chat template ids) decodes to exactly the reply `melodist chat --temperature 0` prints;
  - llama.cpp's own tokenizer, built from the GGUF vocabulary, tokenizes Chinese, ABC, emoji and chat-markup
    text exactly as SentencePiece does.

node-llama-cpp (3.21.1: the newest whose lock file `npm ci` accepts, every platform package being published):
LLAMA_CPP=DIR holding node_modules/node-llama-cpp, else `npm ci` of this directory's package.json and
package-lock.json into WORK_DIR/npm (about 730 MB, once per build directory); exit 77 when that is not possible.
usage: gguf_check.py MELODIST GGUF_TOOL SOURCE_DIR WORK_DIR
"""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import melodist_testlib as T  # noqa: E402
from melodist_testlib import check  # noqa: E402

melodist, gguf_tool, source, work = sys.argv[1:5]
here = os.path.dirname(os.path.abspath(__file__))
TOK = os.path.join(source, "..", "shared", "models", "internlm2-tokenizer", "tokenizer.model")
if not os.path.exists(TOK):
    T.skip("%s absent (shared data)" % TOK)
sentencepiece = T.import_sentencepiece()
sys.path.insert(0, os.path.join(source, "tests", "reference"))
import internlm2_ref as ref  # exits 77 without torch
import torch

os.makedirs(work, exist_ok=True)


def find_llama():
    if not shutil.which("node"):
        return None, "node is not installed"
    for d in (os.environ.get("LLAMA_CPP", ""), os.path.join(work, "npm")):
        if d and os.path.isdir(os.path.join(d, "node_modules", "node-llama-cpp")):
            return d, None
    npm = os.path.join(work, "npm")
    os.makedirs(npm, exist_ok=True)
    for f in ("package.json", "package-lock.json"):
        shutil.copy(os.path.join(here, f), npm)
    # --ignore-scripts: the prebuilt binaries come as optional packages; node-llama-cpp's postinstall would
    # only try to download or build llama.cpp.
    r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=npm, capture_output=True,
                       text=True)
    if r.returncode:
        return None, "npm ci of tests/gguf/package.json failed (no npm registry or cache?): " + r.stderr[-400:]
    return npm, None


llama_dir, why = find_llama()
if not llama_dir:
    T.skip(why)
script = os.path.join(llama_dir, "melodist_llama_check.mjs")  # node resolves imports from the script's place
shutil.copy(os.path.join(here, "llama_check.mjs"), script)

sp = sentencepiece.SentencePieceProcessor(model_file=TOK)
template = T.ChatTemplate(sp, {"<|im_start|>": 92543, "<|im_end|>": 92542})
STOP, STEPS = (2, 92542), 16


def llama(gguf, *args):
    r = subprocess.run(["node", script, gguf] + list(args), cwd=llama_dir, capture_output=True, text=True)
    if r.returncode:
        print("llama.cpp failed on %s:\n%s" % (gguf, r.stderr[-2000:]))
        return None
    return [[int(x) for x in line.split()] for line in r.stdout.splitlines()]


SYSTEM, USER = "You are a composer.", "Write a reel in D."
prompt = template.encode([("system", SYSTEM), ("user", USER)])


def stored(x, fmt):
    """A weight matrix as the format stores it (ggml's Q8_0/Q4_0 rules, notes 5.2), back in f32."""
    if fmt == "f32" or x.dim() != 2:
        return x
    if fmt in ("f16", "bf16"):
        return x.to(torch.float16 if fmt == "f16" else torch.bfloat16).float()
    b = x.reshape(-1, 32)
    if fmt == "q8_0":
        d = (b.abs().amax(1, keepdim=True) / 127).half().float()
        q = torch.where(d > 0, torch.round(b / d), torch.zeros_like(b)).clamp(-127, 127)
    else:
        extreme = b.gather(1, b.abs().argmax(1, keepdim=True))
        d = (extreme / -8).half().float()
        q = torch.where(d != 0, torch.round(b / d), torch.zeros_like(b)).clamp(-8, 7)
    return (q * d).reshape(x.shape)


# (name, dim, layers, heads, kv heads, hidden, tied, formats)
shapes = [("gqa", 64, 2, 4, 2, 128, False, ["f32", "f16", "q8_0", "q4_0"]),
          ("mha_tied", 64, 2, 2, 2, 96, True, ["f32", "bf16"]),
          ("mqa", 96, 1, 3, 1, 64, False, ["f32"])]
for name, dim, layers, heads, kv, hidden, tied, formats in shapes:
    cfg = ref.config(dim, layers, heads, kv, hidden, 92544, 512, 10000.0, None, tied)
    for fmt in formats:
        # A model whose greedy continuation, with the weights as this format stores them, has no near-ties
        # and no special tokens (decoded differently). llama.cpp also rounds the activations to 8 bits for
        # Q8_0/Q4_0 weights (melodist and the reference do not), so those need a wider margin.
        best, wanted = None, 0.1 if fmt.startswith("q") else 0.02
        for seed in range(60):
            w = ref.random_weights(cfg, torch.Generator().manual_seed(seed))
            out, margin = T.greedy(ref, {k: stored(v, fmt) for k, v in w.items()}, cfg, prompt, STEPS, STOP)
            text = sp.decode(out)
            if all(3 <= t < 92538 for t in out) and "\n" not in text and "\ufffd" not in text and \
                    (best is None or margin > best[1]):
                best = (seed, margin, w)
            if best and best[1] > wanted:
                break
        seed, margin, w = best
        src = os.path.join(work, "%s_seed%d" % (name, seed))
        ref.save_model(src, cfg, w)
        ckpt = src
        if fmt != "f32":  # the checkpoint melodist itself runs, in the same format
            ckpt = os.path.join(work, "%s_%s" % (name, fmt))
            subprocess.run([melodist, "quantize", "-m", src, "-o", ckpt, "--type", fmt.replace("_0", "")],
                           check=True, capture_output=True)
        gguf = ckpt + ".gguf"
        r = subprocess.run([melodist, "convert", "-m", ckpt, "--tokenizer", TOK, "--to", "gguf", "-o", gguf],
                           capture_output=True, text=True)
        check(r.returncode == 0, "convert %s %s: %s" % (name, fmt, r.stderr))
        r = subprocess.run([gguf_tool, "check", ckpt, TOK, gguf], capture_output=True, text=True)
        check(r.returncode == 0, "gguf_tool check %s %s: %s" % (name, fmt, r.stderr))
        ours = subprocess.run([melodist, "chat", "-m", ckpt, "--tokenizer", TOK, "--system", SYSTEM, "--temperature",
                               "0", "--max-tokens", str(STEPS), "--threads", "1"], input=USER + "\n",
                              capture_output=True, text=True).stdout
        got = llama(gguf, "greedy", str(STEPS), ",".join(map(str, prompt)))
        theirs = sp.decode(got[0]) + "\n" if got else None
        same = ours == theirs
        check(same, "%s %s: melodist %r, llama.cpp %r" % (name, fmt, ours, theirs))
        print("%-8s %-5s seed %d margin %.3f: %s\n  melodist : %r\n  llama.cpp: %r" %
              (name, fmt, seed, margin, "identical" if same else "DIFFERENT", ours, theirs))

texts = ["你是 Melodist，一位专业的作曲家。", "X:1\nT:Reel\nM:4/4\nL:1/8\nK:D\n|:d2fd Adfd|e2ge Bege:|",
         "emoji 🎻🎶 and  two spaces", "<|im_start|>user\n写一首歌<|im_end|>\n<|im_start|>assistant\n"]
got = llama(gguf, "tokenize", *texts)
for t, ids in zip(texts, got or [[]] * len(texts)):
    want = template.encode_text(t)
    check(ids == want, "llama.cpp tokenizes %r as %s, SentencePiece %s" % (t, ids, want))
print("tokenizer: %d texts tokenized by llama.cpp as by SentencePiece" % len(texts))

os.remove(script)
T.finish()

#!/usr/bin/env python3
"""End-to-end check of `melodist generate --temperature 0`: a random InternLM2 model with InternLM2's real
vocabulary; the prompt encoded with SentencePiece (BOS first), greedy decoding by the PyTorch reference
(internlm2_ref.py, stopping at </s> or <|im_end|>), decoded with SentencePiece; stdout must be exactly that.

usage: generate_check.py MELODIST TOKENIZER_MODEL WORK_DIR    (exit 77 if torch/sentencepiece/tokenizer missing)
"""
import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [here, os.path.join(here, "..", "lib")]
import internlm2_ref as ref  # noqa: E402  (exits 77 without torch)
import melodist_testlib as T  # noqa: E402

sentencepiece = T.import_sentencepiece(sys.stderr)
import torch  # noqa: E402

melodist, tokenizer, work = sys.argv[1:4]
if not os.path.exists(tokenizer):
    T.skip("%s not found (shared data absent)" % tokenizer, sys.stderr)

STOP, SPECIAL_FIRST, STEPS = (2, 92542), 92538, 24
PROMPT = "X:1\nT:Reel\nM:4/4\nK:D\n|:d2fd"
sp = sentencepiece.SentencePieceProcessor(model_file=tokenizer)
prompt = [sp.bos_id()] + sp.encode(PROMPT)
cfg = ref.config(64, 2, 4, 2, 128, 92544, 32768, 1000000.0, {"type": "dynamic", "factor": 2.0}, False)

for seed in range(20):  # a continuation without near-ties and without special tokens (decoded differently)
    w = ref.random_weights(cfg, torch.Generator().manual_seed(seed))
    out, margin = T.greedy(ref, w, cfg, prompt, STEPS, STOP)
    if margin > 2e-3 and all(3 <= t < SPECIAL_FIRST for t in out):
        break

model_dir = os.path.join(work, "generate_model")
ref.save_model(model_dir, cfg, w)
expected = sp.decode(out)
run = subprocess.run([melodist, "generate", "-m", model_dir, "--tokenizer", tokenizer, "-p", PROMPT,
                      "--temperature", "0", "--max-tokens", str(STEPS)], capture_output=True)
got = run.stdout.decode("utf-8", "replace")
print("prompt ids:", prompt)
print("reference continuation ids:", out, "margin %.4f" % margin)
print("expected: %r" % expected)
print("melodist: %r" % got)
print(run.stderr.decode("utf-8", "replace"), file=sys.stderr)
if run.returncode != 0 or got != expected:
    print("FAIL: melodist generate output differs from the reference", file=sys.stderr)
    sys.exit(1)
print("ok: identical greedy continuation (%d tokens)" % len(out))

"""What the Python end-to-end tests share: skipping (exit 77), counting failures, the tiny chat model fixture,
the Hugging Face chat template encoded by Python SentencePiece, and greedy decoding by the PyTorch reference.

A script imports it with
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
    import melodist_testlib as T
"""
import os
import re
import shutil
import subprocess
import sys

failures = 0


def skip(why, file=None):
    print("SKIP:", why, file=file)
    sys.exit(77)


def import_sentencepiece(file=None):
    try:
        import sentencepiece
    except ImportError:
        skip("python3 sentencepiece is not installed", file)
    return sentencepiece


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what)


def finish():
    """The last line of a test: exit 1 after any failed check, else print ok."""
    if failures:
        print("%d failure(s)" % failures)
        sys.exit(1)
    print("ok")


def tiny_chat_model(tool, source, work):
    """A tiny random InternLM2 model (CHAT_TOOL mkmodel) in WORK/model with a 1000-piece spm_train tokenizer
    holding the chat tokens (scripts/train-tokenizer.sh); returns (model dir, its SentencePieceProcessor).
    Skips without python3 sentencepiece or spm_train."""
    sentencepiece = import_sentencepiece()
    if not shutil.which("spm_train"):
        skip("spm_train not found (apt-get install sentencepiece)")
    os.makedirs(work, exist_ok=True)
    model = os.path.join(work, "model")
    subprocess.run(["bash", os.path.join(source, "scripts", "train-tokenizer.sh"), "-i",
                    os.path.join(source, "tests", "tokenizer", "data", "mixed.txt"), "-o", model, "-v", "1000",
                    "--threads", "2"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(model, "tokenizer.model"))
    subprocess.run([tool, "mkmodel", model, str(sp.get_piece_size())], check=True)
    return model, sp


class ChatTemplate:
    """What transformers' apply_chat_template(tokenize=True) does for InternLM2: render the chat_template text,
    split it on the added tokens, encode each piece with SentencePiece, BOS first. `special` maps the two chat
    tokens to their ids; by default the tokenizer's own pieces."""
    SPLIT = "(<\\|im_start\\|>|<\\|im_end\\|>)"

    def __init__(self, sp, special=None):
        self.sp = sp
        self.special = special or {name: sp.piece_to_id(name) for name in ("<|im_start|>", "<|im_end|>")}

    def encode_text(self, text):
        """Text with chat markup, no BOS."""
        ids = []
        for part in re.split(self.SPLIT, text):
            if part in self.special:
                ids.append(self.special[part])
            elif part:
                ids += self.sp.encode(part)
        return ids

    def encode(self, msgs, gen=True):
        """msgs: [(role, content)]; gen adds the assistant's opening."""
        text = "".join("<|im_start|>%s\n%s<|im_end|>\n" % (r, c) for r, c in msgs)
        if gen:
            text += "<|im_start|>assistant\n"
        return [self.sp.bos_id()] + self.encode_text(text)


def greedy(ref, w, cfg, prompt, steps, stop):
    """Greedy decoding by the PyTorch reference (internlm2_ref as `ref`): (tokens before a stop id or `steps`,
    the smallest gap between the two best logits on the way -- near-ties make a comparison meaningless)."""
    import torch
    with torch.no_grad():
        logits, past = ref.forward(w, cfg, prompt)
        out, margin = [], float("inf")
        for _ in range(steps):
            top2 = torch.topk(logits[-1], 2).values
            margin = min(margin, float(top2[0] - top2[1]))
            tok = int(torch.argmax(logits[-1]))
            if tok in stop:
                break
            out.append(tok)
            logits, past = ref.forward(w, cfg, [tok], past)
    return out, margin

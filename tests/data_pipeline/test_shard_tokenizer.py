"""melodist data shard with the InternLM2 tokenizer.model: every document of pretrain.txt, read back from the shard
with struct, equals <s> + SentencePiece (Python, the independent oracle) encoding + </s>."""
import os
import shutil
import struct
import subprocess
import sys

from common import build, fail, read_documents

melodist, fixtures, model, work = sys.argv[1:5]
try:
    import sentencepiece
except ImportError:
    print("SKIP: python3-sentencepiece not installed")
    sys.exit(77)
if not os.path.exists(model):
    print("SKIP: tokenizer model not found at", model)
    sys.exit(77)
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
out = os.path.join(work, "out")
build(melodist, out, [os.path.join(fixtures, n) for n in ("small.abc", "irishman.jsonl", "knowledge.md")])
shard = os.path.join(work, "train.shard")
r = subprocess.run([melodist, "data", "shard", "--tokenizer", model, "--out", shard, os.path.join(out, "pretrain.txt")],
                   capture_output=True, text=True)
if r.returncode:
    fail(r.stderr)

b = open(shard, "rb").read()
magic, version, dtype, n_tok, n_docs, vocab = struct.unpack_from("<8sIIQQI", b, 0)
sp = sentencepiece.SentencePieceProcessor(model_file=model)
if (magic, version, vocab, dtype) != (b"MLDSHARD", 1, sp.get_piece_size(), 4):
    fail(f"header {magic} {version} {vocab} {dtype}")
toks = struct.unpack_from(f"<{n_tok}I", b, 64)
index = struct.unpack_from(f"<{n_docs + 1}Q", b, (64 + 4 * n_tok + 7) // 8 * 8)
docs = read_documents(out, "train")
if n_docs != len(docs):
    fail(f"{n_docs} documents in the shard, {len(docs)} in pretrain.txt")
for i, d in enumerate(docs):
    want = [sp.bos_id()] + sp.encode(d[:-1] if d.endswith("\n") else d) + [sp.eos_id()]
    if list(toks[index[i]:index[i + 1]]) != want:
        fail(f"document {i} differs from SentencePiece:\n{d[:200]}")
print(f"data shard tokenizer: {n_docs} documents, {n_tok} tokens equal SentencePiece")

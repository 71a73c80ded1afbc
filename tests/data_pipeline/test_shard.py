"""Token shards: the C writer's bytes are read back independently with struct (layout of melodist/shard.h) and by
the C memory-mapped reader; ids that do not fit are refused and leave no file; damaged files are rejected."""
import os
import random
import shutil
import struct
import subprocess
import sys

tool, work = sys.argv[1:3]
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def parse(path):
    b = open(path, "rb").read()
    magic, version, dtype, n_tok, n_docs, vocab = struct.unpack_from("<8sIIQQI", b, 0)
    if magic != b"MLDSHARD" or version != 1:
        fail(f"bad header {magic} {version}")
    fmt = {2: "H", 4: "I"}[dtype]
    toks = struct.unpack_from(f"<{n_tok}{fmt}", b, 64)
    off = (64 + n_tok * dtype + 7) // 8 * 8
    index = struct.unpack_from(f"<{n_docs + 1}Q", b, off)
    if off + (n_docs + 1) * 8 != len(b):
        fail("file length does not match header")
    return [list(toks[index[i]:index[i + 1]]) for i in range(n_docs)], vocab


rng = random.Random(7)
for dtype, vocab in ((2, 65536), (4, 92544)):
    docs = [[rng.randrange(vocab) for _ in range(rng.randrange(0, 300))] for _ in range(50)]
    docs[3] = []  # empty documents keep their place
    src = os.path.join(work, f"docs{dtype}.txt")
    open(src, "w").write("".join(" ".join(map(str, d)) + "\n" for d in docs))
    out = os.path.join(work, f"t{dtype}.shard")
    r = subprocess.run([tool, "write", str(dtype), str(vocab), src, out], capture_output=True, text=True)
    if r.returncode:
        fail(r.stderr)
    got, v = parse(out)
    if got != docs or v != vocab:
        fail(f"dtype {dtype}: struct reading differs from what was written")
    r = subprocess.run([tool, "read", out], capture_output=True, text=True)
    if r.returncode or [list(map(int, l.split())) for l in r.stdout.split("\n")[:-1]] != docs:
        fail(f"dtype {dtype}: mmap reader differs: {r.stderr}")

src = os.path.join(work, "big.txt")
open(src, "w").write("1 2 3\n70000\n")
out = os.path.join(work, "big.shard")
r = subprocess.run([tool, "write", "2", "0", src, out], capture_output=True, text=True)
if r.returncode != 1 or "outside" not in r.stderr or os.path.exists(out) or any(n.endswith(".tmp") for n in os.listdir(work)):
    fail("an id beyond uint16 must be refused, leaving no file: " + r.stderr)

good = os.path.join(work, "t4.shard")
damaged = os.path.join(work, "damaged.shard")
open(damaged, "wb").write(open(good, "rb").read()[:-5])
r = subprocess.run([tool, "read", damaged], capture_output=True, text=True)
if r.returncode != 1 or "truncated" not in r.stderr:
    fail("a truncated shard must be rejected: " + r.stderr)
print("data shard: ok")

#!/usr/bin/python3
"""Token-for-token equality of `melodist tokenize/detokenize` with SentencePiece's spm_encode/spm_decode.

Models: InternLM2's real tokenizer.model (when present) and models trained here with spm_train in
InternLM2's style (BPE, byte fallback, chat tokens as user-defined symbols, identity normaliser) plus
spm_train's default nmt_nfkc normaliser with and without byte fallback.
Inputs: lines generated deterministically from the shared ABC collections and tests/tokenizer/data/mixed.txt
(Chinese, English, emoji, ...) with whitespace runs, tabs, invalid UTF-8, NUL and control bytes; and random
id sequences for decoding (byte pieces that form valid and broken UTF-8, control pieces, leading U+2581).

usage: spm_oracle.py MELODIST SHARED_DIR FIXTURE WORK_DIR [--lines N]
Exit 0 when every line matches, 1 otherwise, 77 when the shared ABC data is absent.
"""
import os
import random
import subprocess
import sys
import time

SPECIALS = ["<|im_start|>", "<|im_end|>", "<|action_start|>", "<|action_end|>", "<|interpreter|>", "<|plugin|>"]
COLLECTIONS = ["nottingham", "essen_europe", "essen_china", "shlien_balkan"]
SEPARATORS = [" ", "  ", "\t", "   ", " \t ", "", "\u3000", "\u00a0"]


def abc_lines(shared):
    lines = []
    for c in COLLECTIONS:
        with open(os.path.join(shared, "data", c, c + ".abc"), "rb") as f:
            lines += [l for l in f.read().split(b"\n") if l]
    return lines


def broken_utf8(rng, line):
    """Damage a line: cut multi-byte characters, add stray continuation/lead bytes, overlong, surrogates."""
    b = bytearray(line)
    junk = [b"\x80", b"\xbf", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf5\x80\x80\x80", b"\xff", b"\xfe", b"\xe4\xb8",
            b"\xf0\x9f\x8e", b"\xc3", b"\xe2\x96", b"\xef\xbf\xbd", b"\xf4\x90\x80\x80", b"\xe0\x80\x80"]
    for _ in range(rng.randint(1, 4)):
        pos = rng.randint(0, len(b))
        if rng.random() < 0.5:
            b[pos:pos] = rng.choice(junk)
        else:
            b[pos:pos] = bytes(rng.randint(0x80, 0xFF) for _ in range(rng.randint(1, 3)))
    if len(b) > 2 and rng.random() < 0.3:
        del b[rng.randint(0, len(b) - 1)]  # may cut a character in half
    return bytes(b)


def random_unicode(rng):
    blocks = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x3040, 0x30FF), (0x4E00, 0x9FFF),
              (0xAC00, 0xD7A3), (0xFF00, 0xFFEF), (0x1F300, 0x1FAFF), (0x2000, 0x206F), (0x2100, 0x22FF),
              (0x0300, 0x036F), (0xE000, 0xE0FF), (0x10000, 0x1007F), (0x1, 0x1F)]
    out = []
    for _ in range(rng.randint(1, 40)):
        lo, hi = rng.choice(blocks)
        cp = rng.randint(lo, hi)
        out.append(chr(cp) if cp not in (0x0A,) else " ")
    return "".join(out).encode("utf-8", "surrogatepass")


def make_lines(shared, fixture, n, seed):
    rng = random.Random(seed)
    abc = abc_lines(shared)
    with open(fixture, "rb") as f:
        fix = [l for l in f.read().split(b"\n") if l]
    pool = abc + fix * 20
    lines = []
    while len(lines) < n:
        r = rng.random()
        if r < 0.35:
            line = rng.choice(abc)
        elif r < 0.50:
            line = rng.choice(fix)
        elif r < 0.65:
            parts = [rng.choice(pool) for _ in range(rng.randint(2, 4))]
            line = b"".join(p + rng.choice(SEPARATORS).encode() for p in parts)
        elif r < 0.75:
            words = rng.choice(pool).split(b" ")
            line = b"".join(w + rng.choice(SEPARATORS).encode() for w in words)
            line = rng.choice([b"", b" ", b"  ", b"\t", b"   "]) + line + rng.choice([b"", b" ", b"   ", b"\t"])
        elif r < 0.85:
            line = broken_utf8(rng, rng.choice(pool))
        elif r < 0.92:
            line = random_unicode(rng)
        elif r < 0.96:
            sp = rng.choice(SPECIALS).encode()
            line = sp + rng.choice([b"user ", b"assistant ", b"system "]) + rng.choice(pool) + rng.choice(SPECIALS).encode()
        else:
            line = bytes(rng.choice([0, 1, 9, 13, 27, 32, 127]) for _ in range(rng.randint(1, 6))) + rng.choice(pool)
        lines.append(line[:3000])
    # Edge cases: empty and blank lines, a literal U+2581, text that looks like pieces.
    lines += [b"", b" ", b"   ", b"\t", b" \t ", "\u2581".encode(), "a\u2581\u2581b \u2581".encode(), b"<0x41>",
              b"<unk><s></s>", b"\x00", b"\xef\xbf\xbd", b"\xe2\x96"]
    # Long lines exercise the merge queue.
    lines.append(b" ".join(rng.choice(abc) for _ in range(400)))
    lines.append(b"".join(rng.choice(fix) for _ in range(100)))
    return lines


def run(cmd, stdin_path, stdout_path):
    with open(stdin_path, "rb") as fin, open(stdout_path, "wb") as fout:
        t0 = time.perf_counter()
        subprocess.run(cmd, stdin=fin, stdout=fout, check=True)
        return time.perf_counter() - t0


def compare(label, ours_path, spm_path, inputs):
    with open(ours_path, "rb") as f:
        ours = f.read().split(b"\n")[:-1]
    with open(spm_path, "rb") as f:
        ref = f.read().split(b"\n")[:-1]
    total = len(inputs)
    same = sum(1 for a, b in zip(ours, ref) if a == b)
    if len(ours) != total or len(ref) != total:
        print(f"  {label}: line counts differ: ours {len(ours)}, spm {len(ref)}, input {total}")
        return False
    print(f"  {label}: {same}/{total} lines identical ({100.0 * same / total:.3f}%)")
    shown = 0
    for i, (a, b) in enumerate(zip(ours, ref)):
        if a != b and shown < 5:
            print(f"    line {i + 1}: input {inputs[i]!r}\n      ours {a[:300]!r}\n      spm  {b[:300]!r}")
            shown += 1
    return same == total


def compare_decode(melodist, model, work, tag, id_lines):
    """Decoded text may hold newlines, so outputs are compared whole; on a difference, bisect for the
    first id line that decodes differently."""
    def outputs(k):
        path = os.path.join(work, f"{tag}.decode-input")
        with open(path, "wb") as f:
            f.write(b"".join(l + b"\n" for l in id_lines[:k]))
        spm_dec, our_dec = os.path.join(work, f"{tag}.spm.dec"), os.path.join(work, f"{tag}.ours.dec")
        run(["spm_decode", f"--model={model}", "--input_format=id"], path, spm_dec)
        run([melodist, "detokenize", "-m", model, "-"], path, our_dec)
        with open(spm_dec, "rb") as a, open(our_dec, "rb") as b:
            return b.read(), a.read()

    ours, ref = outputs(len(id_lines))
    if ours == ref:
        print(f"  decode --input_format=id: {len(id_lines)}/{len(id_lines)} sequences identical (100.000%)")
        return True
    lo, hi = 0, len(id_lines)  # outputs agree on the first lo lines, differ on the first hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        a, b = outputs(mid)
        lo, hi = (mid, hi) if a == b else (lo, mid)
    ours, ref = outputs(hi)
    print(f"  decode --input_format=id: DIFFERENT; first difference at sequence {hi}: ids {id_lines[hi - 1][:200]!r}\n"
          f"      ours ...{ours[-200:]!r}\n      spm  ...{ref[-200:]!r}")
    return False


def random_id_lines(model, n, seed):
    """Random id sequences: mostly byte pieces (valid, split and broken UTF-8) mixed with other pieces."""
    import sentencepiece  # Debian python3-sentencepiece: reads the vocabulary (pieces may hold newlines)
    sp = sentencepiece.SentencePieceProcessor(model_file=model)
    rng = random.Random(seed)
    pieces = [sp.id_to_piece(i).encode() for i in range(sp.get_piece_size())]
    byte_id = {int(p[3:5], 16): i for i, p in enumerate(pieces) if sp.is_byte(i)}
    space_ids = [i for i, p in enumerate(pieces) if p.startswith("\u2581".encode())]
    lines = []
    for _ in range(n):
        ids = []
        if rng.random() < 0.3 and space_ids:
            ids.append(rng.choice(space_ids))
        for _ in range(rng.randint(1, 30)):
            r = rng.random()
            if r < 0.3 and byte_id:
                text = rng.choice(["é", "中", "🎵", "ß", "€", "\u2581", "A"]).encode()
                ids += [byte_id[c] for c in text]
            elif r < 0.5 and byte_id:
                ids.append(byte_id[rng.randint(0, 255)])
            elif r < 0.6:
                ids.append(rng.randint(0, min(10, len(pieces) - 1)))
            elif r < 0.7 and space_ids:
                ids.append(rng.choice(space_ids))
            else:
                ids.append(rng.randint(0, len(pieces) - 1))
        lines.append(" ".join(map(str, ids)).encode())
    return lines


def check_model(melodist, model, work, tag, lines_path, lines, id_lines_n, seed, specials_in_vocab=False):
    ok = True
    print(f"model {tag}: {model}")
    timings = {}
    for fmt, flag in (("id", "--ids"), ("piece", "--pieces")):
        spm_out, our_out = os.path.join(work, f"{tag}.spm.{fmt}"), os.path.join(work, f"{tag}.ours.{fmt}")
        t_spm = run(["spm_encode", f"--model={model}", f"--output_format={fmt}"], lines_path, spm_out)
        t_ours = run([melodist, "tokenize", "-m", model, flag, "-"], lines_path, our_out)
        timings[fmt] = (t_spm, t_ours)
        ok &= compare(f"encode --output_format={fmt}", our_out, spm_out, lines)
    if specials_in_vocab:
        # The chat tokens are user-defined pieces and there is no dummy prefix, so splitting the text at
        # them first (--special, as InternLM2's HF tokenizer does) must change nothing -- except where the
        # text holds <s>, </s> or <unk>, which --special maps to their ids and SentencePiece leaves as text.
        plain = [l for l in lines if not any(n in l for n in (b"<s>", b"</s>", b"<unk>"))]
        plain_path = os.path.join(work, f"{tag}.special-lines")
        with open(plain_path, "wb") as f:
            f.write(b"".join(l + b"\n" for l in plain))
        spm_out, our_out = os.path.join(work, f"{tag}.spm.special.id"), os.path.join(work, f"{tag}.ours.special.id")
        run(["spm_encode", f"--model={model}", "--output_format=id"], plain_path, spm_out)
        run([melodist, "tokenize", "-m", model, "--special", "-"], plain_path, our_out)
        ok &= compare("encode --special (vs plain spm_encode)", our_out, spm_out, plain)
    with open(os.path.join(work, f"{tag}.spm.id"), "rb") as f:
        n_tokens = sum(len(l.split()) for l in f.read().split(b"\n"))
    t_spm, t_ours = timings["id"]
    print(f"  speed: {n_tokens} tokens; spm_encode {n_tokens / t_spm:,.0f} tok/s, "
          f"melodist {n_tokens / t_ours:,.0f} tok/s (wall time incl. model load)")

    # Decode what spm produced, then random id sequences.
    ids_path = os.path.join(work, f"{tag}.spm.id")
    with open(ids_path, "rb") as f:
        id_lines = f.read().split(b"\n")[:-1]
    id_lines += random_id_lines(model, id_lines_n, seed)
    all_ids = os.path.join(work, f"{tag}.decode-input")
    with open(all_ids, "wb") as f:
        f.write(b"\n".join(id_lines) + b"\n")
    ok &= compare_decode(melodist, model, work, tag, id_lines)
    return ok


def varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return v, i


def enc_varint(v):
    out = bytearray()
    while True:
        c = v & 0x7F
        v >>= 7
        out.append(c | (0x80 if v else 0))
        if not v:
            return bytes(out)


def fields(b):
    """Top-level protobuf fields of b as (number, wire, raw bytes of the whole field, payload)."""
    i = 0
    while i < len(b):
        start = i
        key, i = varint(b, i)
        wire = key & 7
        if wire == 0:
            _, i = varint(b, i)
            payload = None
        elif wire == 2:
            n, i = varint(b, i)
            payload = b[i:i + n]
            i += n
        elif wire == 5:
            i += 4
            payload = None
        else:
            raise ValueError("unexpected wire type")
        yield key >> 3, wire, b[start:i], payload


def mark_unused(model, out_path, every):
    """Copy of a model with every `every`-th NORMAL multi-character piece turned UNUSED (type 5), which
    SentencePiece's BPE still merges through and then splits back (resegmentation)."""
    with open(model, "rb") as f:
        data = f.read()
    out, k = bytearray(), 0
    for number, wire, raw, payload in fields(data):
        if number == 1:
            sub = list(fields(payload))
            types = [varint(r, 1)[0] for n, w, r, p in sub if n == 3]
            text = [p for n, w, r, p in sub if n == 1][0]
            if (not types or types[-1] == 1) and len(text.decode("utf-8", "replace")) > 1:
                k += 1
                if k % every == 0:
                    piece = b"".join(r for n, w, r, p in sub if n != 3) + bytes([3 << 3]) + enc_varint(5)
                    raw = bytes([1 << 3 | 2]) + enc_varint(len(piece)) + piece
        out += raw
    with open(out_path, "wb") as f:
        f.write(out)
    return out_path


def train(work, corpus, tag, extra):
    prefix = os.path.join(work, tag)
    args = ["spm_train", f"--input={corpus}", f"--model_prefix={prefix}", "--model_type=bpe",
            "--num_threads=2", "--minloglevel=2"] + extra
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return prefix + ".model"


def main():
    args = sys.argv[1:]
    n_lines = 12000
    if "--lines" in args:
        i = args.index("--lines")
        n_lines = int(args[i + 1])
        del args[i:i + 2]
    melodist, shared, fixture, work = args
    if not os.path.isdir(os.path.join(shared, "data", "nottingham")):
        print(f"SKIP: shared ABC data not found under {shared}/data")
        return 77
    os.makedirs(work, exist_ok=True)
    lines = make_lines(shared, fixture, n_lines, seed=4)
    lines_path = os.path.join(work, "lines.txt")
    with open(lines_path, "wb") as f:
        f.write(b"\n".join(lines) + b"\n")
    print(f"{len(lines)} input lines, {sum(map(len, lines))} bytes")

    ok = True
    internlm2 = os.path.join(shared, "models", "internlm2-tokenizer", "tokenizer.model")
    if os.path.exists(internlm2):
        ok &= check_model(melodist, internlm2, work, "internlm2", lines_path, lines, 3000, seed=5)
    else:
        print(f"note: {internlm2} absent; InternLM2 model not checked")

    # Training corpus: the ABC collections and the fixture (spm_train reads it line by line).
    corpus = os.path.join(work, "corpus.txt")
    with open(corpus, "wb") as f:
        f.write(b"\n".join(abc_lines(shared)) + b"\n")
        with open(fixture, "rb") as fx:
            f.write(fx.read() * 20)
    specials = "--user_defined_symbols=" + ",".join(SPECIALS)
    variants = [
        ("internlm2-style", ["--vocab_size=3000", "--byte_fallback=true", specials, "--normalization_rule_name=identity",
                             "--add_dummy_prefix=false", "--remove_extra_whitespaces=false",
                             "--allow_whitespace_only_pieces=true", "--split_digits=true", "--character_coverage=0.9995"]),
        ("nfkc-bytes", ["--vocab_size=2000", "--byte_fallback=true", specials]),
        ("nfkc-unk", ["--vocab_size=1000", "--character_coverage=0.98", specials]),
        ("identity-dummy-prefix", ["--vocab_size=2500", "--byte_fallback=true", specials,
                                   "--normalization_rule_name=identity", "--remove_extra_whitespaces=false"]),
        ("ws-suffix", ["--vocab_size=2000", "--byte_fallback=true", "--treat_whitespace_as_suffix=true"]),
    ]
    models = []
    for i, (tag, extra) in enumerate(variants):
        models.append((tag, train(work, corpus, tag, extra)))
    models.append(("unused-pieces", mark_unused(models[0][1], os.path.join(work, "unused-pieces.model"), 5)))
    for i, (tag, model) in enumerate(models):
        ok &= check_model(melodist, model, work, tag, lines_path, lines, 1500, seed=6 + i,
                          specials_in_vocab=tag == "internlm2-style")
    print("all identical" if ok else "MISMATCHES (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

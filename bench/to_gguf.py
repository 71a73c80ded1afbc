#!/usr/bin/env python3
"""Writes a Melodist checkpoint directory (config.json + model.safetensors in f32/bf16/q8/q4, as
`melodist quantize` or `bench_decode ... SAVE_DIR` write it) as a GGUF v3 file for llama.cpp's `internlm2`
architecture, so bench/decode can time llama.cpp on the very same weights.

Mapping (shared/reference/internlm2-notes.md sections 1.6 and 5.2): wqkv is split per kv group into q, k, v
and the q/k rows are permuted from rotate-half to llama.cpp's pairwise RoPE order; q8 -> Q8_0 and q4 -> Q4_0
(the same blocks: f16 scale + 32 values, Q4_0 nibble order identical), bf16 -> BF16, f32 -> F32. The vocabulary
comes from tokenizer.model (sentencepiece), typed as llama.cpp's converter does.

This is a benchmarking aid, not Melodist's exporter.
usage: to_gguf.py MODEL_DIR TOKENIZER_MODEL OUT.gguf
"""
import json
import struct
import sys

import numpy as np
import sentencepiece

ALIGN = 32
GGML = {"F32": 0, "BF16": 30, "Q8_0": 8, "Q4_0": 2}


def read_safetensors(path):
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    n = struct.unpack("<Q", bytes(raw[:8]))[0]
    header = json.loads(bytes(raw[8:8 + n]))
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        out[name] = (e["dtype"], e["shape"], data[b:end])
    return out


class Matrix:
    """A weight matrix as GGUF row blocks: rows x bytes-per-row, plus its type and logical column count."""

    def __init__(self, gtype, rows_bytes, cols):
        self.type, self.rows, self.cols = gtype, rows_bytes, cols

    def take_rows(self, index):
        return Matrix(self.type, self.rows[index], self.cols)


def load_matrix(tensors, name):
    dtype, shape, buf = tensors[name]
    rows = shape[0]
    if dtype in ("F32", "BF16"):
        return Matrix(dtype, np.asarray(buf).reshape(rows, -1), shape[1])
    scales = np.asarray(tensors[name + "_scales"][2]).reshape(rows, -1, 2)
    blocks = scales.shape[1]
    q = np.asarray(buf).reshape(rows, blocks, -1)
    gtype = "Q8_0" if dtype == "I8" else "Q4_0"
    cols = blocks * 32
    return Matrix(gtype, np.concatenate([scales, q], axis=2).reshape(rows, -1), cols)


def permute(m, n_head):
    """HF rotate-half row order -> llama.cpp pairwise order (llama.cpp's LlamaModel.permute on rows)."""
    rows = m.rows.shape[0]
    order = np.arange(rows).reshape(n_head, 2, rows // n_head // 2).swapaxes(1, 2).reshape(rows)
    return m.take_rows(order)


def gguf_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, value):
    out = gguf_string(key) + struct.pack("<I", vtype)
    if vtype == 4:
        return out + struct.pack("<I", value)
    if vtype == 6:
        return out + struct.pack("<f", value)
    if vtype == 7:
        return out + struct.pack("<B", 1 if value else 0)
    if vtype == 8:
        return out + gguf_string(value)
    raise ValueError(vtype)


def kv_array(key, etype, values):
    out = gguf_string(key) + struct.pack("<IIQ", 9, etype, len(values))
    if etype == 8:
        return out + b"".join(gguf_string(v) for v in values)
    fmt = {5: "<%di", 6: "<%df"}[etype]
    return out + struct.pack(fmt % len(values), *values)


def main():
    model_dir, tok_path, out_path = sys.argv[1:4]
    cfg = json.load(open(model_dir + "/config.json"))
    t = read_safetensors(model_dir + "/model.safetensors")
    H, KV, dim = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["hidden_size"]
    D, G = dim // H, H // KV

    tensors = []  # (name, Matrix or f32 vector)

    def vector(name):
        dtype, shape, buf = t[name]
        assert dtype == "F32"
        return np.asarray(buf).view(np.float32)

    tensors.append(("token_embd.weight", load_matrix(t, "model.tok_embeddings.weight")))
    tensors.append(("output_norm.weight", vector("model.norm.weight")))
    out_name = "output.weight" if "output.weight" in t else "model.tok_embeddings.weight"
    tensors.append(("output.weight", load_matrix(t, out_name)))
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % i
        wqkv = load_matrix(t, p + "attention.wqkv.weight")
        groups = np.arange(wqkv.rows.shape[0]).reshape(KV, G + 2, D)
        q = permute(wqkv.take_rows(groups[:, :G, :].reshape(-1)), H)
        k = permute(wqkv.take_rows(groups[:, G, :].reshape(-1)), KV)
        v = wqkv.take_rows(groups[:, G + 1, :].reshape(-1))
        b = "blk.%d." % i
        tensors += [(b + "attn_norm.weight", vector(p + "attention_norm.weight")), (b + "attn_q.weight", q),
                    (b + "attn_k.weight", k), (b + "attn_v.weight", v),
                    (b + "attn_output.weight", load_matrix(t, p + "attention.wo.weight")),
                    (b + "ffn_norm.weight", vector(p + "ffn_norm.weight")),
                    (b + "ffn_gate.weight", load_matrix(t, p + "feed_forward.w1.weight")),
                    (b + "ffn_up.weight", load_matrix(t, p + "feed_forward.w3.weight")),
                    (b + "ffn_down.weight", load_matrix(t, p + "feed_forward.w2.weight"))]

    sp = sentencepiece.SentencePieceProcessor(model_file=tok_path)
    pieces, scores, types = [], [], []
    for i in range(cfg["vocab_size"]):
        if i >= sp.get_piece_size():
            pieces.append("[PAD%d]" % i), scores.append(-1000.0), types.append(5)
            continue
        piece = sp.id_to_piece(i)
        pieces.append("\U0001F409" if piece == "\x00" else piece)
        scores.append(sp.get_score(i))
        types.append(2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i)
                     else 5 if sp.is_unused(i) or piece.startswith("[UNUSED") else 1)

    a = "internlm2."  # llama.cpp has no dynamic NTK for internlm2: identical below max_position_embeddings
    meta = [kv("general.architecture", 8, "internlm2"), kv("general.name", 8, "melodist-bench"),
            kv("general.alignment", 4, ALIGN), kv(a + "context_length", 4, cfg["max_position_embeddings"]),
            kv(a + "embedding_length", 4, dim), kv(a + "block_count", 4, cfg["num_hidden_layers"]),
            kv(a + "feed_forward_length", 4, cfg["intermediate_size"]), kv(a + "attention.head_count", 4, H),
            kv(a + "attention.head_count_kv", 4, KV), kv(a + "rope.freq_base", 6, cfg["rope_theta"]),
            kv(a + "rope.dimension_count", 4, D),
            kv(a + "attention.layer_norm_rms_epsilon", 6, cfg["rms_norm_eps"]),
            kv("general.quantization_version", 4, 2), kv("tokenizer.ggml.model", 8, "llama"),
            kv("tokenizer.ggml.pre", 8, "default"), kv_array("tokenizer.ggml.tokens", 8, pieces),
            kv_array("tokenizer.ggml.scores", 6, scores), kv_array("tokenizer.ggml.token_type", 5, types),
            kv("tokenizer.ggml.bos_token_id", 4, cfg.get("bos_token_id", 1)),
            kv("tokenizer.ggml.eos_token_id", 4, 2), kv("tokenizer.ggml.unknown_token_id", 4, 0),
            kv("tokenizer.ggml.padding_token_id", 4, 2), kv("tokenizer.ggml.add_bos_token", 7, True),
            kv("tokenizer.ggml.add_space_prefix", 7, False)]

    infos, blobs, offset = [], [], 0
    for name, m in tensors:
        if isinstance(m, Matrix):
            dims, gtype, blob = [m.cols, m.rows.shape[0]], GGML[m.type], m.rows
        else:
            dims, gtype, blob = [m.shape[0]], GGML["F32"], m
        infos.append(gguf_string(name) + struct.pack("<I", len(dims)) + struct.pack("<%dQ" % len(dims), *dims) +
                     struct.pack("<IQ", gtype, offset))
        size = blob.nbytes
        blobs.append(blob)
        offset += size + (-size % ALIGN)
    with open(out_path, "wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta)))
        for m in meta:
            f.write(m)
        for i in infos:
            f.write(i)
        f.write(b"\0" * (-f.tell() % ALIGN))
        for blob in blobs:
            f.write(np.ascontiguousarray(blob).tobytes())
            f.write(b"\0" * (-blob.nbytes % ALIGN))


if __name__ == "__main__":
    main()

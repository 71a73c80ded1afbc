#!/usr/bin/env python3
"""PyTorch reference of InternLM2 (HF InternLM2ForCausalLM semantics) and the fixture maker for
tests/model: random small configs saved as HF checkpoints (config.json + safetensors: f32, bf16, sharded),
with the reference logits and greedy continuations the C engine must reproduce.

Written from the facts in shared/reference/internlm2-notes.md section 1 (our own code):
  RMSNorm in f32; packed wqkv rows per kv group = [its G query heads | key | value], each head_dim rows;
  rotate-half RoPE with inv_freq = 1/theta^(2i/D), dynamic NTK base = theta*((f*L/max_pos)-(f-1))^(D/(D-2))
  when the sequence length L (cache + new tokens) exceeds max_position_embeddings; repeat_kv maps query head
  h to key/value head h // G; causal softmax in f32; SwiGLU w2(silu(w1 x) * w3 x); untied or tied output.

usage: internlm2_ref.py OUTDIR    (exit 77 when torch is unavailable)
"""
import json
import math
import os
import struct
import sys

try:
    import torch
except ImportError:
    print("SKIP: python3 torch is not installed", file=sys.stderr)
    sys.exit(77)

torch.set_num_threads(1)


# ---------------------------------------------------------------- model

def rms_norm(x, weight, eps):
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return weight * xf.to(x.dtype)


def rope_inv_freq(cfg, seq_len):
    d = cfg["hidden_size"] // cfg["num_attention_heads"]
    base = cfg["rope_theta"]
    scaling = cfg.get("rope_scaling")
    if scaling and scaling["type"] == "dynamic" and seq_len > cfg["max_position_embeddings"]:
        f = scaling["factor"]
        base = base * ((f * seq_len / cfg["max_position_embeddings"]) - (f - 1)) ** (d / (d - 2))
    return 1.0 / (base ** (torch.arange(0, d, 2).float() / d))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rope(x, positions, inv_freq, cfg):
    t = positions.float()
    scaling = cfg.get("rope_scaling")
    if scaling and scaling["type"] == "linear":
        t = t / scaling["factor"]
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[:, None, :], emb.sin()[:, None, :]  # [seq, 1 (heads), D]
    return x * cos + rotate_half(x) * sin


def round_bf16(x):
    """Activations as bf16 weight matrices meet them (melodist and llama.cpp round them to bf16)."""
    return x.to(torch.bfloat16).float()


def forward(w, cfg, tokens, past=None, act=lambda x: x):
    """Logits [n, vocab] for tokens after the cached past; returns (logits, new_past).
    act(x) is what each weight matrix multiplies instead of x (round_bf16 for bf16 weights)."""
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D, G, eps = cfg["hidden_size"] // H, H // KV, cfg["rms_norm_eps"]
    n = len(tokens)
    past_len = past[0][0].shape[0] if past else 0
    positions = torch.arange(past_len, past_len + n)
    inv_freq = rope_inv_freq(cfg, past_len + n)
    h = w["model.tok_embeddings.weight"][torch.tensor(tokens)]
    new_past = []
    for layer in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % layer
        x = rms_norm(h, w[p + "attention_norm.weight"], eps)
        qkv = (act(x) @ w[p + "attention.wqkv.weight"].T).view(n, KV, G + 2, D)
        q = qkv[:, :, :G, :].reshape(n, H, D)
        k, v = qkv[:, :, -2, :], qkv[:, :, -1, :]
        q, k = apply_rope(q, positions, inv_freq, cfg), apply_rope(k, positions, inv_freq, cfg)
        if past:
            k, v = torch.cat((past[layer][0], k)), torch.cat((past[layer][1], v))
        new_past.append((k, v))
        k_rep, v_rep = k.repeat_interleave(G, dim=1), v.repeat_interleave(G, dim=1)
        scores = torch.einsum("nhd,thd->hnt", q, k_rep) / math.sqrt(D)
        total = past_len + n
        visible = torch.arange(total)[None, :] <= (past_len + torch.arange(n))[:, None]
        scores = scores.masked_fill(~visible, torch.finfo(scores.dtype).min)
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        att = torch.einsum("hnt,thd->nhd", probs, v_rep).reshape(n, H * D)
        h = h + act(att) @ w[p + "attention.wo.weight"].T
        x = rms_norm(h, w[p + "ffn_norm.weight"], eps)
        gate, up = act(x) @ w[p + "feed_forward.w1.weight"].T, act(x) @ w[p + "feed_forward.w3.weight"].T
        h = h + act(torch.nn.functional.silu(gate) * up) @ w[p + "feed_forward.w2.weight"].T
    h = rms_norm(h, w["model.norm.weight"], eps)
    out = w["model.tok_embeddings.weight"] if cfg["tie_word_embeddings"] else w["output.weight"]
    return (act(h) @ out.T).float(), new_past


def greedy(w, cfg, prompt, steps, act=lambda x: x):
    """Prefill the prompt, then decode one token at a time with the cache (as HF generate does).
    Returns the tokens and the smallest top-1/top-2 logit gap seen (how robust the continuation is)."""
    logits, past = forward(w, cfg, prompt, act=act)
    out, margin = [], float("inf")
    for _ in range(steps):
        top2 = torch.topk(logits[-1], 2).values
        margin = min(margin, float(top2[0] - top2[1]))
        tok = int(torch.argmax(logits[-1]))
        out.append(tok)
        logits, past = forward(w, cfg, [tok], past, act)
    return out, margin


# ---------------------------------------------------------------- checkpoints

ST_DTYPE = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}


def write_safetensors(path, tensors):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        raw = t.contiguous().view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": ST_DTYPE[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def save_model(directory, cfg, weights, shards=1):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    if shards == 1:
        write_safetensors(os.path.join(directory, "model.safetensors"), weights)
        return
    names = list(weights)
    weight_map = {}
    for s in range(shards):
        fname = "model-%05d-of-%05d.safetensors" % (s + 1, shards)
        part = {k: weights[k] for k in names[s::shards]}
        write_safetensors(os.path.join(directory, fname), part)
        weight_map.update({k: fname for k in part})
    total = sum(t.numel() * t.element_size() for t in weights.values())
    with open(os.path.join(directory, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


def random_weights(cfg, gen):
    H, KV, dim = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["hidden_size"]
    D, hidden, vocab = dim // H, cfg["intermediate_size"], cfg["vocab_size"]

    def mat(rows, cols, std):
        return torch.randn(rows, cols, generator=gen) * std

    def norm():
        return 1.0 + 0.2 * torch.randn(dim, generator=gen)

    # Tied embeddings double as the output matrix, so they get the output's scale.
    w = {"model.tok_embeddings.weight": mat(vocab, dim, 2.0 / math.sqrt(dim) if cfg["tie_word_embeddings"] else 1.0)}
    for layer in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % layer
        w[p + "attention.wqkv.weight"] = mat((H + 2 * KV) * D, dim, 0.6 / math.sqrt(dim))
        w[p + "attention.wo.weight"] = mat(dim, H * D, 0.5 / math.sqrt(dim))
        w[p + "feed_forward.w1.weight"] = mat(hidden, dim, 1.0 / math.sqrt(dim))
        w[p + "feed_forward.w3.weight"] = mat(hidden, dim, 1.0 / math.sqrt(dim))
        w[p + "feed_forward.w2.weight"] = mat(dim, hidden, 0.5 / math.sqrt(hidden))
        w[p + "attention_norm.weight"] = norm()
        w[p + "ffn_norm.weight"] = norm()
    w["model.norm.weight"] = norm()
    if not cfg["tie_word_embeddings"]:
        w["output.weight"] = mat(vocab, dim, 2.0 / math.sqrt(dim))
    return w


def config(dim, layers, heads, kv, hidden, vocab, max_pos, theta, scaling, tie):
    return {
        "architectures": ["InternLM2ForCausalLM"], "model_type": "internlm2", "hidden_size": dim,
        "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv,
        "intermediate_size": hidden, "vocab_size": vocab, "max_position_embeddings": max_pos,
        "rope_theta": theta, "rope_scaling": scaling, "rms_norm_eps": 1e-5, "tie_word_embeddings": tie,
        "bias": False, "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2,
        "torch_dtype": "float32",
    }


CASES = [  # name, config, whether to also write bf16 and sharded copies
    ("h4kv4", config(64, 2, 4, 4, 128, 320, 32, 10000.0, {"type": "dynamic", "factor": 2.0}, False), True),
    ("h8kv2_tied", config(64, 3, 8, 2, 96, 288, 40, 1000000.0, {"type": "dynamic", "factor": 2.0}, True), False),
    ("h6kv1", config(96, 2, 6, 1, 160, 256, 24, 500000.0, {"factor": 1.5, "type": "dynamic"}, False), False),
    ("h4kv2_linear", config(64, 2, 4, 2, 128, 300, 2048, 10000.0, {"type": "linear", "factor": 4.0}, False), False),
]
SEQ_LEN, PROMPT_LEN, GREEDY_STEPS = 48, 8, 64


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    manifest = []
    for index, (name, cfg, extra) in enumerate(CASES):
        for attempt in range(20):  # reseed until the greedy path has no near-ties
            gen = torch.Generator().manual_seed(1000 * index + attempt)
            w = random_weights(cfg, gen)
            tokens = torch.randint(0, cfg["vocab_size"], (SEQ_LEN,), generator=gen).tolist()
            prompt = tokens[:PROMPT_LEN]
            with torch.no_grad():
                cont, margin = greedy(w, cfg, prompt, GREEDY_STEPS)
            if margin > 2e-3:
                break
        with torch.no_grad():
            logits, _ = forward(w, cfg, tokens)
        variants = [("f32", w, 1)]
        if extra:
            wb = {k: v.to(torch.bfloat16) for k, v in w.items()}
            variants += [("bf16", wb, 1), ("sharded", w, 3)]
        for variant, weights, shards in variants:
            d = "%s_%s" % (name, variant)
            save_model(os.path.join(out, d), cfg, weights, shards)
            # bf16 reference: rounded weights meeting rounded activations, f32 maths
            ref = {k: v.float() for k, v in weights.items()}
            with torch.no_grad():
                vlogits = logits if weights is w else forward(ref, cfg, tokens, act=round_bf16)[0]
                vcont, vmargin = (cont, margin) if weights is w else greedy(ref, cfg, prompt, GREEDY_STEPS, round_bf16)
            vlogits.numpy().astype("<f4").tofile(os.path.join(out, d + ".logits"))
            manifest.append({"name": d, "dir": d, "variant": variant, "tokens": tokens, "prompt": prompt,
                             "greedy": vcont, "greedy_margin": vmargin, "vocab_size": cfg["vocab_size"],
                             "logits": d + ".logits", "ntk_active": SEQ_LEN > cfg["max_position_embeddings"]})
            print("%-22s greedy margin %.4f  max|logit| %.3f" % (d, vmargin, float(vlogits.abs().max())))
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()

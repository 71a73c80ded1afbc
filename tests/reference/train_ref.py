#!/usr/bin/python3
"""PyTorch autograd oracle for the training engine (float64 on the PyTorch side).

  train_ref.py ops DUMP            check every backward kernel dumped by train_ops_dump
  train_ref.py model DIR           check loss and every parameter gradient dumped by train_model_dump
  train_ref.py adamw DUMP          check AdamW steps against torch.optim.AdamW

Prints the relative error (max |ours - torch| / max |torch|) of every tensor; exits 1 when one exceeds 1e-4.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch

TOL = 1e-4
failures = []


def read_dump(path):
    out = {}
    with open(path, "rb") as f:
        assert f.read(4) == b"MLDT", path + ": not a tensor dump"
        while True:
            head = f.read(4)
            if not head:
                return out
            (n,) = struct.unpack("<I", head)
            name = f.read(n).decode()
            dtype, ndim = struct.unpack("<II", f.read(8))
            dims = struct.unpack("<%dq" % ndim, f.read(8 * ndim))
            count = int(np.prod(dims)) if ndim else 1
            arr = np.frombuffer(f.read(4 * count), dtype=np.float32 if dtype == 0 else np.int32)
            out[name] = torch.from_numpy(arr.reshape(dims).astype(np.float64 if dtype == 0 else np.int64))


def check(name, ours, ref, tol=TOL):
    ref = ref.detach().double()
    ours = ours.double().reshape(ref.shape)
    err = ((ours - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()
    ok = err <= tol
    print("%-36s rel err %.3e %s" % (name, err, "ok" if ok else "FAIL (tol %.0e)" % tol))
    if not ok:
        failures.append(name)
    return err


def rmsnorm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rope(x, pos, theta):
    """x [..., T, nh, D] rotate-half RoPE with per-token positions pos [..., T]."""
    D = x.shape[-1]
    inv = 1.0 / theta ** (torch.arange(0, D, 2, dtype=torch.float64) / D)
    ang = pos.double()[..., None] * inv
    emb = torch.cat([ang, ang], -1)[..., None, :]
    rot = torch.cat([-x[..., D // 2:], x[..., : D // 2]], -1)
    return x * emb.cos() + rot * emb.sin()


def attention(qkv_raw, start, H, KV, D, theta):
    """InternLM2 attention core on packed qkv [B, T, (H+2KV)D]; query t sees keys start[t]..t."""
    B, T, _ = qkv_raw.shape
    G = H // KV
    x = qkv_raw.view(B, T, KV, G + 2, D)
    q = x[:, :, :, :G, :].reshape(B, T, H, D)
    k = x[:, :, :, G, :]
    v = x[:, :, :, G + 1, :]
    pos = torch.arange(T)[None, :] - start
    q, k = rope(q, pos, theta), rope(k, pos, theta)
    k = k.repeat_interleave(G, dim=2)
    v = v.repeat_interleave(G, dim=2)
    s = torch.einsum("bthd,bshd->bhts", q, k) / math.sqrt(D)
    idx = torch.arange(T)
    allowed = (idx[None, None, :] <= idx[None, :, None]) & (idx[None, None, :] >= start[:, :, None])
    s = s.masked_fill(~allowed[:, None], float("-inf"))
    p = torch.softmax(s, -1)
    return torch.einsum("bhts,bshd->bthd", p, v).reshape(B, T, H * D)


def grads_of(f, inputs, dy):
    leaves = [t.clone().requires_grad_(True) for t in inputs]
    y = f(*leaves)
    y.backward(dy)
    return y, [t.grad for t in leaves]


def cmd_ops(path):
    d = read_dump(path)
    x, w, dy = d["rms.x"], d["rms.w"], d["rms.dy"]
    _, (gx, gw) = grads_of(lambda x, w: rmsnorm(x, w, 1e-5), [x, w], dy)
    check("rmsnorm dx (accumulated)", d["rms.dx"], d["rms.dx0"] + gx)
    check("rmsnorm dw", d["rms.dw"], gw)
    _, (gx, gW) = grads_of(lambda x, W: x @ W.T, [x, d["mm.W"]], d["mm.dy"])
    check("matmul dx", d["mm.dx"], gx)
    check("matmul dW", d["mm.dW"], gW)
    _, (ga, gb) = grads_of(lambda a, b: torch.nn.functional.silu(a) * b, [x, d["glu.b"]], dy)
    check("swiglu da", d["glu.da"], ga)
    check("swiglu db", d["glu.db"], gb)
    V = d["emb.dwte"].shape[0]
    _, (gwte,) = grads_of(lambda wte: wte[d["emb.tok"]], [torch.zeros(V, x.shape[1], dtype=torch.float64)], dy)
    check("embedding dwte", d["emb.dwte"], gwte)
    tgt = d["ce.targets"].clone()
    tgt[tgt < 0] = -100
    loss, (gz,) = grads_of(lambda z: torch.nn.functional.cross_entropy(z, tgt, ignore_index=-100),
                           [d["ce.logits"]], torch.tensor(1.0, dtype=torch.float64))
    check("cross-entropy loss", d["ce.loss"], loss)
    check("cross-entropy dlogits", d["ce.dlogits"], gz)
    for tag in ("att_mha", "att_gqa", "att_mqa"):
        B, T, H, KV, D = d[tag + ".shape"].tolist()
        f = lambda qkv: attention(qkv, d[tag + ".start"], H, KV, D, 10000.0)
        out, (gqkv,) = grads_of(f, [d[tag + ".qkv_raw"]], d[tag + ".dout"])
        check("%s (H=%d KV=%d D=%d) out" % (tag, H, KV, D), d[tag + ".out"], out)
        check("%s dqkv (through RoPE)" % tag, d[tag + ".dqkv_raw"], gqkv)


def cmd_adamw(path):
    """Replays the dumped steps with torch.optim.AdamW in float32; the results must be bit-identical."""
    d = read_dump(path)
    a = torch.nn.Parameter(d["a0"].float())
    b = torch.nn.Parameter(d["b0"].float())
    opt = torch.optim.AdamW([{"params": [a], "weight_decay": 0.1}, {"params": [b], "weight_decay": 0.0}],
                            lr=1.0, betas=(0.9, 0.95), eps=1e-8, foreach=False)
    for s in range(d["lr"].shape[0]):
        for group in opt.param_groups:
            group["lr"] = float(np.float32(d["lr"][s].item()))
        a.grad, b.grad = d["ga"][s].float(), d["gb"][s].float()
        opt.step()
    m = torch.cat([opt.state[a]["exp_avg"], opt.state[b]["exp_avg"]])
    v = torch.cat([opt.state[a]["exp_avg_sq"], opt.state[b]["exp_avg_sq"]])
    lr_ref = [3e-2 * (s + 1) / 2 if s < 2 else 3e-3 + 0.5 * (1 + math.cos(math.pi * (s - 2) / 3)) * (3e-2 - 3e-3)
              for s in range(5)]
    check("lr schedule (warmup + cosine)", d["lr"], torch.tensor(lr_ref), 1e-6)
    for name, ours, ref in (("params (wd 0.1)", d["a"], a), ("params (wd 0)", d["b"], b), ("exp_avg", d["m"], m),
                            ("exp_avg_sq", d["v"], v)):
        diff = (ours.float() - ref.detach()).abs().max().item()
        print("adamw %-30s max |diff| %.3e %s" % (name, diff, "identical" if diff == 0 else "DIFFERENT"))
        if diff != 0:
            failures.append("adamw " + name)


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", name
        b, e = t["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[b:e], dtype=np.float32).reshape(t["shape"]).astype(np.float64))
    return out


def internlm2_loss(w, cfg, tokens, targets, start, linear=None):
    """Mean cross-entropy of InternLM2 (HF modeling_internlm2 semantics) over targets >= 0, with attention
    restricted to each token's document (keys start[t]..t) and RoPE positions counted from the document start.
    linear(x, module) computes each linear layer (default x @ w[module + ".weight"].T; LoRA oracles add to it)."""
    linear = linear or (lambda x, module: x @ w[module + ".weight"].T)
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = cfg["hidden_size"] // H
    eps, theta = cfg["rms_norm_eps"], cfg["rope_theta"]
    h = w["model.tok_embeddings.weight"][tokens]
    for l in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % l
        x = rmsnorm(h, w[p + "attention_norm.weight"], eps)
        a = attention(linear(x, p + "attention.wqkv"), start, H, KV, D, theta)
        h = h + linear(a, p + "attention.wo")
        x = rmsnorm(h, w[p + "ffn_norm.weight"], eps)
        f = torch.nn.functional.silu(linear(x, p + "feed_forward.w1")) * linear(x, p + "feed_forward.w3")
        h = h + linear(f, p + "feed_forward.w2")
    h = rmsnorm(h, w["model.norm.weight"], eps)
    logits = h @ w["model.tok_embeddings.weight"].T if cfg.get("tie_word_embeddings") else linear(h, "output")
    tgt = targets.clone()
    tgt[tgt < 0] = -100
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=-100)


def dump_cases(path):
    """(name, directory, config) of every case directory under PATH that holds a grads.bin dump."""
    for case in sorted(os.listdir(path)):
        d = os.path.join(path, case)
        if os.path.isfile(os.path.join(d, "grads.bin")):
            yield case, d, json.load(open(os.path.join(d, "config.json")))


def cmd_model(path):
    for case, d, cfg in dump_cases(path):
        w = {k: v.requires_grad_(True) for k, v in read_safetensors(os.path.join(d, "model.safetensors")).items()}
        g = read_dump(os.path.join(d, "grads.bin"))
        loss = internlm2_loss(w, cfg, g["tokens"], g["targets"], g["start"])
        loss.backward()
        check("%s loss" % case, g["loss"], loss)
        worst = max((check("%s %s" % (case, name), g[name], t.grad) for name, t in sorted(w.items())))
        print("%s: %d tensors, worst gradient rel err %.3e" % (case, len(w), worst))


def main(doc, commands):
    """argv: COMMAND PATH with COMMAND a key of `commands` (name -> function of PATH); the exit status."""
    if len(sys.argv) != 3 or sys.argv[1] not in commands:
        print(doc, file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    commands[sys.argv[1]](sys.argv[2])
    if failures:
        print("FAILED: " + ", ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(__doc__, {"ops": cmd_ops, "model": cmd_model, "adamw": cmd_adamw}))

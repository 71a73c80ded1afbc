#!/usr/bin/python3
"""PyTorch CPU training throughput of the same InternLM2 shape, batch and thread count as melodist's bench.

  torch_train.py CONFIG.json STEPS    prints the parameter count and the median process CPU seconds of a step
                                      after the first

Same work per step as melodist: forward, loss, backward, global-norm clip, AdamW; float32."""
import json
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F


class Layer(torch.nn.Module):
    def __init__(s, c):
        super().__init__()
        d, H, KV = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
        s.H, s.KV, s.D = H, KV, d // H
        s.wqkv = torch.nn.Linear(d, (H + 2 * KV) * s.D, bias=False)
        s.wo = torch.nn.Linear(H * s.D, d, bias=False)
        s.w1 = torch.nn.Linear(d, c["intermediate_size"], bias=False)
        s.w3 = torch.nn.Linear(d, c["intermediate_size"], bias=False)
        s.w2 = torch.nn.Linear(c["intermediate_size"], d, bias=False)
        s.n1 = torch.nn.Parameter(torch.ones(d))
        s.n2 = torch.nn.Parameter(torch.ones(d))

    def forward(s, h, cos, sin, mask):
        B, T, _ = h.shape
        G = s.H // s.KV
        x = rmsnorm(h, s.n1)
        qkv = s.wqkv(x).view(B, T, s.KV, G + 2, s.D)
        q = qkv[:, :, :, :G].reshape(B, T, s.H, s.D).transpose(1, 2)
        k = qkv[:, :, :, G].transpose(1, 2)
        v = qkv[:, :, :, G + 1].transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        k, v = k.repeat_interleave(G, 1), v.repeat_interleave(G, 1)
        a = torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(s.D) + mask, -1) @ v
        h = h + s.wo(a.transpose(1, 2).reshape(B, T, -1))
        x = rmsnorm(h, s.n2)
        return h + s.w2(F.silu(s.w1(x)) * s.w3(x))


def rmsnorm(x, w):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5))


def rope(x, cos, sin):
    D = x.shape[-1]
    return x * cos + torch.cat([-x[..., D // 2:], x[..., : D // 2]], -1) * sin


def main():
    cfg = json.load(open(sys.argv[1]))
    steps = int(sys.argv[2])
    c, tr = cfg["model"], cfg["train"]
    torch.set_num_threads(cfg["threads"])
    torch.manual_seed(0)
    V, d, L = c["vocab_size"], c["hidden_size"], c["num_hidden_layers"]
    B, T = tr["micro_batch"], cfg["data"]["seq_len"]
    accum = tr["batch_size"] // B
    emb = torch.nn.Embedding(V, d)
    layers = torch.nn.ModuleList([Layer(c) for _ in range(L)])
    norm = torch.nn.Parameter(torch.ones(d))
    out = torch.nn.Linear(d, V, bias=False)
    params = list(emb.parameters()) + list(layers.parameters()) + [norm] + list(out.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    D = d // c["num_attention_heads"]
    inv = 1.0 / (c.get("rope_theta", 10000.0) ** (torch.arange(0, D, 2).float() / D))
    ang = torch.arange(T).float()[:, None] * inv
    cos, sin = torch.cat([ang, ang], -1).cos(), torch.cat([ang, ang], -1).sin()
    mask = torch.full((T, T), float("-inf")).triu(1)
    times = []
    for _ in range(steps):
        t0 = time.process_time()
        opt.zero_grad()
        for _ in range(accum):
            tok = torch.randint(0, V, (B, T + 1))
            h = emb(tok[:, :-1])
            for layer in layers:
                h = layer(h, cos, sin, mask)
            logits = out(rmsnorm(h, norm))
            loss = F.cross_entropy(logits.reshape(-1, V), tok[:, 1:].reshape(-1)) / accum
            loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        times.append(time.process_time() - t0)
    print(sum(p.numel() for p in params), statistics.median(times[1:]))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Oracles for LoRA / QLoRA fine-tuning (float64 PyTorch on the reference side unless said otherwise).

  lora_ref.py nf4 DUMP     NF4 + double quantisation re-derived from the published bitsandbytes algorithm
                           (code book from create_normal_map with the standard library's inverse normal CDF,
                           dynamic map from create_dynamic_map with torch.linspace, blockwise absmax, bucketize)
  lora_ref.py lora DIR     loss and LoRA gradients of train dumps (tests/finetune/lora_dump.c) against
                           autograd through the InternLM2 reference of train_ref.py with PEFT LoRA layers

Exits 1 when a check fails.
"""
import json
import os
import statistics
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_ref  # noqa: E402  (read_dump, check, read_safetensors, the InternLM2 reference)

failures = train_ref.failures


def equal(name, ours, ref):
    ours, ref = np.asarray(ours), np.asarray(ref)
    bad = int(np.sum(ours.reshape(ref.shape) != ref))
    print("%-36s %d values, %d differ %s" % (name, ref.size, bad, "ok" if bad == 0 else "FAIL"))
    if bad:
        failures.append(name)


def create_normal_map(offset=0.9677083):
    """bitsandbytes functional.create_normal_map(offset, use_extra_value=True); norm.ppf from the stdlib."""
    ppf = statistics.NormalDist().inv_cdf
    v1 = [ppf(p) for p in torch.linspace(offset, 0.5, 9)[:-1].tolist()]
    v3 = [-ppf(p) for p in torch.linspace(offset, 0.5, 8)[:-1].tolist()]
    values = torch.tensor(v1 + [0.0] * (256 - 15) + v3, dtype=torch.float32).sort().values
    values /= values.max()
    nz = values[(values != 0) | (torch.arange(256) == 128)]  # the 16 distinct values
    return torch.unique(nz)


def create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8):
    data = []
    non_sign_bits = total_bits - 1
    for i in range(max_exponent_bits):
        fraction_items = int(2 ** (i + non_sign_bits - max_exponent_bits) + 1)
        boundaries = torch.linspace(0.1, 1, fraction_items, dtype=torch.float32)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
    data.append(0)
    data.append(1.0)
    data.sort()
    return torch.tensor(data, dtype=torch.float32)


def quantize_blockwise(x, code, blocksize):
    """Per block: absmax, scaled = clamp(x / absmax, -1, 1), index = bucketize against code midpoints."""
    n = x.numel()
    pad = (-n) % blocksize
    xb = torch.cat([x, torch.zeros(pad)]).reshape(-1, blocksize)
    absmax = xb.abs().max(dim=1).values
    scaled = torch.clamp(xb / absmax[:, None], -1, 1).reshape(-1)[:n]
    mid = (code[:-1] + code[1:]) / 2
    return torch.bucketize(scaled, mid).to(torch.int64), absmax


def cmd_nf4(path):
    d = train_ref.read_dump(path)
    x = d["x"].float()
    code = create_normal_map()
    err = (d["code"].float() - code).abs().max().item()
    print("%-36s max |ours - derived| %.2e %s" % ("nf4 code book", err, "ok" if err <= 2e-7 else "FAIL"))
    if err > 2e-7:
        failures.append("nf4 code book")
    code = d["code"].float()  # the published table (derivation agrees to float rounding)
    # torch.linspace's float32 results depend on its vectorised CPU path (which elements come from the start
    # or the end, SIMD width); the map is the same to one rounding, and the rest runs on the dumped map.
    dyn = create_dynamic_map()
    ours = d["dynamic_map"].float()
    ulps = ((ours - dyn).abs() / torch.finfo(torch.float32).eps / dyn.abs().clamp_min(1e-30)).max().item()
    print("%-36s max rel diff %.2f eps %s" % ("dynamic map (256 values)", ulps, "ok" if ulps <= 2 else "FAIL"))
    if ulps > 2:
        failures.append("dynamic map")
    dyn = ours
    q, absmax = quantize_blockwise(x, code, 64)
    qp = torch.cat([q, torch.zeros(x.numel() % 2, dtype=torch.int64)]).reshape(-1, 2)
    packed = (qp[:, 0] << 4) | qp[:, 1]
    for dq in (0, 1):
        equal("dq%d packed codes" % dq, d["dq%d.packed" % dq].numpy(), packed.numpy())
    equal("absmax per 64-block", d["dq0.absmax"].float().numpy(), absmax.numpy())
    deq = code[q] * torch.repeat_interleave(absmax, 64)[: x.numel()]
    equal("dequantised (f32 scales)", d["dq0.dequant"].float().numpy(), deq.numpy())
    equal("dequantised range (f32 scales)", d["dq0.dequant_range"].float().numpy(), deq[6405:7405].numpy())
    offset = absmax.double().mean().float()
    rel = abs(d["dq1.offset"].item() - offset.item()) / offset.item()
    print("%-36s rel err %.2e %s" % ("double quant offset (mean)", rel, "ok" if rel <= 1e-6 else "FAIL"))
    if rel > 1e-6:
        failures.append("offset")
    q2, absmax2 = quantize_blockwise(absmax - d["dq1.offset"].float(), dyn, 256)
    equal("double quant 8-bit codes", d["dq1.qabsmax"].numpy(), q2.numpy())
    equal("double quant absmax per 256-block", d["dq1.absmax2"].float().numpy(), absmax2.numpy())
    scales = dyn[q2] * torch.repeat_interleave(absmax2, 256)[: absmax.numel()] + d["dq1.offset"].float()
    deq2 = code[q] * torch.repeat_interleave(scales, 64)[: x.numel()]
    equal("dequantised (double quant)", d["dq1.dequant"].float().numpy(), deq2.numpy())
    equal("dequantised range (double quant)", d["dq1.dequant_range"].float().numpy(), deq2[6405:7405].numpy())
    werr = ((deq2 - x).abs().max() / x.abs().max()).item()
    print("quantisation error max |w - deq| / max |w| = %.4f (double quant), scale rel err %.2e" %
          (werr, ((scales - absmax).abs() / absmax).max().item()))


MODULES = ["attention.wqkv", "attention.wo", "feed_forward.w1", "feed_forward.w2", "feed_forward.w3"]


def mix(z):
    """The 64-bit finaliser of the C side's dropout hash (splitmix64's), in wrapping uint64 arithmetic."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def dropout_mask(seed, adapter, n, p):
    """Element e of adapter i's input is kept when mix(seed ^ mix((i+1) * golden + e)) / 2^64 >= p."""
    with np.errstate(over="ignore"):
        e = np.arange(n, dtype=np.uint64)
        inner = mix(np.uint64(adapter + 1) * np.uint64(0x9E3779B97F4A7C15) + e)
        h = mix(np.uint64(seed) ^ inner)
    return torch.from_numpy(((h >> np.uint64(11)).astype(np.float64) * 2.0 ** -53 >= p).astype(np.float64))


def cmd_lora(path):
    for case, d, cfg in train_ref.dump_cases(path):
        acfg = json.load(open(os.path.join(d, "adapter_config.json")))
        w = train_ref.read_safetensors(os.path.join(d, "model.safetensors"))
        ad = {k.replace("base_model.model.", ""): v.requires_grad_(True)
              for k, v in train_ref.read_safetensors(os.path.join(d, "adapter_model.safetensors")).items()}
        g = train_ref.read_dump(os.path.join(d, "grads.bin"))
        scaling, p = acfg["lora_alpha"] / acfg["r"], acfg["lora_dropout"]
        seed = int(g["dropout_seed"].numpy().astype(np.int64)[0]) & 0xFFFFFFFF | \
            (int(g["dropout_seed"].numpy().astype(np.int64)[1]) & 0xFFFFFFFF) << 32
        order = ["model.layers.%d.%s" % (l, m) for l in range(cfg["num_hidden_layers"]) for m in MODULES] + ["output"]

        def linear(x, module):
            """PEFT LoRA layer: base(x) + lora_B(lora_A(dropout(x))) * scaling, dropout by the C side's mask."""
            y = x @ w[module + ".weight"].T
            if module + ".lora_A.weight" not in ad:
                return y
            if p > 0:
                mask = dropout_mask(seed, order.index(module), x.numel(), p).reshape(x.shape)
                x = x * mask * (1.0 / (1.0 - p))
            return y + (x @ ad[module + ".lora_A.weight"].T) @ ad[module + ".lora_B.weight"].T * scaling

        loss = train_ref.internlm2_loss(w, cfg, g["tokens"], g["targets"], g["start"], linear)
        loss.backward()
        train_ref.check("%s loss" % case, g["loss"], loss)
        flat, at, worst, n = g["lora_grads"], 0, 0.0, 0
        for mod in order:  # the C side's flat order: adapters in layer order, A then B
            for part in ("lora_A", "lora_B"):
                t = ad.get("%s.%s.weight" % (mod, part))
                if t is None:
                    continue
                worst = max(worst, train_ref.check("%s %s.%s" % (case, mod, part), flat[at:at + t.numel()], t.grad))
                at, n = at + t.numel(), n + 1
        ok = at == flat.numel()
        print("%s: %d adapter tensors (%s), dropout %g, worst gradient rel err %.3e%s" %
              (case, n, ",".join(acfg["target_modules"]), p, worst, "" if ok else " SIZE MISMATCH"))
        if not ok:
            failures.append(case + " size")


if __name__ == "__main__":
    sys.exit(train_ref.main(__doc__, {"nf4": cmd_nf4, "lora": cmd_lora}))

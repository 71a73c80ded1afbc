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


def cmd_lora(path):
    for case in sorted(os.listdir(path)):
        d = os.path.join(path, case)
        if not os.path.isfile(os.path.join(d, "grads.bin")):
            continue
        cfg = json.load(open(os.path.join(d, "config.json")))
        acfg = json.load(open(os.path.join(d, "adapter_config.json")))
        w = train_ref.read_safetensors(os.path.join(d, "model.safetensors"))
        ad = {k: v.requires_grad_(True)
              for k, v in train_ref.read_safetensors(os.path.join(d, "adapter_model.safetensors")).items()}
        scaling = acfg["lora_alpha"] / acfg["r"]
        # PEFT: y = x W^T + scaling * (x A^T) B^T, i.e. the weight W + scaling * B A (dropout off)
        order = ["model.layers.%d.%s" % (l, m) for l in range(cfg["num_hidden_layers"]) for m in MODULES] + ["output"]
        params = []
        for mod in order:
            a = "base_model.model.%s.lora_A.weight" % mod
            if a not in ad:
                continue
            b = a.replace("lora_A", "lora_B")
            w[mod + ".weight"] = w[mod + ".weight"] + scaling * (ad[b] @ ad[a])
            params += [ad[a], ad[b]]
        g = train_ref.read_dump(os.path.join(d, "grads.bin"))
        loss = train_ref.internlm2_loss(w, cfg, g["tokens"], g["targets"], g["start"])
        loss.backward()
        train_ref.check("%s loss" % case, g["loss"], loss)
        flat = g["lora_grads"]
        at, worst = 0, 0.0
        for p_ in params:
            n = p_.numel()
            name = [k for k, v in ad.items() if v is p_][0].replace("base_model.model.", "")
            worst = max(worst, train_ref.check("%s %s" % (case, name), flat[at:at + n], p_.grad))
            at += n
        ok = at == flat.numel()
        print("%s: %d adapter tensors (%s), worst gradient rel err %.3e%s" %
              (case, len(params), ",".join(acfg["target_modules"]), worst, "" if ok else " SIZE MISMATCH"))
        if not ok:
            failures.append(case + " size")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("nf4", "lora"):
        print(__doc__, file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    globals()["cmd_" + sys.argv[1]](sys.argv[2])
    if failures:
        print("FAILED: " + ", ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

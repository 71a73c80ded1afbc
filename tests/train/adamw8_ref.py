#!/usr/bin/python3
"""Oracle for 8-bit AdamW (tests/train/adamw8_dump.c): bitsandbytes' AdamW8bit re-implemented from the
published algorithm (create_dynamic_map, and the blockwise Adam kernel kOptimizerStatic8bit2StateBlockwise:
de-quantise m and v with their block absmax, Adam moment updates, new block absmax, the parameter step
p += -lr*sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + sqrt(1-b2^t)*eps), then p *= 1-lr*wd, re-quantise to the
nearest code), all in float32 numpy. Every dumped step is replayed from our state before it.

  adamw8_ref.py DUMP    exits 1 when a check fails
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import train_ref  # noqa: E402  (read_dump)

BLOCK, B1, B2, EPS = 2048, np.float32(0.9), np.float32(0.999), np.float32(1e-8)
WD = [0.0, 0.01, 0.0, 0.01]
failures = []


def create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8):
    """bitsandbytes.functional.create_dynamic_map, as published."""
    data = []
    non_sign_bits = total_bits - 1
    for i in range(max_exponent_bits):
        fraction_items = int(2 ** (i + non_sign_bits - max_exponent_bits) + 1 if signed
                             else 2 ** (i + non_sign_bits - max_exponent_bits + 1) + 1)
        boundaries = torch.linspace(0.1, 1, fraction_items)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
    data.append(0)
    data.append(1.0)
    assert len(data) == 2 ** total_bits
    data.sort()
    return np.array(data, dtype=np.float32)


def report(name, ok, text):
    print("adamw8 %-34s %s %s" % (name, text, "ok" if ok else "FAIL"))
    if not ok:
        failures.append(name)


def nearest(code, x):
    """Index of the nearest code value (the kernel's quantize_2D binary search ends at the nearest)."""
    mid = (code[:-1] + code[1:]) / np.float32(2)
    return np.searchsorted(mid, x, side="left")


def step(p, qm, qv, am, av, g, lr, wd, t, smap, umap):
    lr, wd = np.float32(lr), np.float32(wd)
    c1 = np.float32(1) - B1 ** np.float32(t)
    c2 = np.sqrt(np.float32(1) - B2 ** np.float32(t))
    step_size = -lr * c2 / c1
    n = p.size
    blk = np.arange(n) // BLOCK
    m = smap[qm] * am[blk]
    m = m * B1 + (np.float32(1) - B1) * g
    v = umap[qv] * av[blk]
    v = v * B2 + (np.float32(1) - B2) * g * g
    nb = am.size
    new_am = np.array([np.abs(m[b * BLOCK:(b + 1) * BLOCK]).max() for b in range(nb)], dtype=np.float32)
    new_av = np.array([np.abs(v[b * BLOCK:(b + 1) * BLOCK]).max() for b in range(nb)], dtype=np.float32)
    p = p + step_size * (m / (np.sqrt(v) + c2 * EPS))
    if wd > 0:
        p = p * (np.float32(1) - lr * wd)
    with np.errstate(invalid="ignore", divide="ignore"):
        sm = np.where(new_am[blk] > 0, m / new_am[blk], np.float32(0))
        sv = np.where(new_av[blk] > 0, v / new_av[blk], np.float32(0))
    return p.astype(np.float32), nearest(smap, sm), nearest(umap, sv), new_am, new_av


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    d = {k: v.numpy() for k, v in train_ref.read_dump(sys.argv[1]).items()}
    smap, umap = create_dynamic_map(True), create_dynamic_map(False)
    for name, ours, ref in (("signed dynamic map", d["map_signed"], smap),
                            ("unsigned dynamic map", d["map_unsigned"], umap)):
        err = np.abs(ours.astype(np.float32) - ref).max() / np.finfo(np.float32).eps
        report(name, err <= 2, "max |ours - published| %.1f float32 eps" % err)
    smap, umap = d["map_signed"].astype(np.float32), d["map_unsigned"].astype(np.float32)
    steps = d["lr"].size
    for s in range(steps):
        b, a = "before%d." % s, "after%d." % s
        f32 = {k: d[b + k].astype(np.float32) for k in ("p", "am", "av")}
        p0 = f32["p"]
        p, qm, qv, am, av = step(p0, d[b + "qm"], d[b + "qv"], f32["am"], f32["av"], d["grad%d" % s].astype(np.float32),
                                 d["lr"][s], WD[s], s + 1, smap, umap)
        moved = np.abs(p - p0).max()
        perr = np.abs(d[a + "p"].astype(np.float32) - p).max() / moved
        report("step %d parameters" % (s + 1), perr <= 1e-5,
                "max |ours - ref| / max |step| %.2e (step up to %.2e)" % (perr, moved))
        aerr = max(np.abs(d[a + "am"] - am).max() / am.max(), np.abs(d[a + "av"] - av).max() / av.max())
        report("step %d block absmax" % (s + 1), aerr <= 1e-6, "rel err %.2e" % aerr)
        for w, ref in (("qm", qm), ("qv", qv)):
            diff = np.abs(d[a + w] - ref)
            report("step %d codes %s" % (s + 1, w), diff.max() <= 1 and (diff > 0).mean() <= 1e-3,
                   "%d of %d differ (by at most %d)" % ((diff > 0).sum(), diff.size, diff.max()))
    zero_block = 2
    report("all-zero gradients block", bool(np.all(d["after%d.am" % (steps - 1)][zero_block] == 0)),
           "its moments stay exactly 0")
    if failures:
        print("FAILED: " + ", ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

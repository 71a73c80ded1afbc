#!/usr/bin/python3
"""Training throughput of melodist beside PyTorch 1.13 CPU: same InternLM2 shape, batch, seq_len, threads.

  bench/train/run.py [BUILD_DIR] [THREADS]        (from the repository root)

Counts CPU time (user + sys of all threads), which a machine shared with other jobs disturbs far less than
wall time: melodist's CPU time per step is the difference between a run of STEPS + 1 steps and one of 1 step
(so tokenising, start-up and the final checkpoint cancel out); PyTorch's is the median process CPU time of a
step after the first. GFLOP counts 6 x parameters x tokens plus 12 x layers x seq_len x hidden per token."""
import json
import os
import resource
import subprocess
import sys
import tempfile

ROOT = os.getcwd()
SHAPES = [  # name, hidden, layers, heads, ffn, micro, batch, steps
    ("10M", 384, 6, 6, 1024, 4, 8, 4),
    ("100M", 768, 12, 12, 2048, 1, 2, 2),
]


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def melodist_cpu(binary, config, work, steps):
    cfg = dict(config)
    cfg["train"] = dict(cfg["train"], steps=steps)
    cfg["checkpoint"] = dict(cfg["checkpoint"], dir=os.path.join(work, "run-%d" % steps))
    path = os.path.join(work, "c%d.json" % steps)
    json.dump(cfg, open(path, "w"))
    before = child_cpu()
    subprocess.run([binary, "train", "--config", path], check=True, stderr=subprocess.DEVNULL)
    return child_cpu() - before


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else os.cpu_count()
    binary = os.path.join(ROOT, build, "melodist")
    print("threads: %d; CPU time per step (user + sys, all threads)" % threads)
    print("| model | params | batch | melodist tok/CPU-s | GFLOP/CPU-s | PyTorch tok/CPU-s | GFLOP/CPU-s | ratio |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for name, d, L, H, F, micro, batch, steps in SHAPES:
        with tempfile.TemporaryDirectory() as work:
            config = {
                "model": {"hidden_size": d, "num_hidden_layers": L, "num_attention_heads": H,
                          "num_key_value_heads": H, "intermediate_size": F, "max_position_embeddings": 256,
                          "vocab_size": 1024},
                "tokenizer": os.path.join(ROOT, "configs/tiny.tokenizer.model"),
                "data": {"sources": [os.path.join(ROOT, "tests/train/data/balkan-sample.abc")],
                         "valid_fraction": 0.05, "seq_len": 256},
                "train": {"batch_size": batch, "micro_batch": micro, "steps": steps, "lr": 1e-3},
                "eval": {"every": 0, "batches": 1},
                "checkpoint": {"dir": "run", "every": 1000000, "keep": 1},
                "threads": threads,
            }
            ours = (melodist_cpu(binary, config, work, steps + 1) - melodist_cpu(binary, config, work, 1)) / steps
            path = os.path.join(work, "torch.json")
            json.dump(config, open(path, "w"))
            out = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "bench/train/torch_train.py"), path,
                                  str(steps + 1)], check=True, capture_output=True, text=True).stdout.split()
            params, theirs = int(out[0]), float(out[1])
        tokens = batch * 256
        flops = 6 * params + 12 * L * 256 * d
        print("| %s (%d x %d, ffn %d) | %.1fM | %d x 256 (micro %d) | %.1f | %.1f | %.1f | %.1f | %.2fx |" % (
            name, L, d, F, params / 1e6, batch, micro, tokens / ours, tokens / ours * flops / 1e9,
            tokens / theirs, tokens / theirs * flops / 1e9, theirs / ours))
        sys.stdout.flush()


if __name__ == "__main__":
    main()

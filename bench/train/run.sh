#!/bin/sh
# Training throughput of melodist beside PyTorch 1.13 CPU, same model shape, batch, threads, in one run.
#   bench/train/run.sh [BUILD_DIR] [THREADS]      (from the repository root; results go to stdout)
# Shapes: ~10M and ~100M parameters (InternLM2, vocab 1024 of configs/tiny.tokenizer.model), seq_len 256.
# Achieved FLOP/s counts 6 x (parameters) x tokens for the matrices plus 12 x layers x seq_len x hidden per
# token for attention (the llm.c / PaLM convention).
set -eu
build=${1:-build}
threads=${2:-$(nproc)}
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

bench() { # NAME HIDDEN LAYERS HEADS FFN MICRO BATCH STEPS
    cat > "$work/$1.json" <<JSON
{
  "model": {"hidden_size": $2, "num_hidden_layers": $3, "num_attention_heads": $4, "num_key_value_heads": $4,
            "intermediate_size": $5, "max_position_embeddings": 256, "vocab_size": 1024},
  "tokenizer": "$root/configs/tiny.tokenizer.model",
  "data": {"sources": ["$root/tests/train/data/balkan-sample.abc"], "valid_fraction": 0.05, "seq_len": 256},
  "train": {"batch_size": $7, "micro_batch": $6, "steps": $8, "lr": 1e-3},
  "eval": {"every": 0, "batches": 1},
  "checkpoint": {"dir": "$work/run-$1", "every": 1000000, "keep": 1},
  "threads": $threads
}
JSON
    "$root/$build/melodist" train --config "$work/$1.json" 2> "$work/$1.err" || { cat "$work/$1.err"; exit 1; }
    ours=$(sed -n '2,$s/.*"tokens_per_s": \([0-9.]*\).*/\1/p' "$work/run-$1/train_log.jsonl" | sort -n |
           awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
    params=$(sed -n 's/.*model: \([0-9]*\) parameters.*/\1/p' "$work/$1.err")
    torch=$(/usr/bin/python3 "$root/bench/train/torch_train.py" "$work/$1.json" "$8" | sed 's/.*, \([0-9.]*\) tokens.*/\1/')
    awk -v n="$1" -v p="$params" -v o="$ours" -v t="$torch" -v L="$3" -v d="$2" 'BEGIN {
        flops = 6 * p + 12 * L * 256 * d
        printf "%-6s %11d params  melodist %9.1f tok/s (%6.1f GFLOP/s)  pytorch %9.1f tok/s (%6.1f GFLOP/s)  ratio %.2f\n",
               n, p, o, o * flops / 1e9, t, t * flops / 1e9, o / t }'
}

echo "threads: $threads; CPU: $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)"
bench 10M 384 6 6 1024 4 8 6
bench 100M 768 12 12 2048 1 2 3

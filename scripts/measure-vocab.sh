#!/usr/bin/env bash
# Choose the vocabulary size by measurement: for each size, a BPE tokenizer (scripts/train-tokenizer.sh) on the
# train split's pre-training text, the same small model trained on the same number of tokens, and its bits per
# character on the held-out valid split (melodist eval: summed negative log-likelihood of the tunes over their
# characters, so tokenizers of any size are compared on the same text).
# Usage: scripts/measure-vocab.sh [SIZE...]   (default 512 1024 2048 4096 8192; work files in out/measure-vocab/)
# MELODIST (./build/melodist), MELODIST_DATA (../shared/data), TOKENS (1048576 training tokens per size),
# SEED (1: initialisation and data order of the model).
set -euo pipefail
cd "$(dirname "$0")/.."
melodist=${MELODIST:-./build/melodist}
data_root=${MELODIST_DATA:-../shared/data}
tokens=${TOKENS:-1048576}
seed=${SEED:-1}
sizes=("$@")
(( ${#sizes[@]} )) || sizes=(512 1024 2048 4096 8192)
work=out/measure-vocab
seq=1024 batch=4 # a context that holds every held-out tune even at 512 pieces: all sizes see the same tunes
steps=$(( (tokens + seq * batch - 1) / (seq * batch) ))

[[ -x "$melodist" ]] || { echo "measure-vocab: $melodist not built (run: make build)" >&2; exit 1; }
mkdir -p "$work"
if [[ ! -f "$work/data/pretrain.txt" ]]; then
  [[ -d "$data_root" ]] || { echo "measure-vocab: no corpus at $data_root" >&2; exit 1; }
  "$melodist" data build --out "$work/data" "$data_root"/*/*.abc
fi

echo "| vocab | chars/token (valid) | valid bits/token | valid bits/char | valid tunes (skipped) | train tokens | params | seconds |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for v in "${sizes[@]}"; do
  dir="$work/v$v"
  rm -rf "$dir" && mkdir -p "$dir"
  start=$SECONDS
  scripts/train-tokenizer.sh -i "$work/data/pretrain.txt" -o "$dir/tokenizer" -v "$v" --threads 2 2> "$dir/tokenizer.log"
  cat > "$dir/config.json" <<JSON
{
  "model": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "intermediate_size": 176, "max_position_embeddings": $seq, "tie_word_embeddings": true},
  "tokenizer": "tokenizer/tokenizer.model",
  "data": {"sources": ["../data/pretrain.txt"], "valid_fraction": 0.01, "seq_len": $seq},
  "train": {"batch_size": $batch, "micro_batch": $batch, "steps": $steps, "lr": 3e-3, "min_lr": 3e-4,
            "warmup_steps": 20, "decay": "cosine", "seed": $seed},
  "eval": {"every": $steps, "batches": 4},
  "checkpoint": {"dir": "run", "every": $steps, "keep": 1},
  "threads": 2
}
JSON
  "$melodist" train --config "$dir/config.json" 2> "$dir/train.log"
  ck=$(ls -d "$dir"/run/checkpoint-* | tail -n 1)
  "$melodist" eval -m "$ck" --data "$work/data/valid/pretrain.txt" --n-gen 0 --n-analysis 0 --threads 2 --json 2> "$dir/eval.log" \
    > "$dir/eval.json"
  params=$(sed -n 's/.*model: \([0-9]*\) parameters.*/\1/p' "$dir/train.log")
  /usr/bin/python3 - "$dir/eval.json" "$v" "$((steps * seq * batch))" "$params" "$((SECONDS - start))" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))
bpc, bpt = e["bits_per_char"], e["bits_per_token"]
tunes = f'{e["tunes"]} ({e["skipped_too_long"]})'
print(f"| {sys.argv[2]} | {bpt / bpc:.3f} | {bpt:.3f} | {bpc:.3f} | {tunes} | {sys.argv[3]} | {sys.argv[4]} | {sys.argv[5]} |")
PY
done

# What the training and fine-tuning shell tests share (POSIX sh): . "$src/tests/lib/common.sh"

fail() { echo "FAIL: $*"; exit 1; }

# fresh_work NAME: an empty ./NAME becomes the working directory, $work.
fresh_work() {
    work=$(pwd)/$1
    rm -rf "$work" && mkdir -p "$work" && cd "$work"
}

# losses LOG: "step loss" for each step of a train_log.jsonl.
losses() { sed 's/.*"step": \([0-9]*\), "loss": \([^,]*\),.*/\1 \2/' "$1"; }

# valid_losses LOG: the validation losses of a train_log.jsonl, in order.
valid_losses() { sed -n 's/.*"valid_loss": \([0-9.]*\).*/\1/p' "$1"; }

# tiny_train_config FILE RUN_DIR MICRO_BATCH STEPS LR EVAL_EVERY SAVE_EVERY KEEP THREADS: pre-training of a
# 2-layer model of width 32 on tests/train/data/balkan-sample.abc, global batch 8, with the tiny tokenizer.
tiny_train_config() {
    cat > "$1" <<JSON
{
  "model": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "intermediate_size": 64, "max_position_embeddings": 64},
  "tokenizer": "$src/configs/tiny.tokenizer.model",
  "data": {"sources": ["$src/tests/train/data/balkan-sample.abc"], "valid_fraction": 0.1, "seq_len": 32},
  "train": {"batch_size": 8, "micro_batch": $3, "steps": $4, "lr": $5, "warmup_steps": 5, "seed": 7},
  "eval": {"every": $6, "batches": 2},
  "checkpoint": {"dir": "$2", "every": $7, "keep": $8},
  "threads": $9
}
JSON
}

#!/bin/sh
# melodist finetune end to end: a small base is pre-trained on ABC, then QLoRA SFT on the key_mode family lowers
# that family's validation loss; the adapter is in PEFT format; kill -9 or Ctrl-C + --resume repeat the
# uninterrupted losses step for step; merge and generate/chat --adapter give the same greedy answers; the
# same with the memory savers (NF4 head, bf16 adapters, AdamW8bit); mpirun -np 2 equals one process.
#   finetune_cli_test.sh MELODIST SOURCE_DIR        (exit 77 without ../shared/data)
set -eu
melodist=$1 src=$2 shared=$2/../shared
[ -d "$shared/data" ] || { echo "SKIP: $shared/data absent"; exit 77; }
. "$src/tests/lib/common.sh"
fresh_work finetune_cli

cat > base.json <<JSON
{
  "model": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "intermediate_size": 160, "max_position_embeddings": 512},
  "tokenizer": "$src/configs/tiny.tokenizer.model",
  "data": {"sources": ["$shared/data/nottingham"], "valid_fraction": 0.02, "seq_len": 128},
  "train": {"batch_size": 8, "micro_batch": 8, "steps": 60, "lr": 3e-3, "warmup_steps": 10, "seed": 3},
  "eval": {"every": 60, "batches": 1},
  "checkpoint": {"dir": "base", "every": 60, "keep": 1},
  "threads": 2
}
JSON
"$melodist" train --config base.json 2> base.err || { cat base.err; fail "pre-training the base"; }
"$melodist" data build --out sft "$shared"/data/*/*.abc > data.out 2>&1 || { cat data.out; fail "data build"; }

config() { # config NAME [SAVE_STEPS]
    cat > "$1.json" <<JSON
{
  "pretrained_model_name_or_path": "base/checkpoint-00000060",
  "tokenizer": "$src/configs/tiny.tokenizer.model",
  "data": {"train": "sft/sft.xtuner.jsonl", "valid": "sft/valid/sft.openai.jsonl", "task": "key_mode", "system": ""},
  "max_length": 512, "pack_to_max_length": true,
  "quantization": {"load_in_4bit": true, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": true},
  "lora": {"r": 8, "lora_alpha": 16, "lora_dropout": 0.1},
  "optim": {"lr": 3e-3, "max_norm": 1},
  "schedule": {"warmup_ratio": 0.03, "max_epochs": 1, "max_steps": 24},
  "batch_size": 1, "accumulative_counts": 2, "seed": 5,
  "evaluate_every": 8, "eval_batches": 4, "save_steps": ${2:-8}, "save_total_limit": 2,
  "work_dir": "run-$1", "threads": 2
}
JSON
}
config a
"$melodist" finetune --config a.json 2> a.err || { cat a.err; fail "fine-tuning"; }
before=$(sed -n 's/.*validation loss of the base model: \([0-9.]*\).*/\1/p' a.err)
after=$(valid_losses run-a/train_log.jsonl | tail -1)
echo "key_mode validation loss: base $before, after 24 QLoRA steps $after"
awk -v a="$before" -v b="$after" 'BEGIN { exit !(b < a - 0.5) }' || fail "validation loss did not go down by 0.5"
[ "$(wc -l < run-a/train_log.jsonl)" -eq 24 ] || fail "train_log.jsonl should have 24 lines"
/usr/bin/python3 - run-a/adapter <<'PY' || fail "adapter is not in PEFT format"
import json, struct, sys
d = sys.argv[1]
cfg = json.load(open(d + "/adapter_config.json"))
assert cfg["peft_type"] == "LORA" and cfg["r"] == 8 and cfg["lora_alpha"] == 16 and cfg["task_type"] == "CAUSAL_LM"
assert sorted(cfg["target_modules"]) == ["output", "w1", "w2", "w3", "wo", "wqkv"], cfg["target_modules"]
assert list(cfg) == sorted(cfg), "keys sorted as PEFT writes them"
with open(d + "/adapter_model.safetensors", "rb") as f:
    header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
names = [k for k in header if k != "__metadata__"]
assert len(names) == 2 * (2 * 5 + 1), len(names)
assert "base_model.model.model.layers.1.attention.wqkv.lora_A.weight" in names
assert header["base_model.model.output.lora_B.weight"]["shape"][1] == 8
assert header["base_model.model.model.layers.0.feed_forward.w2.lora_A.weight"]["shape"] == [8, 160]
print("PEFT adapter: %d tensors, config keys %s" % (len(names), ", ".join(cfg)))
PY

# kill -9 after the first checkpoint, then --resume: the same losses as the uninterrupted run
config k
"$melodist" finetune --config k.json 2> k.err & pid=$!
i=0; while [ ! -d run-k/checkpoint-00000008 ]; do i=$((i + 1)); [ $i -lt 1200 ] || fail "no checkpoint"; sleep 0.1; done
kill -9 $pid; wait $pid 2>/dev/null || true
"$melodist" finetune --config k.json --resume 2>> k.err || { cat k.err; fail "resume"; }
losses run-a/train_log.jsonl > a.loss
losses run-k/train_log.jsonl > k.loss
cmp a.loss k.loss || { diff a.loss k.loss | head; fail "resumed losses differ"; }
echo "kill -9 + --resume: 24 losses identical to the uninterrupted run"

# Ctrl-C saves a checkpoint where it stops (exit 130); --resume goes on exactly
config i 1000
"$melodist" finetune --config i.json 2> i.err & pid=$!
i=0; while [ "$(cat run-i/train_log.jsonl 2>/dev/null | wc -l)" -lt 3 ]; do
    i=$((i + 1)); [ $i -lt 1200 ] || fail "no progress"; sleep 0.1; done
kill -INT $pid
rc=0; wait $pid || rc=$?
[ $rc -eq 130 ] || { cat i.err; fail "Ctrl-C should exit with 130, got $rc"; }
stopped=$(ls -d run-i/checkpoint-* | sed 's/.*checkpoint-0*//')
"$melodist" finetune --config i.json --resume 2>> i.err || { cat i.err; fail "resume after Ctrl-C"; }
losses run-i/train_log.jsonl > i.loss
cmp a.loss i.loss || { diff a.loss i.loss | head; fail "losses after Ctrl-C + --resume differ"; }
echo "Ctrl-C at step $stopped (checkpoint saved, exit 130) + --resume: 24 losses identical"

# merged checkpoint and --adapter answer alike (greedy)
"$melodist" merge -m base/checkpoint-00000060 --adapter run-a/adapter --out merged 2> merge.err ||
    { cat merge.err; fail "merge"; }
prompt="$(printf '<|im_start|>user\n判断这首曲子的主音和调式：\nX:1\nM:4/4\nL:1/8\nK:G\nGABc dedB|<|im_end|>\n<|im_start|>assistant\n')"
"$melodist" generate -m merged -p "$prompt" --temperature 0 --max-tokens 24 > merged.out 2> gen.err || { cat gen.err; fail "generate merged"; }
"$melodist" generate -m base/checkpoint-00000060 --adapter run-a/adapter -p "$prompt" --temperature 0 --max-tokens 24 \
    > adapter.out 2>> gen.err || { cat gen.err; fail "generate --adapter"; }
cmp merged.out adapter.out || fail "merged model and --adapter answer differently"
echo "merged and --adapter greedy answers identical: $(head -c 80 merged.out | tr '\n' ' ')"
echo '判断这首曲子的主音和调式： X:1 M:4/4 L:1/8 K:G GABc dedB|' > question.txt
"$melodist" chat -m merged --system "" --temperature 0 --max-tokens 24 < question.txt > chat-merged.out 2>> gen.err ||
    { cat gen.err; fail "chat merged"; }
"$melodist" chat -m base/checkpoint-00000060 --adapter run-a/adapter --system "" --temperature 0 --max-tokens 24 \
    < question.txt > chat-adapter.out 2>> gen.err || { cat gen.err; fail "chat --adapter"; }
cmp chat-merged.out chat-adapter.out || fail "melodist chat: merged model and --adapter answer differently"
echo "melodist chat: merged and --adapter answers identical"

# the memory savers (NF4 head, bf16 adapters, 8-bit AdamW): the validation loss still falls, the adapter is
# stored as BF16, the 8-bit moments are checkpointed, and kill -9 + --resume repeats the losses
savers() { # savers NAME: a.json with every saver, 12 steps, a checkpoint every 4
    sed -e 's/"bnb_4bit_use_double_quant": true}/"bnb_4bit_use_double_quant": true, "llm_int8_skip_modules": []}/' \
        -e 's/"lora_dropout": 0.1}/"lora_dropout": 0.1, "adapter_dtype": "bfloat16"}/' \
        -e 's/"optim": {"lr"/"optim": {"type": "AdamW8bit", "lr"/' -e 's/"max_steps": 24/"max_steps": 12/' \
        -e 's/"save_steps": 8/"save_steps": 4/' -e "s/run-a/run-$1/" a.json > "$1.json"
}
savers s
"$melodist" finetune --config s.json 2> s.err || { cat s.err; fail "fine-tuning with the memory savers"; }
grep -q "decoder and head NF4.*bf16 adapter parameters.*AdamW8bit" s.err || { cat s.err; fail "savers not in use"; }
after=$(valid_losses run-s/train_log.jsonl | tail -1)
echo "with the memory savers: key_mode validation loss $before -> $after in 12 steps"
awk -v a="$before" -v b="$after" 'BEGIN { exit !(b < a - 0.5) }' || fail "validation loss did not go down by 0.5"
/usr/bin/python3 - run-s <<'PY' || fail "savers: adapter or optimizer state not as documented"
import json, os, struct, sys
def header(path):
    with open(path, "rb") as f:
        return json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
adapter = header(sys.argv[1] + "/adapter/adapter_model.safetensors")
assert {t["dtype"] for k, t in adapter.items() if k != "__metadata__"} == {"BF16"}, "adapter tensors not BF16"
ck = sorted(d for d in os.listdir(sys.argv[1]) if d.startswith("checkpoint-"))[-1]
state = header(sys.argv[1] + "/" + ck + "/training_state.safetensors")
n = sum(t["shape"][0] * t["shape"][1] for k, t in adapter.items() if k != "__metadata__")
assert state["adamw8bit.m"]["dtype"] == "U8" and state["adamw8bit.m"]["shape"] == [n], state["adamw8bit.m"]
assert state["adamw8bit.v_absmax"]["shape"] == [(n + 2047) // 2048], state["adamw8bit.v_absmax"]
print("savers: adapter BF16, %s holds 8-bit moments of %d parameters" % (ck, n))
PY
savers t
"$melodist" finetune --config t.json 2> t.err & pid=$!
i=0; while [ ! -d run-t/checkpoint-00000004 ]; do i=$((i + 1)); [ $i -lt 1200 ] || fail "no checkpoint"; sleep 0.1; done
kill -9 $pid; wait $pid 2>/dev/null || true
"$melodist" finetune --config t.json --resume 2>> t.err || { cat t.err; fail "resume with the savers"; }
losses run-s/train_log.jsonl > s.loss
losses run-t/train_log.jsonl > t.loss
cmp s.loss t.loss || { diff s.loss t.loss | head; fail "resumed losses differ with the savers"; }
echo "savers: kill -9 + --resume: 12 losses identical to the uninterrupted run"

# mpirun -np 2 (each process half of every step's micro-batches) equals one process
if command -v mpirun > /dev/null; then
    sed -e 's/"max_steps": 24/"max_steps": 6/; s/"threads": 2/"threads": 1/; s/run-a/run-one/' a.json > one.json
    sed -e 's/run-one/run-two/' one.json > two.json
    "$melodist" finetune --config one.json 2> one.err || { cat one.err; fail "one process"; }
    # OpenMPI's own allocations would show as leaks under ASan; the single-process runs above are leak-checked
    ASAN_OPTIONS=detect_leaks=0 mpirun --allow-run-as-root --oversubscribe -np 2 "$melodist" finetune \
        --config two.json 2> two.err ||
        { cat two.err; fail "mpirun -np 2"; }
    losses run-one/train_log.jsonl > one.loss
    losses run-two/train_log.jsonl > two.loss
    paste one.loss two.loss | awk '{ d = $2 - $4; if (d < 0) d = -d; if (d > 1e-4 * $2) bad = 1 } END { exit bad }' ||
        { paste one.loss two.loss; fail "mpirun -np 2 differs from one process"; }
    echo "mpirun -np 2: 6 losses equal one process's within 1e-4"
fi

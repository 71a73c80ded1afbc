#!/bin/sh
# melodist train end to end on a small model: loss goes down, kill -9 + --resume and Ctrl-C + --resume give
# the uninterrupted run's losses step for step, a NaN loss stops with the last good checkpoint intact, and
# the checkpoints load in the inference engine.
#   train_cli_test.sh MELODIST SOURCE_DIR
set -eu
melodist=$1 src=$2
. "$src/tests/lib/common.sh"
fresh_work train_cli

config() { tiny_train_config "$1.json" "run-$1" 4 "$3" "$2" 20 "$4" 2 2; } # config NAME LR STEPS SAVE_EVERY

config base 3e-3 80 10
"$melodist" train --config base.json 2> base.err || { cat base.err; fail "uninterrupted run"; }
[ "$(wc -l < run-base/train_log.jsonl)" -eq 80 ] || fail "train_log.jsonl should have 80 lines"
first=$(valid_losses run-base/train_log.jsonl | head -1)
last=$(valid_losses run-base/train_log.jsonl | tail -1)
echo "validation loss: step 20 $first, step 80 $last"
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.2) }' || fail "validation loss did not go down"
[ -f run-base/loss.svg ] || fail "no loss.svg"
ls -d run-base/checkpoint-* | tr '\n' ' '; echo
[ "$(ls -d run-base/checkpoint-* | wc -l)" -eq 2 ] || fail "keep: 2 should leave two checkpoints"
for f in config.json model.safetensors tokenizer.model generation_config.json training_state.safetensors; do
    [ -f run-base/checkpoint-00000080/$f ] || fail "checkpoint lacks $f"
done
"$melodist" generate -m run-base/checkpoint-00000080 -p "X:1" --temperature 0 --max-tokens 16 > gen.out 2> gen.err ||
    { cat gen.err; fail "the inference engine does not load the checkpoint"; }

# kill -9 after the first checkpoint, then --resume
wait_for() { i=0; while [ ! -d "$1" ]; do i=$((i + 1)); [ $i -lt 600 ] || fail "timeout waiting for $1"; sleep 0.1; done; }
config kill 3e-3 80 10
"$melodist" train --config kill.json 2> kill.err & pid=$!
wait_for run-kill/checkpoint-00000010
kill -9 $pid; wait $pid 2>/dev/null || true
killed_at=$(wc -l < run-kill/train_log.jsonl)
[ "$killed_at" -lt 80 ] || fail "the run finished before kill -9 could stop it"
"$melodist" train --config kill.json --resume 2>> kill.err || { cat kill.err; fail "resume after kill -9"; }
losses run-base/train_log.jsonl > base.loss
losses run-kill/train_log.jsonl > kill.loss
cmp base.loss kill.loss || { diff base.loss kill.loss | head; fail "resumed losses differ from the uninterrupted run"; }
echo "kill -9 after step $killed_at + --resume from step 10: 80 losses identical to the uninterrupted run"

# Ctrl-C saves a checkpoint and exits; --resume continues exactly
config int 3e-3 80 100
"$melodist" train --config int.json 2> int.err & pid=$!
i=0; while [ "$(cat run-int/train_log.jsonl 2>/dev/null | wc -l)" -lt 3 ]; do i=$((i + 1)); [ $i -lt 600 ] || fail "no progress"; sleep 0.1; done
kill -INT $pid
status=0; wait $pid || status=$?
[ $status -eq 130 ] || { cat int.err; fail "Ctrl-C should exit with 130, got $status"; }
ls -d run-int/checkpoint-* > /dev/null || fail "Ctrl-C left no checkpoint"
"$melodist" train --config int.json --resume 2>> int.err || { cat int.err; fail "resume after Ctrl-C"; }
losses run-int/train_log.jsonl > int.loss
cmp base.loss int.loss || { diff base.loss int.loss | head; fail "losses after Ctrl-C + resume differ"; }
echo "Ctrl-C at step $(sed -n 's/.*saved .*checkpoint-0*\([0-9]*\).*/\1/p' int.err | head -1) + --resume: identical losses"

# a diverging run stops at the first non-finite loss and keeps the last good checkpoint
config nan 1e25 30 1
status=0; "$melodist" train --config nan.json 2> nan.err || status=$?
[ $status -eq 1 ] || { cat nan.err; fail "a NaN loss should exit with 1"; }
grep -q "the loss became" nan.err || { cat nan.err; fail "no clear NaN message"; }
good=$(ls -d run-nan/checkpoint-* | tail -1)
"$melodist" info -m "$good" > /dev/null 2>&1 || fail "the last good checkpoint $good does not load"
grep "the loss became" nan.err | sed 's/^melodist train: //'

# continued training from a checkpoint: the model comes from init_from, its loss starts where base ended
cat > cont.json <<JSON
{
  "init_from": "run-base/checkpoint-00000080",
  "tokenizer": "$src/configs/tiny.tokenizer.model",
  "data": {"sources": ["$src/tests/train/data/balkan-sample.abc"], "valid_fraction": 0.1, "seq_len": 32},
  "train": {"batch_size": 8, "micro_batch": 4, "steps": 3, "lr": 1e-4, "seed": 7},
  "checkpoint": {"dir": "run-cont", "every": 3, "keep": 1},
  "threads": 2
}
JSON
"$melodist" train --config cont.json 2> cont.err || { cat cont.err; fail "continued training"; }
start=$(sed -n '1s/.*"loss": \([0-9.]*\).*/\1/p' run-cont/train_log.jsonl)
base_end=$(sed -n '80s/.*"loss": \([0-9.]*\).*/\1/p' run-base/train_log.jsonl)
echo "continued from step 80 (loss $base_end): first loss $start (a fresh model starts near ln 1024 = 6.93)"
awk -v a="$start" 'BEGIN { exit !(a < 6.0) }' || fail "init_from did not load the trained weights"

# resume with a changed shape is refused clearly
sed 's/"seq_len": 32/"seq_len": 16/' base.json > shape.json
status=0; "$melodist" train --config shape.json --out run-base --resume 2> shape.err || status=$?
[ $status -eq 1 ] && grep -q "seq_len" shape.err || { cat shape.err; fail "a changed seq_len on resume should be refused"; }

# a fresh run into a directory that holds an earlier run is refused before it trains (its saves would collide)
before=$(ls run-base | sort)
status=0; "$melodist" train --config base.json --out run-base 2> again.err || status=$?
[ $status -eq 1 ] && grep -q "already holds a run" again.err || { cat again.err; fail "a fresh run over an earlier one should be refused"; }
[ "$(ls run-base | sort)" = "$before" ] || fail "the refused run changed the earlier run's directory"
echo ok

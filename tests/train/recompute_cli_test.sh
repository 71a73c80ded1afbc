#!/bin/sh
# "train": {"recompute": true} end to end: the same losses and the same final weights, bit for bit, as the run
# that keeps every activation; a non-boolean value is refused with the key named.
#   recompute_cli_test.sh MELODIST SOURCE_DIR
set -eu
melodist=$1 src=$2
. "$src/tests/lib/common.sh"
fresh_work train_recompute_cli

tiny_train_config keep.json run-keep 4 20 3e-3 10 20 1 2
tiny_train_config re.json run-re 4 20 3e-3 10 20 1 2
sed -i 's/"seed": 7}/"seed": 7, "recompute": true}/' re.json
grep -q '"recompute": true' re.json || fail "could not switch recompute on in the config"
for run in keep re; do
    "$melodist" train --config $run.json 2> $run.err || { cat $run.err; fail "run with $run.json"; }
    losses run-$run/train_log.jsonl > $run.loss
done
cmp keep.loss re.loss || { diff keep.loss re.loss | head; fail "recompute changed the losses"; }
cmp run-keep/checkpoint-00000020/model.safetensors run-re/checkpoint-00000020/model.safetensors ||
    fail "recompute changed the trained weights"
echo "recompute: 20 steps, identical losses and weights"

sed 's/"recompute": true/"recompute": 1/' re.json > bad.json
status=0; "$melodist" train --config bad.json 2> bad.err || status=$?
[ $status -ne 0 ] || fail "a numeric recompute was accepted"
grep -q '"train"."recompute" must be true or false' bad.err || { cat bad.err; fail "no clear message"; }
echo "ok"

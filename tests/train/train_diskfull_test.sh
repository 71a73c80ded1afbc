#!/bin/sh
# A checkpoint save that hits a full disk (ENOSPC, simulated by the enospc_shim LD_PRELOAD library) stops the
# run with a clear message and exit status 1, leaves no .tmp directory, keeps the earlier checkpoint complete
# and loadable, and a later --resume continues from it.
#   train_diskfull_test.sh MELODIST SOURCE_DIR ENOSPC_SHIM
set -eu
melodist=$1 src=$2 shim=$3
[ -z "${MELODIST_SANITIZED:-}" ] || { echo "SKIP: AddressSanitizer refuses a preloaded library ahead of it"; exit 77; }
. "$src/tests/lib/common.sh"
fresh_work train_diskfull

# config NAME STEPS: 2-layer tiny model, a checkpoint every 5 steps, keep 2
config() { tiny_train_config "$1.json" run 4 "$2" 3e-3 5 5 2 2; }
config first 5
config more 15
"$melodist" train --config first.json 2> first.err || { cat first.err; fail "first run"; }
good=run/checkpoint-00000005
[ -d $good ] || fail "no checkpoint after the first run"
sum_before=$(cat $good/* | cksum)

# Resume with room left for config.json and generation_config.json only: model.safetensors fails.
status=0
ENOSPC_DIR=run ENOSPC_AFTER_BYTES=2000 LD_PRELOAD=$shim \
    "$melodist" train --config more.json --resume 2> full.err || status=$?
cat full.err
[ $status -eq 1 ] || fail "a full disk should exit with 1, got $status"
grep "checkpoint-00000010" full.err | grep -q "No space left on device" ||
    fail "the message should name the checkpoint file and say 'No space left on device'"
[ -z "$(ls -d run/*.tmp* 2>/dev/null)" ] || { ls -la run; fail "a .tmp directory was left behind"; }
[ ! -e run/checkpoint-00000010 ] || fail "a partial checkpoint-00000010 exists"
[ "$(cat $good/* | cksum)" = "$sum_before" ] || fail "the earlier checkpoint changed"
"$melodist" info -m $good > info.out 2> info.err || { cat info.err; fail "the earlier checkpoint does not load"; }
"$melodist" generate -m $good -p "X:1" --temperature 0 --max-tokens 8 > gen.out 2> gen.err ||
    { cat gen.err; fail "the earlier checkpoint does not generate"; }

# With room again, --resume continues from the kept checkpoint to the end.
"$melodist" train --config more.json --resume 2> resume.err || { cat resume.err; fail "resume after the full disk"; }
[ -d run/checkpoint-00000015 ] || fail "the resumed run did not reach step 15"
"$melodist" info -m run/checkpoint-00000015 > /dev/null || fail "the final checkpoint does not load"
echo ok

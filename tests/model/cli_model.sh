#!/usr/bin/env bash
# melodist quantize / info on a reference fixture: q8 and q4 copies load, report their format and size,
# and bad inputs fail with a message and a non-zero status.
#   cli_model.sh MELODIST FIXTURE_MODEL_DIR WORK_DIR
set -uo pipefail
melodist=$1 model=$2 work=$3
[[ -d $model ]] || { echo "SKIP: $model missing (PyTorch reference not run)"; exit 77; }
rm -rf "$work" && mkdir -p "$work"
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }

for type in q8 q4 bf16; do
  "$melodist" quantize -m "$model" -o "$work/$type" --type "$type" 2>"$work/err"
  check "quantize --type $type exits 0" "[[ $? -eq 0 ]]"
  "$melodist" info -m "$work/$type" >"$work/info.$type"
  check "info reports $type" "grep -q '^weight format  *$type\$' '$work/info.$type'"
done
params_f32=$("$melodist" info -m "$model" | awk '/^parameters/ {print $2}')
params_q4=$(awk '/^parameters/ {print $2}' "$work/info.q4")
check "same parameter count after quantisation ($params_f32)" "[[ '$params_f32' == '$params_q4' && -n '$params_f32' ]]"
size() { stat -c %s "$1/model.safetensors"; }
check "q4 file < q8 file < bf16 file" "[[ $(size "$work/q4") -lt $(size "$work/q8") && $(size "$work/q8") -lt $(size "$work/bf16") ]]"

"$melodist" info -m "$work/nowhere" 2>"$work/err"
check "info on a missing directory exits 1" "[[ $? -eq 1 ]] && grep -q 'not a model directory' '$work/err'"
"$melodist" quantize -m "$model" -o "$work/x" --type q5 2>"$work/err"
check "unknown --type exits 2" "[[ $? -eq 2 ]]"
mkdir -p "$work/bad" && cp "$model/config.json" "$work/bad/" && head -c 1000 "$model/model.safetensors" >"$work/bad/model.safetensors"
"$melodist" info -m "$work/bad" 2>"$work/err"
check "truncated weights exit 1 with a message" "[[ $? -eq 1 ]] && grep -q 'truncated' '$work/err'"
exit $fail

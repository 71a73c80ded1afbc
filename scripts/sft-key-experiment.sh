#!/usr/bin/env bash
# Does SFT teach the model to read the key of a tune? QLoRA on the key_mode family over models/melodist-mini,
# with the key-analysis answers measured before and after on held-out questions:
#   1. melodist data build          (train split for training, valid split for evaluation; the test split unused)
#   2. key_eval on the base          (greedy answers to the valid key_mode questions, no system prompt)
#   3. melodist finetune             (configs/melodist-mini-key-qlora.json)
#   4. key_eval with the adapter     (the same questions)
#   5. key_eval on the same questions with the K: line rewritten (G->D->A->C->F->Bb->G, the notes unchanged):
#      a model that reads the key signature names the new key; one that guesses from the notes or the prior
#      names the old one
# and prints the table: validation loss, answers naming the declared key, the majority-class rate (the score of
# a model that always names the most frequent key), CPU time; then the per-key breakdown of both evaluations.
# Usage: scripts/sft-key-experiment.sh [CONFIG]  (default configs/melodist-mini-key-qlora.json)
# BUILD (./build: melodist and tests/finetune/finetune_key_eval), MELODIST_DATA (../shared/data),
# QUESTIONS (200: every valid key_mode question). Work files in out/sft-key/ (the run directory is replaced).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-./build}
data_root=${MELODIST_DATA:-../shared/data}
questions=${QUESTIONS:-200}
config=${1:-configs/melodist-mini-key-qlora.json}
work=out/sft-key
melodist=$build/melodist key_eval=$build/tests/finetune/finetune_key_eval
base=models/melodist-mini

for exe in "$melodist" "$key_eval"; do
  [[ -x "$exe" ]] || { echo "sft-key-experiment: $exe not built (run: cmake --build $build)" >&2; exit 1; }
done
[[ -d "$data_root" ]] || { echo "sft-key-experiment: no corpus at $data_root" >&2; exit 1; }
mkdir -p "$work"

"$melodist" data build --out "$work/data" "$data_root"/*/*.abc >"$work/data-build.log" 2>&1
valid=$work/data/valid/sft.xtuner.jsonl

# CPU seconds (user + system) of one command, written to $work/NAME.cpu; its output goes to $work/NAME.log.
timed() {
  local name=$1
  shift
  /usr/bin/time -f %U+%S -o "$work/$name.time" "$@" >"$work/$name.log" 2>&1 || { cat "$work/$name.log" >&2; exit 1; }
  awk -F+ '{ printf "%.0f\n", $1 + $2 }' "$work/$name.time" >"$work/$name.cpu"
}

timed before "$key_eval" "$base" "$base/tokenizer.model" "$valid" "$questions"
rm -rf "$work/run"
timed finetune "$melodist" finetune --config "$config" --out "$work/run"
timed after "$key_eval" "$base" "$base/tokenizer.model" "$valid" "$questions" "$work/run/adapter"

# The K: line rewritten where it is one of the rotated keys as written; the reference answer names the new key.
/usr/bin/python3 - "$valid" "$work/rewritten.jsonl" <<'PY'
import json, re, sys
rotate = {"G": "D", "D": "A", "A": "C", "C": "F", "F": "Bb", "Bb": "G"}
with open(sys.argv[1], encoding="utf-8") as src, open(sys.argv[2], "w", encoding="utf-8") as out:
    for line in src:
        record = json.loads(line)
        turn = record["conversation"][0]
        field = re.search(r"^K:(.*)$", turn["input"], re.M)
        if record["task"] != "key_mode" or not field or field.group(1).strip() not in rotate:
            continue
        new = rotate[field.group(1).strip()]
        turn["input"] = turn["input"][:field.start()] + "K:" + new + turn["input"][field.end():]
        turn["output"] = f"K:{new}"
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
PY
timed rewritten-before "$key_eval" "$base" "$base/tokenizer.model" "$work/rewritten.jsonl" "$questions"
timed rewritten-after "$key_eval" "$base" "$base/tokenizer.model" "$work/rewritten.jsonl" "$questions" "$work/run/adapter"

# The last line of key_eval is "right/asked majority/asked"; the validation losses are in the finetune log.
score() { tail -n 1 "$work/$1.log" | awk '{ split($1, r, "/"); split($2, m, "/");
  printf "%d / %d (%.1f%%) | %d / %d (%.1f%%)", r[1], r[2], 100 * r[1] / r[2], m[1], m[2], 100 * m[1] / m[2] }'; }
base_loss=$(sed -n 's/.*validation loss of the base model: //p' "$work/finetune.log")
final_loss=$(grep -o '"valid_loss": [0-9.]*' "$work/run/train_log.jsonl" | tail -n 1 | awk '{ print $2 }')
steps=$(grep -c '"step"' "$work/run/train_log.jsonl")

echo "| model | validation loss (key_mode) | answers naming the declared key | majority class | CPU seconds |"
echo "| --- | ---: | ---: | ---: | ---: |"
echo "| $base | $base_loss | $(score before) | $(cat "$work/before.cpu") (evaluation) |"
echo "| + QLoRA adapter, $steps steps | $final_loss | $(score after) | $(cat "$work/finetune.cpu") (fine-tuning) + $(cat "$work/after.cpu") |"
echo
echo "| K: line rewritten | answers naming the new key | most frequent new key |"
echo "| --- | ---: | ---: |"
echo "| $base | $(score rewritten-before) |"
echo "| + QLoRA adapter | $(score rewritten-after) |"
echo
# Per declared key (rows of the after table, then keys only the base named): questions, right and named.
awk -F'\t' 'FNR == 1 { file++; table = 0 }
            /^key\tquestions\t/ { table = 1; next }
            table && NF == 4 { if (!($1 in q)) order[n++] = $1; q[$1] = $2; right[file, $1] = $3; named[file, $1] = $4 }
            END { print "| key | questions | right before | named before | right after | named after |"
                  print "| --- | ---: | ---: | ---: | ---: | ---: |"
                  for (i = 0; i < n; i++) { k = order[i]
                    printf "| %s | %d | %d | %d | %d | %d |\n", k, q[k], right[2, k], named[2, k], right[1, k], named[1, k] } }' \
  "$work/after.log" "$work/before.log"

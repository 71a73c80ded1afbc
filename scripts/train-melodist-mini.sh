#!/usr/bin/env bash
# Reproduce the shipped model models/melodist-mini from ../shared/data with the project's own tools:
#   1. melodist data build        (train split only; valid/test stay out)
#   2. the SFT mix                (composition families in full or halves, analysis families 1 in 8: see MODEL_CARD.md)
#   3. scripts/train-tokenizer.sh (BPE, 2048 pieces, on the pre-training text and the SFT texts)
#   4. melodist train             (configs/melodist-mini.json: pre-training text and SFT chats mixed, one run)
#   5. melodist quantize --type bf16 into models/melodist-mini (+ generation_config.json)
# Stage 2 also trains on the tool-use conversations of the data build (sft.tools.jsonl: the analysis questions
# answered through an ABC-engine plugin call, docs/data.md "Tool use"), stage 3 on them (balanced by family) and the
# pre-training text, stage 4 on everything; they are not in the tokenizer's text, so the tokenizer and stage 1 do
# not depend on them. Stage 5 trains on the balanced tool-use mix, the pre-training text and every 3rd record of the
# SFT mix for 10,000 steps: the model learns to copy the plugin's result into its answer (MODEL_CARD.md); stage 6
# goes on with the same mix for 2,500 steps at a lower learning rate (3e-4 to 1e-4); stage 7 goes on with it for
# 1,500 steps more (2e-4 to 5e-5), after the genre questions became questions of the dance rhythm (abc_rhythm);
# stage 8 for 1,500 steps more (1.5e-4 to 3e-5) once the key and genre records were drawn by kind of result;
# stage 9 for 1,500 steps more (same schedule) after the analysis questions were worded 7-9 ways instead of 2-3.
# Work files go to out/melodist-mini/: data/ is the data build's (it keeps nothing it did not write), mix/ holds
# this script's mixes. Usage: scripts/train-melodist-mini.sh [--skip-train | --from-stage N]
#   --skip-train    everything but the training runs (quantizes the last stage-9 checkpoint)
#   --from-stage N  rebuild the data and the mixes, keep the tokenizer and the checkpoints of the stages before N
#                   (2-9), train stages N-9
set -euo pipefail
cd "$(dirname "$0")/.."
melodist=${MELODIST:-./build/melodist}
data_root=${MELODIST_DATA:-../shared/data}
work=out/melodist-mini
usage="usage: scripts/train-melodist-mini.sh [--skip-train | --from-stage N]"
skip_train=0 from_stage=1
case "${1:-}" in
  --skip-train) skip_train=1 ;;
  --from-stage)
    [[ "${2:-}" =~ ^[2-9]$ ]] || { echo "train-melodist-mini: --from-stage takes a stage from 2 to 9; $usage" >&2; exit 2; }
    from_stage=$2 ;;
  "") ;;
  *) echo "$usage" >&2; exit 2 ;;
esac

[[ -x "$melodist" ]] || { echo "train-melodist-mini: $melodist not built (run: make build)" >&2; exit 1; }
[[ -d "$data_root" ]] || { echo "train-melodist-mini: no corpus at $data_root" >&2; exit 1; }
mkdir -p "$work/mix"

"$melodist" data build --out "$work/data" "$data_root"/*/*.abc

# The SFT mix: every k-th record of each task family (k = 1 for the small families, 2-3 for the large
# composition families, 8 for the analysis families, whose answers the composer CLI computes with the engine).
# Plain text of the same records for the tokenizer (the system prompt once).
/usr/bin/python3 - "$work" <<'PY'
import json, sys, collections
work = sys.argv[1]
every = {"self_cognition": 1, "lyrics": 1, "compose_form": 1, "compose_chords": 1,
         "compose_mood": 2, "compose_motif": 2, "compose_style": 2, "continuation": 2,
         "harmonise": 2, "melodise": 2, "compose_reference": 3}
seen, systems = collections.Counter(), set()
with open(f"{work}/data/sft.xtuner.jsonl", encoding="utf-8") as src, \
     open(f"{work}/mix/sft.mini.jsonl", "w", encoding="utf-8") as mix, \
     open(f"{work}/mix/sft.txt", "w", encoding="utf-8") as text:
    for line in src:
        record = json.loads(line)
        seen[record["task"]] += 1
        if seen[record["task"]] % every.get(record["task"], 8) == 0:
            mix.write(line)
        for turn in record["conversation"]:
            if turn.get("system") and turn["system"] not in systems:
                systems.add(turn["system"])
                text.write(turn["system"].rstrip("\n") + "\n")
            text.write(turn["input"].rstrip("\n") + "\n" + turn["output"].rstrip("\n") + "\n")
# Stage 3's tool-use mix: every family's tool-use records repeated up to the count of the largest family, so that
# which plugin a question needs is not learnt as "the commonest one" (docs/data.md "Tool use"). Within the key
# family the four kinds of result (a pentatonic scale named or not, answered in Chinese or in English), within the
# genre family the rhythm types, are drawn in turn, a record at most 20 times: an answer the model seldom sees it
# learns to write or leave out by habit, whatever the result says (one key answer in eight names a pentatonic
# scale; one genre answer in eighty is a slip jig).
MAX_REPEAT = 20
kinds = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(f"{work}/data/sft.tools.jsonl", encoding="utf-8"):
    record = json.loads(line)
    task, result, answer = record["task"], record["messages"][4]["content"], record["messages"][5]["content"]
    kind = ""
    if task == "key_mode":
        kind = ("pentatonic" if '"pentatonic"' in result else "diatonic") + \
            (" zh" if any("\u4e00" <= ch <= "\u9fff" for ch in answer) else " en")
    elif task == "genre":
        kind = json.loads(result)["rhythm"]
    kinds[task][kind].append(line)
most = max(sum(len(v) for v in family.values()) for family in kinds.values())
with open(f"{work}/mix/sft.tools.balanced.jsonl", "w", encoding="utf-8") as out:
    for task in sorted(kinds):
        groups = [kinds[task][k] for k in sorted(kinds[task])]
        taken = [0] * len(groups)
        while sum(taken) < most and any(t < MAX_REPEAT * len(g) for t, g in zip(taken, groups)):
            for k, group in enumerate(groups):
                if taken[k] < MAX_REPEAT * len(group) and sum(taken) < most:
                    out.write(group[taken[k] % len(group)])
                    taken[k] += 1
# Stage 5's share of the SFT mix: every 3rd record, so that tool use keeps two thirds of the tokens.
with open(f"{work}/mix/sft.mini.jsonl", encoding="utf-8") as mix, \
     open(f"{work}/mix/sft.mini.third.jsonl", "w", encoding="utf-8") as third:
    for i, line in enumerate(mix):
        if i % 3 == 0:
            third.write(line)
PY

# Stage 1 from random weights, stage 2 continues from stage 1's last checkpoint with a fresh cosine schedule and
# another data order (MODEL_CARD.md, "Recipe").
if (( from_stage == 1 )); then
  scripts/train-tokenizer.sh -i "$work/data/pretrain.txt" -i "$work/mix/sft.txt" -o "$work/tokenizer" -v 2048
  (( skip_train )) || "$melodist" train --config configs/melodist-mini.json
fi
# Stage 3 continues from stage 2's last checkpoint on the balanced tool-use mix and the pre-training text; stage 4
# adds the SFT mix back for a short run (stage 3 alone made the model forget how to answer a composition request).
# (Editing this script while it runs breaks the run: bash reads it as it goes.)
if (( !skip_train )); then
  # stage N writes run N+1 (stage 5 wrote run6 at first and the name stayed: stage 4 had run4, stage 5's first
  # try run5)
  runs=([2]=run2 [3]=run3 [4]=run4 [5]=run6 [6]=run7 [7]=run8 [8]=run9 [9]=run10)
  for stage in $(seq $(( from_stage > 2 ? from_stage : 2 )) 9); do
    run=$work/${runs[$stage]}
    if [[ -d "$run" ]]; then mv "$run" "$run.previous.$(date +%s)"; fi
    "$melodist" train --config configs/melodist-mini-stage$stage.json
  done
fi

last=$(ls -d "$work"/run10/checkpoint-* | sort | tail -n 1)
"$melodist" quantize -m "$last" -o models/melodist-mini --type bf16
cat > models/melodist-mini/generation_config.json <<'JSON'
{
  "bos_token_id": 1,
  "eos_token_id": [2, 4],
  "pad_token_id": 2,
  "do_sample": true,
  "temperature": 0.8,
  "top_p": 0.95
}
JSON
echo "train-melodist-mini: models/melodist-mini from $last" >&2

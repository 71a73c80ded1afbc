#!/usr/bin/env bash
# Train a SentencePiece BPE tokenizer in InternLM2's style with spm_train (Debian package `sentencepiece`):
# BPE, byte fallback (no <unk> in practice), identity normaliser, no dummy prefix, whitespace kept as is,
# digits split, <unk>/<s>/</s> at ids 0/1/2, the chat special tokens as user-defined pieces at ids 3..8 and
# "\n" as a piece of its own (spm_train reads its input line by line, so it never sees a newline to learn).
# Writes OUT_DIR/tokenizer.model and OUT_DIR/tokenizer.vocab, which `melodist tokenize -m OUT_DIR` loads.
set -euo pipefail

usage() {
  cat <<EOF
usage: scripts/train-tokenizer.sh -i CORPUS [-i CORPUS...] -o OUT_DIR [options]
  -i, --input FILE           training text, one sentence (or line of a tune) per line; repeatable
  -o, --out DIR              output directory (created); receives tokenizer.model and tokenizer.vocab
  -v, --vocab-size N         vocabulary size, pieces of every kind included (default 8000)
  --character-coverage X     share of characters kept as pieces; the rest use byte fallback (default 0.9999)
  --control-specials         make the chat tokens control pieces: never matched in plain text, only by
                             'melodist tokenize --special' (default: user-defined, matched everywhere, as
                             spm_encode and InternLM2's HF tokenizer do)
  --max-sentences N          sample at most N input lines (default 0: all)
  --threads N                spm_train threads (default: number of CPUs)
EOF
}

inputs=()
out=""
vocab=8000
coverage=0.9999
control_specials=0
max_sentences=0
threads=$(nproc 2>/dev/null || echo 1)

while [[ $# -gt 0 ]]; do
  case "$1" in
    -i|--input) inputs+=("${2:?missing value for $1}"); shift 2 ;;
    -o|--out) out="${2:?missing value for $1}"; shift 2 ;;
    -v|--vocab-size) vocab="${2:?missing value for $1}"; shift 2 ;;
    --character-coverage) coverage="${2:?missing value for $1}"; shift 2 ;;
    --control-specials) control_specials=1; shift ;;
    --max-sentences) max_sentences="${2:?missing value for $1}"; shift 2 ;;
    --threads) threads="${2:?missing value for $1}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "train-tokenizer: unexpected argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

if [[ ${#inputs[@]} -eq 0 || -z "$out" ]]; then
  usage >&2
  exit 2
fi
command -v spm_train >/dev/null || { echo "train-tokenizer: spm_train not found (apt-get install sentencepiece)" >&2; exit 1; }
for f in "${inputs[@]}"; do
  [[ -r "$f" && -f "$f" ]] || { echo "train-tokenizer: cannot read input '$f'" >&2; exit 1; }
  [[ "$f" != *,* ]] || { echo "train-tokenizer: input '$f': spm_train cannot take file names with commas" >&2; exit 1; }
done
[[ "$vocab" =~ ^[0-9]+$ ]] || { echo "train-tokenizer: --vocab-size must be a number, got '$vocab'" >&2; exit 2; }
# 3 special + 256 byte + 7 user-defined pieces come first; BPE needs room for the characters and merges.
if (( vocab < 300 )); then
  echo "train-tokenizer: --vocab-size $vocab is too small (at least 300: 266 pieces are fixed)" >&2
  exit 2
fi

mkdir -p "$out"
# Train into a temporary directory beside the output, then rename: the model appears whole or not at all.
tmp=$(mktemp -d "$out/.train-tokenizer.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

specials="<|im_start|>,<|im_end|>,<|action_start|>,<|action_end|>,<|interpreter|>,<|plugin|>"
newline=$'\n'
if (( control_specials )); then
  symbols=("--control_symbols=$specials" "--user_defined_symbols=$newline")
else
  symbols=("--user_defined_symbols=$specials,$newline")
fi
corpus=$(IFS=,; echo "${inputs[*]}")

if ! spm_train \
    --input="$corpus" \
    --model_prefix="$tmp/tokenizer" \
    --model_type=bpe \
    --vocab_size="$vocab" \
    --byte_fallback=true \
    --normalization_rule_name=identity \
    --add_dummy_prefix=false \
    --remove_extra_whitespaces=false \
    --allow_whitespace_only_pieces=true \
    --split_digits=true \
    --character_coverage="$coverage" \
    --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 \
    "${symbols[@]}" \
    --max_sentence_length=16384 \
    --input_sentence_size="$max_sentences" \
    --shuffle_input_sentence=true \
    --num_threads="$threads" \
    --minloglevel=1 2>"$tmp/log"; then
  echo "train-tokenizer: spm_train failed:" >&2
  tail -n 20 "$tmp/log" >&2
  exit 1
fi

mv -f "$tmp/tokenizer.vocab" "$out/tokenizer.vocab"
mv -f "$tmp/tokenizer.model" "$out/tokenizer.model"
echo "train-tokenizer: wrote $out/tokenizer.model ($vocab pieces)" >&2

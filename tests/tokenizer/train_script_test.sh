#!/usr/bin/env bash
# scripts/train-tokenizer.sh trains a model that melodist and spm_encode read alike, with the chat tokens
# and "\n" as single pieces and byte fallback for unseen characters.
#   train_script_test.sh MELODIST SOURCE_DIR SHARED_DIR WORK_DIR
set -euo pipefail
melodist=$1 src=$2 shared=$3 work=$4
corpus=$shared/data/nottingham/nottingham.abc
[[ -r $corpus ]] || { echo "SKIP: $corpus absent"; exit 77; }
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$src/scripts/train-tokenizer.sh" -i "$corpus" -i "$src/tests/tokenizer/data/mixed.txt" -o "$work/user" -v 1200 --threads 2
"$src/scripts/train-tokenizer.sh" -i "$corpus" -o "$work/control" -v 1200 --threads 2 --control-specials

# Ids of pieces as SentencePiece itself (python3-sentencepiece) reads the trained model.
vocab_id() {
  /usr/bin/python3 -c 'import sys, sentencepiece as s; print(s.SentencePieceProcessor(model_file=sys.argv[1]).piece_to_id(sys.argv[2]))' \
    "$1/tokenizer.model" "$2"
}
im_start=$(vocab_id "$work/user" "<|im_start|>")
im_end=$(vocab_id "$work/user" "<|im_end|>")
[[ $im_start == 3 && $im_end == 4 ]] || fail "chat tokens at ids $im_start, $im_end (expected 3, 4)"

text=$'<|im_start|>user\nCompose a reel \xF0\x9F\x8E\xB5<|im_end|>'
ids=$("$melodist" tokenize -m "$work/user" --special --bos "$text")
read -ra arr <<<"$ids"
[[ ${arr[0]} == 1 && ${arr[1]} == "$im_start" && ${arr[-1]} == "$im_end" ]] || fail "chat prompt ids: $ids"
nl=$(vocab_id "$work/user" $'\n')
[[ $("$melodist" tokenize -m "$work/user" $'\n') == "$nl" ]] || fail "newline is not the single piece $nl"
# The emoji is not in the training text: four byte pieces <0xF0> <0x9F> <0x8E> <0xB5>.
bytes="$(vocab_id "$work/user" "<0xF0>") $(vocab_id "$work/user" "<0x9F>") $(vocab_id "$work/user" "<0x8E>") $(vocab_id "$work/user" "<0xB5>")"
[[ " $ids " == *" $bytes "* ]] || fail "emoji did not fall back to bytes ($bytes): $ids"
back=$("$melodist" detokenize -m "$work/user" --special-names $ids)
[[ $back == "<s>$text" ]] || fail "round trip gave '$back'"

# The same model through SentencePiece itself.
"$melodist" tokenize -m "$work/user" --ids - <"$src/tests/tokenizer/data/mixed.txt" >"$work/ours.ids"
spm_encode --model="$work/user/tokenizer.model" --output_format=id <"$src/tests/tokenizer/data/mixed.txt" >"$work/spm.ids"
cmp -s "$work/ours.ids" "$work/spm.ids" || fail "melodist and spm_encode disagree on the trained model"

# Control specials are found only when asked for.
cid=$(vocab_id "$work/control" "<|im_start|>")
plain=$("$melodist" tokenize -m "$work/control" "<|im_start|>user")
special=$("$melodist" tokenize -m "$work/control" --special "<|im_start|>user")
[[ " $plain " != *" $cid "* && $special == "$cid "* ]] || fail "control specials: plain '$plain', --special '$special'"
echo "train-tokenizer: models load, chat tokens and newline are single pieces, spm_encode agrees"

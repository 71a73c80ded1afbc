#!/usr/bin/env python3
"""InternLM2 chat template with InternLM2's real tokenizer.model.

1. The reference encodings in internlm2-tokenizer-vectors.json (HF tokenizer and xtuner, made elsewhere).
2. Multi-turn conversations (Chinese, English, ABC, emoji, empty and blank messages) against an independent
   encoding: the HF chat_template text split on the special tokens, each piece through Python SentencePiece,
   BOS first -- what transformers' apply_chat_template(tokenize=True) does.
3. Context fitting: the kept turns and the error when the last turn alone does not fit, against the same rule
   written here over the Python encoding.
4. With torch: `melodist chat --temperature 0` over two turns gives the same replies as greedy decoding of the
   PyTorch InternLM2 reference (tests/reference/internlm2_ref.py) on a random model with the real vocabulary.

usage: template_check.py CHAT_TOOL MELODIST SHARED_DIR WORK_DIR   (exit 77 without the tokenizer/sentencepiece)
"""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import melodist_testlib as T  # noqa: E402
from melodist_testlib import check  # noqa: E402

tool, melodist, shared, work = sys.argv[1:5]
TOK = os.path.join(shared, "models", "internlm2-tokenizer", "tokenizer.model")
VECTORS = os.path.join(shared, "reference", "internlm2-tokenizer-vectors.json")
if not os.path.exists(TOK) or not os.path.exists(VECTORS):
    T.skip("shared InternLM2 tokenizer or vectors absent", sys.stderr)
sentencepiece = T.import_sentencepiece(sys.stderr)

sp = sentencepiece.SentencePieceProcessor(model_file=TOK)
hf_encode = T.ChatTemplate(sp, {"<|im_start|>": 92543, "<|im_end|>": 92542}).encode


def tool_run(mode, arg, msgs):
    args = [tool, mode, TOK, str(arg)]
    for r, c in msgs:
        args += [r, c]
    return subprocess.run(args, capture_output=True, text=True)


def ids_of(line):
    return [int(x) for x in line.split()]


# 1. reference vectors
vectors = json.load(open(VECTORS))
n_vec = 0
for v in vectors:
    if "ids_hf_style_with_bos" in v:
        m = re.match(r"<\|im_start\|>system\n(.*)<\|im_end\|>\n<\|im_start\|>user\n(.*)<\|im_end\|>\n"
                     r"<\|im_start\|>assistant\n$", v["text"], re.S)
        msgs, gen, want = [("system", m.group(1)), ("user", m.group(2))], 1, v["ids_hf_style_with_bos"]
    elif "xtuner_sample" in v or "xtuner_increment_sample" in v:
        s = v.get("xtuner_sample") or v["xtuner_increment_sample"]
        s = eval(s) if isinstance(s, str) else s  # stored as a Python dict literal
        msgs = ([("system", s["system"])] if s["system"] else []) + [("user", s["input"]), ("assistant", s["output"])]
        gen, want = 0, v["input_ids"]
    else:
        continue
    want = json.loads(want) if isinstance(want, str) else want
    r = tool_run("encode", gen, msgs)
    check(r.returncode == 0 and ids_of(r.stdout) == want, "reference vector %d: %s\n want %s" % (n_vec, r.stdout, want))
    n_vec += 1
check(n_vec == 3, "expected 3 chat vectors, found %d" % n_vec)
print("reference vectors: %d checked" % n_vec)

# 2. conversations against the HF-style Python encoding
persona = "你是 Melodist，一位专业的作曲家。"
abc = "X:1\nT:Reel\nM:4/4\nL:1/8\nK:D\n|:d2fd Adfd|e2ge Bege:|\n"
convs = [
    [("system", persona), ("user", "写一首D大调的里尔舞曲。")],
    [("user", "hello")],
    [("system", persona), ("user", "Compose a jig 🎻 in G."), ("assistant", abc), ("user", "Now transpose it to A.")],
    [("system", "You are a composer."), ("user", ""), ("assistant", abc), ("user", "  leading spaces\n\ntwo newlines ")],
    [("user", "第一"), ("assistant", "好的。"), ("user", "第二 <s> </s> tags as text"), ("assistant", "😀 ok"),
     ("user", "最后一个问题？")],
]
for i, msgs in enumerate(convs):
    for gen in (0, 1):
        r = tool_run("encode", gen, msgs)
        want = hf_encode(msgs, gen)
        check(r.returncode == 0 and ids_of(r.stdout) == want,
              "conversation %d gen %d:\n got  %s\n want %s" % (i, gen, r.stdout.strip(), want))
print("conversations: %d checked (with and without the generation prompt)" % len(convs))

# 2b. InternLM2's agent format (InternLM/InternLM chat/chat_format.md): the plugin system prompt, an assistant's
# call between <|action_start|><|plugin|> and <|action_end|>, the environment's answer. Oracle: the same text
# split on all six special tokens, the ids as InternLM2's vocabulary lists them (92538-92543).
AGENT_IDS = {"<|im_start|>": 92543, "<|im_end|>": 92542, "<|action_start|>": 92541, "<|action_end|>": 92540,
             "<|interpreter|>": 92539, "<|plugin|>": 92538}
agent = T.ChatTemplate(sp, AGENT_IDS)
agent.SPLIT = "(" + "|".join(re.escape(k) for k in AGENT_IDS) + ")"
ROLE_LINE = {"plugin_system": "system name=<|plugin|>", "environment": "environment name=<|plugin|>",
             "file": "user name=file"}
schema = '[{"name":"abc_count","description":"bars and voices","parameters":{}}]'
call = '<|action_start|><|plugin|>\n{"name": "abc_count", "parameters": {}}<|action_end|>'
agent_convs = [
    [("plugin_system", schema), ("file", abc), ("user", "How many bars?"), ("assistant", call),
     ("environment", '{"bars_written": 2, "bars_played": 4, "voices": 1}')],
    [("system", persona), ("plugin_system", schema), ("user", "几个小节？\n" + abc), ("assistant", "我来数一数。" + call),
     ("environment", '{"error": "unknown plugin"}'), ("assistant", "共 2 小节。"), ("user", "<|plugin|> as text")],
]
def agent_encode(msgs):
    """The agent format split on the special tokens; user text stays text (chat.h: no forged turns)."""
    ids = [sp.bos_id()]
    for role, content in msgs:
        line = ROLE_LINE.get(role, role)
        if role in ("user", "file"):
            ids += [92543] + sp.encode(line + "\n" + content) + [92542] + sp.encode("\n")
        else:
            ids += agent.encode_text("<|im_start|>%s\n%s<|im_end|>\n" % (line, content))
    return ids + agent.encode_text("<|im_start|>assistant\n")


for i, msgs in enumerate(agent_convs):
    r = tool_run("encode", 1, msgs)
    want = agent_encode(msgs)
    check(r.returncode == 0 and ids_of(r.stdout) == want,
          "agent conversation %d:\n got  %s\n want %s" % (i, r.stdout.strip(), want))
print("agent format: %d conversations checked" % len(agent_convs))

# 3. context fitting: drop the oldest turns (whole, the kept part starts with a user turn), keep the system


def expected_fit(msgs, limit):
    sys_part = msgs[:1] if msgs[0][0] == "system" and len(msgs) > 1 else []
    rest = msgs[len(sys_part):]
    for k in range(len(rest)):
        kept = rest[k:]
        if kept[0][0] != "user" and k < len(rest) - 1:
            continue
        ids = hf_encode(sys_part + kept)
        if len(ids) <= limit:
            return k, ids
    return None, None


long_conv = [("system", persona)]
for t in range(6):
    long_conv += [("user", "Tune number %d, please, in the style of a polka." % t), ("assistant", abc * (t % 3 + 1))]
long_conv.append(("user", "And one more."))
full = len(hf_encode(long_conv))
n_fit = 0
for limit in sorted({full, full - 1, full // 2, full // 3, 60, 40, 30, 20, 5}):
    k, want = expected_fit(long_conv, limit)
    r = tool_run("fit", limit, long_conv)
    if want is None:
        check(r.returncode == 1 and "does not fit" in r.stderr, "fit %d: expected a clear error, got %r" % (limit, r.stderr))
    else:
        lines = r.stdout.splitlines()
        check(r.returncode == 0 and lines[0] == "dropped %d" % k and ids_of(lines[1]) == want,
              "fit %d: got %r, want dropped %d %s" % (limit, r.stdout[:200], k, want[:20]))
    n_fit += 1
print("context fitting: %d limits checked (full prompt %d tokens)" % (n_fit, full))

# 4. melodist chat against the PyTorch reference
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
try:
    import internlm2_ref as ref
    import torch
except (ImportError, SystemExit):
    ref = None
    print("note: torch absent; melodist chat not compared with the PyTorch reference")
if ref:
    STEPS, STOP = 12, (2, 92542)
    system, turns = "You are a composer.", ["Write a reel.", "写一首歌。"]
    cfg = ref.config(64, 2, 4, 2, 128, 92544, 512, 10000.0, None, False)

    for seed in range(30):  # replies without near-ties, without special tokens, decoding to re-encodable text
        w = ref.random_weights(cfg, torch.Generator().manual_seed(seed))
        msgs, replies, ok = [("system", system)], [], True
        for q in turns:
            msgs.append(("user", q))
            out, margin = T.greedy(ref, w, cfg, hf_encode(msgs), STEPS, STOP)
            text = sp.decode(out)
            ok &= margin > 2e-3 and all(3 <= t < 92538 for t in out) and "\n" not in text and "\ufffd" not in text
            msgs.append(("assistant", text))
            replies.append(text)
        if ok:
            break
    model_dir = os.path.join(work, "chat_model")
    ref.save_model(model_dir, cfg, w)
    run = subprocess.run([melodist, "chat", "-m", model_dir, "--tokenizer", TOK, "--system", system,
                          "--temperature", "0", "--max-tokens", str(STEPS)],
                         input="\n".join(turns) + "\n", capture_output=True, text=True)
    want = "".join(t + "\n" for t in replies)
    print("seed %d, reference replies %r" % (seed, replies))
    check(run.returncode == 0 and run.stdout == want,
          "melodist chat: rc %d stdout %r want %r\n%s" % (run.returncode, run.stdout, want, run.stderr))
    print("melodist chat vs PyTorch reference: 2 turns compared")

T.finish()

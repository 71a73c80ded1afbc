#!/usr/bin/env python3
"""`melodist chat` end to end with a tiny random model and a tiny spm_train tokenizer holding the chat tokens.

Piped sessions (greedy, replies cut at the first newline by --stop) are replayed here: every prompt the tool
prints with --print-prompt must be the HF chat template of the conversation so far, encoded by Python
SentencePiece (split on the special tokens, BOS first), after the sliding truncation rule. Also: /reset clears
the history (the same message then gets the same prompt and reply), /system replaces the system prompt, /exit
ends the session, a message too long for the context is a clear error that does not end the session, bad
options and a missing model fail cleanly.

usage: chat_cli_test.py MELODIST CHAT_TOOL SOURCE_DIR WORK_DIR   (exit 77 without spm_train/sentencepiece)
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import melodist_testlib as T  # noqa: E402
from melodist_testlib import check  # noqa: E402

melodist, tool, source, work = sys.argv[1:5]
model, sp = T.tiny_chat_model(tool, source, work)
hf_encode = T.ChatTemplate(sp).encode


def fit(system, turns, limit):
    """The sliding rule: drop the oldest whole turns, keep the system, start with a user turn."""
    head = [("system", system)] if system else []
    for k in range(len(turns)):
        kept = turns[k:]
        if kept[0][0] == "user" or k == len(turns) - 1:
            ids = hf_encode(head + kept)
            if len(ids) <= limit:
                return k, ids
    return None, None


def session(lines, system, ctx, max_tokens, extra=()):
    args = [melodist, "chat", "-m", model, "--system", system, "--temperature", "0", "--max-tokens",
            str(max_tokens), "--ctx", str(ctx), "--stop", "\n", "--print-prompt"] + list(extra)
    return subprocess.run(args, input="".join(l + "\n" for l in lines), capture_output=True, text=True)


def replay(lines, system, ctx, max_tokens, run):
    """Replays the session; returns the list of (prompt ids expected, prompt ids printed)."""
    replies = iter(run.stdout.split("\n"))
    printed = iter(ids for ids in re.findall(r"^prompt: (.*)$", run.stderr, re.M))
    turns, pairs = [], []
    for line in lines:
        if line == "/exit":
            break
        if line == "/reset":
            turns = []
            continue
        if line.startswith("/system"):
            system = line[8:]
            continue
        k, want = fit(system, turns + [("user", line)], ctx - max_tokens)
        if want is None:
            check(re.search(r"does not fit.*%d are available" % (ctx - max_tokens), run.stderr),
                  "no clear error for a message too long: %r" % run.stderr)
            continue
        got = [int(x) for x in next(printed, "").split()]
        pairs.append((want, got))
        turns = turns[k:] + [("user", line), ("assistant", next(replies, None))]
    return pairs


system = "You are a composer."
lines = ["hello", "X:1 please", "/reset", "hello", "/system 你是作曲家。", "写一首歌", "/exit", "never sent"]
run = session(lines, system, 256, 8)
check(run.returncode == 0, "piped session exit status %d: %s" % (run.returncode, run.stderr))
pairs = replay(lines, system, 256, 8, run)
check(len(pairs) == 4, "expected 4 replies, got %d prompts" % len(pairs))
for i, (want, got) in enumerate(pairs):
    check(want == got, "prompt %d differs from the HF template:\n got  %s\n want %s" % (i, got, want))
replies = run.stdout.split("\n")
check(len(replies) == 5 and replies[4] == "", "4 reply lines, got %r" % run.stdout)
check(pairs[0][1] == pairs[2][1] and replies[0] == replies[2], "/reset did not clear the history")
check(len(pairs[1][1]) > len(pairs[0][1]) and pairs[1][1][:len(pairs[0][1])] == pairs[0][1],
      "second turn does not extend the first")
check("[conversation cleared]" in run.stderr and "[system prompt set]" in run.stderr, "notices missing")
print("session: %d prompts equal to the HF template, /reset /system /exit work" % len(pairs))

# Truncation: a small context; every prompt is the fitted one and notices say what was dropped.
lines = ["Write a polka in D major, with two parts and repeats %d." % i for i in range(8)]
lines.insert(5, "tell me " * 40)  # too long for the context even alone
run = session(lines, system, 96, 16)
check(run.returncode == 1, "a message that does not fit must give exit status 1, got %d" % run.returncode)
pairs = replay(lines, system, 96, 16, run)
check(len(pairs) == 8, "expected 8 replies around the error, got %d" % len(pairs))
for i, (want, got) in enumerate(pairs):
    check(want == got and len(got) <= 80, "truncated prompt %d:\n got  %s\n want %s" % (i, got, want))
check(re.search(r"old messages? dropped to fit the 96-token context", run.stderr), "no truncation notice")
print("truncation: %d prompts fitted to 80 tokens, the oversize message rejected clearly" % len(pairs))

# Errors: no crash, clear message, non-zero status.
for args, what in [(["-m", os.path.join(work, "missing")], "cannot load"),
                   (["-m", model, "--top-p", "2"], "bad value"),
                   (["-m", model, "--ctx", "64", "--max-tokens", "64"], "leaves no room"),
                   (["-m", model, "--lang", "fr"], "bad option"),
                   ([], "need -m")]:
    r = subprocess.run([melodist, "chat"] + args, input="hi\n", capture_output=True, text=True)
    check(r.returncode in (1, 2) and what in r.stderr, "%s: rc %d %r" % (args, r.returncode, r.stderr))
r = subprocess.run([melodist, "chat", "-m", model, "--system", "x", "--temperature", "0", "--max-tokens", "4"], input="/bogus\nhi\n",
                   capture_output=True, text=True)
check(r.returncode == 0 and "unknown command" in r.stderr and r.stdout.count("\n") == 1,
      "unknown /command: rc %d %r" % (r.returncode, r.stderr))
print("errors: clear messages")

T.finish()

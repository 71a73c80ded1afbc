#!/usr/bin/env python3
"""`melodist serve` with the shipped model (models/melodist-mini) and its default system prompt: a greedy chat
reply over HTTP equals `melodist chat`'s (both use the composer persona), streamed and not; /v1/abc/check reads
the tune it writes; usage.prompt_tokens equals the HF chat template (persona + message) encoded by Python
SentencePiece with the model's tokenizer.

usage: shipped_test.py MELODIST MODEL_DIR   (exit 77 when the model is absent or sentencepiece is missing)
"""
import json
import os
import re
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import melodist_testlib as T  # noqa: E402
from melodist_testlib import check  # noqa: E402

melodist, model = sys.argv[1:3]
if not os.path.exists(os.path.join(model, "config.json")):
    T.skip("no model at %s" % model)
sentencepiece = T.import_sentencepiece()

ASK, N = "写一首欢快的D大调吉格", 160
proc = subprocess.Popen([melodist, "serve", "-m", model, "--port", "0", "--quiet"], stderr=subprocess.PIPE, text=True)
try:
    port = re.search(r"127\.0\.0\.1:(\d+)/", proc.stderr.readline()).group(1)

    def post(path, body):
        req = urllib.request.Request("http://127.0.0.1:%s%s" % (port, path), data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=300) as r:
            return r.read().decode()

    chat = {"messages": [{"role": "user", "content": ASK}], "temperature": 0, "max_tokens": N}
    answer = json.loads(post("/v1/chat/completions", chat))
    reply = answer["choices"][0]["message"]["content"]
    events = [json.loads(l[6:]) for l in post("/v1/chat/completions", dict(chat, stream=True)).split("\n")
              if l.startswith("data: {")]
    streamed = "".join(e["choices"][0]["delta"].get("content", "") for e in events)
    check(streamed == reply, "streamed %r != %r" % (streamed, reply))
    checked = json.loads(post("/v1/abc/check", {"abc": reply}))
    check(set(checked) >= {"tunes", "errors", "valid", "diagnostics"}, "abc check: %r" % checked)
finally:
    proc.terminate()
    proc.wait(timeout=30)

cli = subprocess.run([melodist, "chat", "-m", model, "--temperature", "0", "--max-tokens", str(N)], input=ASK + "\n",
                     capture_output=True, text=True, timeout=300)
check(cli.returncode == 0 and cli.stdout == reply + "\n",
      "server reply differs from melodist chat:\n server %r\n cli    %r" % (reply, cli.stdout))

persona = re.search(r'#define MELODIST_PERSONA_ZH[\s\\]+((?:"(?:[^"\\]|\\.)*"[\s\\]*)+)',
                    open(os.path.join(os.path.dirname(__file__), "..", "..", "include", "melodist",
                                      "persona.h"), encoding="utf-8").read()).group(1)
persona = "".join(json.loads(s) for s in re.findall(r'"(?:[^"\\]|\\.)*"', persona))
sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(model, "tokenizer.model"))
ids = T.ChatTemplate(sp).encode([("system", persona), ("user", ASK)])
check(answer["usage"]["prompt_tokens"] == len(ids), "usage %r, the template has %d tokens" % (answer["usage"], len(ids)))
print("shipped model: greedy reply (%d chars, %d tokens) = melodist chat's; prompt %d tokens = the HF template with "
      "the persona; the tune: %d error(s), valid %s" % (len(reply), answer["usage"]["completion_tokens"], len(ids),
                                                        checked["errors"], checked["valid"]))
T.finish()

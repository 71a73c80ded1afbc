#!/usr/bin/env python3
"""`melodist serve` end to end, with urllib and raw sockets as the clients.

A tiny random InternLM2 model with a tiny spm_train tokenizer holding the chat tokens (the fixture of
tests/chat) is served on a free port. Checked against independent oracles:
  - greedy replies equal `melodist chat` / `melodist generate` for the same conversation / prompt, and the
    streamed chunks (SSE) concatenate to exactly the non-streamed text;
  - usage.prompt_tokens equals the Hugging Face chat template encoded by Python SentencePiece (BOS first);
  - a stop string cuts the text at its first occurrence in the unstopped greedy text, finish_reason "stop";
  - the JSON shapes are OpenAI's (chat.completion, chat.completion.chunk, text_completion, list, error);
  - errors: malformed JSON / bad fields 400, unknown URL 404, wrong method 405, no Content-Length 411,
    oversize body 413, oversize headers 431, context overflow 400 context_length_exceeded;
  - concurrent clients get the sequential answers, /v1/models answers while a generation streams, a client
    that leaves mid-stream does not hurt the next one, SIGTERM during a stream and SIGINT stop the server (0);
  - /v1/abc/check gives the diagnostics of `melodist abc check --json`; / and /app.js are served.

usage: server_test.py MELODIST CHAT_TOOL SOURCE_DIR WORK_DIR   (exit 77 without spm_train/sentencepiece)
"""
import atexit
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import melodist_testlib as T  # noqa: E402
from melodist_testlib import check  # noqa: E402

melodist, tool, source, work = sys.argv[1:5]
model, sp = T.tiny_chat_model(tool, source, work)
CONTEXT = json.load(open(os.path.join(model, "config.json")))["max_position_embeddings"]
hf_encode = T.ChatTemplate(sp).encode
SYSTEM = "You are a composer."


def start(*extra):
    proc = subprocess.Popen([melodist, "serve", "-m", model, "--port", "0", "--threads", "1", "--web",
                             os.path.join(source, "web")] + list(extra),
                            stderr=subprocess.PIPE, text=True, errors="replace")
    line = proc.stderr.readline()
    m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if not m:
        print("FAIL: the server did not start:", line, proc.stderr.read())
        sys.exit(1)
    atexit.register(lambda: proc.poll() is None and proc.kill())
    log = []
    threading.Thread(target=lambda: log.extend(proc.stderr), daemon=True).start()
    return proc, int(m.group(1)), log


proc, port, log = start()
BASE = "http://127.0.0.1:%d" % port


def request(path, body=None, method=None, raw=None, headers=None):
    """(status, parsed JSON or text); body: a dict sent as JSON, or raw bytes."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(BASE + path, data=data, method=method,
                                 headers=headers or {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status, text, ctype = r.status, r.read().decode(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        status, text, ctype = e.code, e.read().decode(), e.headers.get("Content-Type", "")
    return status, json.loads(text) if ctype.startswith("application/json") else text


def stream(path, body, on_open=None):
    """The SSE events of a streamed request (parsed JSON, "[DONE]" kept as a string)."""
    req = urllib.request.Request(BASE + path, data=json.dumps(dict(body, stream=True)).encode(),
                                 headers={"Content-Type": "application/json"})
    events = []
    with urllib.request.urlopen(req, timeout=60) as r:
        check(r.headers.get("Content-Type", "").startswith("text/event-stream"), "stream content type")
        for line in r:
            line = line.decode().rstrip("\n")
            if line.startswith("data: "):
                events.append("[DONE]" if line == "data: [DONE]" else json.loads(line[6:]))
                if on_open and len(events) == 1:
                    on_open()
            else:
                check(line == "", "unexpected SSE line %r" % line)
    return events


def is_error(status, body, want_status, want_code=None):
    ok = (status == want_status and isinstance(body, dict) and set(body) == {"error"} and
          set(body["error"]) == {"message", "type", "param", "code"} and body["error"]["message"])
    return ok and (want_code is None or body["error"]["code"] == want_code)


# ---- /v1/models
status, body = request("/v1/models")
check(status == 200 and body["object"] == "list" and len(body["data"]) == 1, "/v1/models: %r" % body)
check(body["data"][0]["id"] == "model" and body["data"][0]["object"] == "model" and
      body["data"][0]["owned_by"] == "melodist", "/v1/models entry: %r" % body)

status, one = request("/v1/models/model")
check(status == 200 and one["id"] == "model" and one["object"] == "model", "/v1/models/model: %r" % one)
status, none = request("/v1/models/other")
check(is_error(status, none, 404, "model_not_found"), "/v1/models/other: %d %r" % (status, none))

# ---- chat completions: shape, equality with `melodist chat`, streaming identical, usage from the template
N = 24
chat_req = {"model": "model", "messages": [{"role": "system", "content": SYSTEM},
                                           {"role": "user", "content": "Write a jig in D"}],
            "temperature": 0, "max_tokens": N}
status, r1 = request("/v1/chat/completions", chat_req)
check(status == 200, "chat status %d %r" % (status, r1))
check(set(r1) >= {"id", "object", "created", "model", "choices", "usage"} and r1["object"] == "chat.completion"
      and r1["id"].startswith("chatcmpl-") and r1["model"] == "model", "chat shape: %r" % r1)
choice = r1["choices"][0]
check(choice["index"] == 0 and choice["message"]["role"] == "assistant" and
      isinstance(choice["message"]["content"], str) and choice["finish_reason"] in ("stop", "length"),
      "chat choice: %r" % choice)
reply = choice["message"]["content"]
cli = subprocess.run([melodist, "chat", "-m", model, "--system", SYSTEM, "--temperature", "0", "--max-tokens",
                      str(N), "--threads", "1"], input="Write a jig in D\n", capture_output=True, text=True)
check(cli.returncode == 0 and cli.stdout == reply + "\n",
      "chat reply differs from melodist chat:\n server %r\n cli    %r" % (reply, cli.stdout))
prompt_ids = hf_encode([("system", SYSTEM), ("user", "Write a jig in D")])
u = r1["usage"]
check(u["prompt_tokens"] == len(prompt_ids) and u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"],
      "chat usage %r, template has %d tokens" % (u, len(prompt_ids)))
check((choice["finish_reason"] == "length") == (u["completion_tokens"] == N), "finish_reason vs usage: %r" % r1)

events = stream("/v1/chat/completions", dict(chat_req, stream_options={"include_usage": True}))
check(events and events[-1] == "[DONE]", "stream does not end with [DONE]")
chunks = [e for e in events[:-1] if e["choices"]]
check(all(e["object"] == "chat.completion.chunk" and e["id"] == events[0]["id"] for e in events[:-1]),
      "chunk shapes/ids: %r" % events[:2])
check(chunks[0]["choices"][0]["delta"].get("role") == "assistant", "first chunk has no role: %r" % chunks[0])
streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
check(streamed == reply, "streamed %r != non-streamed %r" % (streamed, reply))
check(chunks[-1]["choices"][0]["finish_reason"] == choice["finish_reason"] and
      all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1]), "stream finish_reason")
check(events[-2]["choices"] == [] and events[-2]["usage"] == u, "include_usage chunk: %r" % events[-2])
print("chat: greedy reply = melodist chat (%d chars), streamed in %d chunks identically, usage %s" %
      (len(reply), len(chunks), u))

# Multi-turn with stop "\n": the second reply equals `melodist chat` on two lines.
lines = ["hello", "X:1 please"]
cli = subprocess.run([melodist, "chat", "-m", model, "--system", SYSTEM, "--temperature", "0", "--max-tokens", "12",
                      "--stop", "\n", "--threads", "1"], input="".join(l + "\n" for l in lines),
                     capture_output=True, text=True)
cli_replies = cli.stdout.split("\n")
msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": lines[0]}]
status, a = request("/v1/chat/completions", {"messages": msgs, "temperature": 0, "max_tokens": 12, "stop": "\n"})
first = a["choices"][0]["message"]["content"]
msgs += [{"role": "assistant", "content": first}, {"role": "user", "content": [{"type": "text", "text": lines[1]}]}]
status, b = request("/v1/chat/completions", {"messages": msgs, "temperature": 0, "max_tokens": 12, "stop": ["\n"]})
second = b["choices"][0]["message"]["content"]
check([first, second] == cli_replies[:2], "two turns %r != melodist chat %r" % ([first, second], cli_replies))
check(b["usage"]["prompt_tokens"] == len(hf_encode([("system", SYSTEM), ("user", lines[0]), ("assistant", first),
                                                    ("user", lines[1])])), "multi-turn usage %r" % b["usage"])
print("chat: two turns equal melodist chat's")

# ---- completions: equality with `melodist generate`, streaming identical, stop strings
prompt = "X:1\nT:Test\nM:6/8\nK:D\n"
comp_req = {"model": "model", "prompt": prompt, "temperature": 0, "max_tokens": N}
status, c1 = request("/v1/completions", comp_req)
check(status == 200 and c1["object"] == "text_completion" and c1["id"].startswith("cmpl-"), "completion %r" % c1)
text = c1["choices"][0]["text"]
gen = subprocess.run([melodist, "generate", "-m", model, "-p", prompt, "--temperature", "0", "--max-tokens", str(N),
                      "--threads", "1"], capture_output=True, text=True)
check(gen.returncode == 0 and gen.stdout == text, "completion %r != melodist generate %r" % (text, gen.stdout))
check(c1["usage"]["prompt_tokens"] == 1 + len(sp.encode(prompt)), "completion usage %r" % c1["usage"])
events = stream("/v1/completions", comp_req)
streamed = "".join(e["choices"][0]["text"] for e in events[:-1])
check(events[-1] == "[DONE]" and streamed == text, "streamed completion %r != %r" % (streamed, text))
check(events[-2]["choices"][0]["finish_reason"] == c1["choices"][0]["finish_reason"], "completion stream finish")
# A stop string taken from the middle of the greedy text cuts it at its first occurrence.
stop = text[len(text) // 2:len(text) // 2 + 2]
if stop.strip():
    status, c2 = request("/v1/completions", dict(comp_req, stop=[stop]))
    want = text[:text.index(stop)]
    check(c2["choices"][0]["text"] == want and c2["choices"][0]["finish_reason"] == "stop",
          "stop %r: got %r, want %r" % (stop, c2["choices"][0], want))
    events = stream("/v1/completions", dict(comp_req, stop=stop))
    check("".join(e["choices"][0]["text"] for e in events[:-1]) == want, "streamed stop string")
# Sampling with a seed is reproducible.
sampled = [request("/v1/completions", dict(comp_req, temperature=1.0, top_p=0.95, seed=7))[1]["choices"][0]["text"]
           for _ in range(2)]
check(sampled[0] == sampled[1], "seeded sampling differs: %r" % sampled)
print("completions: greedy = melodist generate (%d chars), streamed identically, stop strings, seeds" % len(text))

# ---- errors
cases = [
    ("/v1/chat/completions", b"{not json", 400, "invalid_json"),
    ("/v1/chat/completions", b"[1, 2]", 400, "invalid_json"),
    ("/v1/chat/completions", b'{"messages": []}', 400, "invalid_value"),
    ("/v1/chat/completions", b'{"messages": [{"role": "assistant", "content": "hi"}]}', 400, "invalid_value"),
    ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": "hi"}, {"role": "system", "content": "x"}]}',
     400, "invalid_value"),
    ("/v1/chat/completions", b'{"messages": [{"role": "tool", "content": "hi"}]}', 400, "invalid_value"),
    ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": 5}]}', 400, "invalid_value"),
    ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}', 400,
     "invalid_value"),
    ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": "hi"}], "n": 2}', 400, "invalid_value"),
    ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": "hi"}], "copy_bias": -1}', 400,
     "invalid_value"),
    ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}', 400,
     "invalid_type"),
    ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100000}', 400,
     "context_length_exceeded"),
    # No system message: the default persona is far longer than this model's context.
    ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": "hi"}]}', 400, "context_length_exceeded"),
    ("/v1/completions", b'{"prompt": 3}', 400, "invalid_value"),
    ("/v1/completions", json.dumps({"prompt": "a " * 600}).encode(), 400, "context_length_exceeded"),
    ("/v1/abc/check", b'{"tune": "X:1"}', 400, "invalid_value"),
]
for path, raw, want, code in cases:
    status, body = request(path, raw=raw)
    check(is_error(status, body, want, code), "%s %r: %d %r" % (path, raw[:60], status, body))
status, body = request("/v1/nothing")
check(is_error(status, body, 404, "unknown_url"), "404: %d %r" % (status, body))
status, body = request("/v1/chat/completions")
check(is_error(status, body, 405), "405: %d %r" % (status, body))
status, body = request("/v1/chat/completions", raw=b"{" + b" " * (1 << 20) + b"}")
check(is_error(status, body, 413, "request_too_large"), "413: %d %r" % (status, body))


def raw_http(data):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out.decode(errors="replace")
            out += chunk


check(raw_http(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").startswith("HTTP/1.1 411"),
      "no Content-Length must give 411")
check(raw_http(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n").startswith("HTTP/1.1 431"),
      "oversize headers must give 431")
check(raw_http(b"garbage\r\n\r\n").startswith("HTTP/1.1 400"), "a malformed request line must give 400")
# Keep-alive: two requests on one connection, the second pipelined.
both = raw_http(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
check(both.count("HTTP/1.1 200 OK") == 2 and '"status":"ok"' in both, "keep-alive pipelining: %r" % both[:300])
print("errors: %d error cases answered with OpenAI error objects; 404 405 411 413 431" % (len(cases) + 3))

# Garbage: random bytes, requests cut short, and requests whose fields have random JSON values. The server
# answers each with 200 or a 4xx error object (never 5xx), or drops a connection it cannot read, and lives on.
rng = random.Random(1)


def random_value(depth=0):
    kinds = [lambda: None, lambda: rng.random() < 0.5, lambda: rng.choice([0, -1, 1, 0.5, 7, 1e9, -1e300, 2.5]),
             lambda: "".join(rng.choice("ab \n\"\\X:|<>ü音") for _ in range(rng.randrange(8))),
             lambda: rng.randrange(-5, 40),
             lambda: [random_value(depth + 1) for _ in range(rng.randrange(3))],
             lambda: {k: random_value(depth + 1) for k in rng.sample(["role", "content", "type", "text"], 2)}]
    return kinds[rng.randrange(7 if depth < 3 else 5)]()


fields = ["messages", "prompt", "temperature", "top_p", "top_k", "min_p", "max_tokens", "stop", "seed", "n",
          "stream", "stream_options", "repetition_penalty", "copy_bias", "abc"]
bases = {"/v1/chat/completions": {"messages": [{"role": "system", "content": SYSTEM},
                                               {"role": "user", "content": "hi"}], "max_tokens": 4},
         "/v1/completions": {"prompt": "X:1\n", "max_tokens": 4}, "/v1/abc/check": {"abc": "X:1\nK:C\nCDE|\n"}}
statuses = {}
for i in range(150):
    path = rng.choice(sorted(bases))
    body = dict(bases[path])  # a valid request with one to three fields replaced by random values
    for k in rng.sample(fields, rng.randrange(1, 4)):
        body[k] = random_value()
        if k == "messages" and rng.random() < 0.7:
            body[k] = [{"role": rng.choice(["user", "assistant", "system", "x"]), "content": random_value()}
                       for _ in range(rng.randrange(1, 4))]
    mt = body.get("max_tokens")
    if isinstance(mt, (int, float)) and not isinstance(mt, bool):
        body["max_tokens"] = min(mt, 8)
    body.pop("stream", None)
    status, answer = request(path, raw=json.dumps(body).encode())
    statuses[status] = statuses.get(status, 0) + 1
    check(status == 200 or is_error(status, answer, status) and status < 500, "%s %r: %d %r" % (path, body, status,
                                                                                                  answer))
valid = b"POST /v1/completions HTTP/1.1\r\nContent-Length: 40\r\n\r\n" + b'{"prompt": "X:1\\n", "max_tokens": 4}    '
for i in range(150):
    data = (bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))) if i % 3 == 0 else
            valid[:rng.randrange(len(valid))] if i % 3 == 1 else
            bytearray(valid))
    if i % 3 == 2:
        for _ in range(3):
            data[rng.randrange(len(data))] = rng.randrange(256)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(bytes(data))
        s.shutdown(socket.SHUT_WR)  # a request cut short: the server must not wait for the rest forever
        try:
            answer = s.recv(65536)
        except ConnectionResetError:
            answer = b""
        check(not answer.startswith(b"HTTP/1.1 5"), "garbage %r got %r" % (bytes(data[:80]), answer[:100]))
check(proc.poll() is None and request("/v1/completions", comp_req)[1]["choices"][0]["text"] == text,
      "the server did not survive garbage")
print("garbage: 150 random-field requests answered %s; 150 random/cut/mutated requests; still serving" %
      dict(sorted(statuses.items())))

# ---- concurrency: the answers equal the sequential ones; /v1/models answers while a generation streams
results = {}


def worker(i):
    if i % 2:
        results[i] = request("/v1/chat/completions", chat_req)[1]["choices"][0]["message"]["content"] == reply
    else:
        results[i] = request("/v1/completions", comp_req)[1]["choices"][0]["text"] == text


threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
check(len(results) == 8 and all(results.values()), "concurrent answers differ: %r" % results)

long_req = {"prompt": "X:1\n", "temperature": 0.9, "seed": 1, "max_tokens": CONTEXT - 8}
during = []
events = stream("/v1/completions", long_req, on_open=lambda: during.append(request("/v1/models")[0]))
check(during == [200] and events[-1] == "[DONE]", "/v1/models during a stream: %r" % during)

# A client that leaves mid-stream: the server stops that generation and serves the next request.
with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
    body = json.dumps(dict(long_req, stream=True)).encode()
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
              % len(body) + body)
    check(s.recv(4096).startswith(b"HTTP/1.1 200"), "stream start")
status, again = request("/v1/completions", comp_req)
check(status == 200 and again["choices"][0]["text"] == text, "after a client left mid-stream: %r" % again)
check(proc.poll() is None, "the server died")

# More open connections than the server takes (64): the surplus get 503 at once (without sending a request),
# and the server recovers when they close.
idle = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(72)]
time.sleep(0.5)
answers = []
for s in idle:
    s.setblocking(False)
    try:
        answers.append(s.recv(4096).decode())
    except BlockingIOError:
        answers.append(None)  # taken: waits for its request
    s.close()
refused = [a for a in answers if a is not None]
check(len(refused) >= 72 - 64 and all(a.startswith("HTTP/1.1 503") and "server_busy" in a for a in refused),
      "connection limit: %d of 72 refused: %r" % (len(refused), refused[:1]))
time.sleep(0.3)
check(request("/v1/models")[0] == 200, "no recovery after the connection limit")
print("concurrency: 8 parallel clients got the sequential answers; /v1/models answered mid-stream; "
      "a client leaving mid-stream is harmless")

# ---- ABC check: the diagnostics of `melodist abc check --json`
bad = "X:1\nT:Bad\nM:4/4\nL:1/8\nK:G\nGABc dedB|GABc defgab|\n"
status, body = request("/v1/abc/check", {"abc": bad})
cli = subprocess.run([melodist, "abc", "check", "--json", "-"], input=bad, capture_output=True, text=True)
ref = json.loads(cli.stdout)
ref_diags = ref["files"][0]["diagnostics"] if "files" in ref else ref["diagnostics"]
check(status == 200 and not body["valid"] and body["errors"] >= 1 and body["tunes"] == 1, "abc check: %r" % body)
check([(d["line"], d["col"], d["category"], d["message"]) for d in body["diagnostics"]] ==
      [(d["line"], d["col"], d["category"], d["message"]) for d in ref_diags],
      "abc check diagnostics differ from the CLI's:\n %r\n %r" % (body["diagnostics"], ref_diags))
status, body = request("/v1/abc/check", {"abc": "X:1\nT:Good\nM:4/4\nL:1/8\nK:G\nGABc dedB|GABc d4|\n"})
check(status == 200 and body["valid"] and body["errors"] == 0, "valid tune: %r" % body)
print("abc check: diagnostics equal melodist abc check --json")

# ---- the web page
status, page = request("/")
check(status == 200 and "<title>" in page and "app.js" in page and "abcjs.js" in page, "GET /: %d" % status)
status, js = request("/app.js")
check(status == 200 and "/v1/chat/completions" in js, "GET /app.js: %d" % status)
status, lib = request("/abcjs.js")
has_abcjs = os.path.exists(os.path.join(source, "web", "node_modules", "abcjs", "dist", "abcjs-basic-min.js"))
check(status == 200 if has_abcjs else is_error(status, lib, 404) and "npm ci" in lib["error"]["message"],
      "GET /abcjs.js: %d (node_modules %s)" % (status, "present" if has_abcjs else "absent"))
print("web: / /app.js served; abcjs %s" % ("served" if has_abcjs else "absent, 404 says to run npm ci"))

# ---- shutdown: SIGTERM during a stream, SIGINT when idle
t0 = time.time()
try:
    stream("/v1/completions", dict(long_req, max_tokens=CONTEXT - 8),
           on_open=lambda: proc.send_signal(signal.SIGTERM))
except Exception:
    pass  # the stream is cut: that is the point
rc = proc.wait(timeout=20)
check(rc == 0 and time.time() - t0 < 20, "SIGTERM mid-stream: exit %s" % rc)
time.sleep(0.2)
check(any("stopped" in l for l in log), "no 'stopped' message: %r" % log[-3:])
proc, port, log = start("--quiet")
proc.send_signal(signal.SIGINT)
check(proc.wait(timeout=20) == 0, "SIGINT: exit status")
print("shutdown: SIGTERM mid-stream and SIGINT exit 0")

# ---- startup errors
for args, what in [(["-m", os.path.join(work, "missing")], "cannot load"), ([], "need -m"),
                   (["-m", model, "--port", "70000"], "bad option")]:
    r = subprocess.run([melodist, "serve"] + args, capture_output=True, text=True, timeout=30)
    check(r.returncode in (1, 2) and what in r.stderr, "%s: rc %d %r" % (args, r.returncode, r.stderr))
busy = socket.socket()
busy.bind(("127.0.0.1", 0))
busy.listen(1)
r = subprocess.run([melodist, "serve", "-m", model, "--port", str(busy.getsockname()[1])], capture_output=True,
                   text=True, timeout=30)
check(r.returncode == 1 and "choose another --port" in r.stderr, "port in use: %d %r" % (r.returncode, r.stderr))
busy.close()

T.finish()

#!/usr/bin/env python3
"""The web page in a headless browser (Debian chromium, driven over the DevTools protocol): served by
`melodist serve`, its canned answer (/?demo) is drawn as a score by abcjs (an SVG labelled with the tune's title,
one element per note) and checked valid by /v1/abc/check; a chat started with /?ask= shows the API's greedy reply,
streamed; without web/node_modules the page still loads, says to run `npm ci` and shows the ABC as text.

usage: page_test.py MELODIST CHAT_TOOL SOURCE_DIR WORK_DIR
Exit 77 (skip) without chromium, without abcjs in web/node_modules (npm ci --prefix web), or without
spm_train/sentencepiece (the tiny model's tokenizer).
"""
import base64
import html
import json
import os
import re
import shutil
import subprocess
import sys
import socket
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import melodist_testlib as T  # noqa: E402
from melodist_testlib import check  # noqa: E402

melodist, tool, source, work = sys.argv[1:5]
chromium = shutil.which("chromium") or shutil.which("chromium-browser")
web = os.path.join(source, "web")
if not chromium:
    print("SKIP: chromium not found (apt-get install chromium)")
    sys.exit(77)
if not os.path.exists(os.path.join(web, "node_modules", "abcjs", "dist", "abcjs-basic-min.js")):
    print("SKIP: abcjs is not installed (npm ci --prefix web)")
    sys.exit(77)
model, _ = T.tiny_chat_model(tool, source, work)


class DevTools:
    """Just enough of the Chrome DevTools protocol (a WebSocket client on a socket) to evaluate JavaScript in a
    page: the test waits in real time for the page to be ready, which a --dump-dom with virtual time cannot do
    for a streamed answer."""

    def __init__(self, ws_url):
        u = urllib.parse.urlparse(ws_url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=60)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                           % (u.path, u.hostname, u.port, key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError("DevTools refused the WebSocket: %r" % head)
        self.next_id = 0

    def _read(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise RuntimeError("DevTools closed the connection")
            data += chunk
        return data

    def _frame(self):
        b0, b1 = self._read(2)
        n = b1 & 0x7F
        if n >= 126:
            n = int.from_bytes(self._read(2 if n == 126 else 8), "big")
        return b0 & 0x80, self._read(n)  # (FIN, payload): server frames are not masked

    def call(self, method, **params):
        self.next_id += 1
        data = json.dumps({"id": self.next_id, "method": method, "params": params}).encode()
        mask = os.urandom(4)
        n = len(data)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big")
                                if n < 65536 else bytes([0x80 | 127]) + n.to_bytes(8, "big"))
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
        while True:
            fin, payload = self._frame()
            while not fin:
                fin, more = self._frame()
                payload += more
            message = json.loads(payload)
            if message.get("id") == self.next_id:
                return message.get("result", {})

    def evaluate(self, expression):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")


def page_dom(web_dir, query, ready, api=None):
    """The DOM of /?query, served from web_dir, once the JavaScript expression `ready` is true (at most 60 s);
    api(port) runs before the page opens."""
    proc = subprocess.Popen([melodist, "serve", "-m", model, "--port", "0", "--quiet", "--web", web_dir,
                             "--system", "You are a composer."], stderr=subprocess.PIPE, text=True)
    profile = tempfile.mkdtemp()
    browser = None
    try:
        port = re.search(r"127\.0\.0\.1:(\d+)/", proc.stderr.readline()).group(1)
        if api:
            api(port)
        browser = subprocess.Popen([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                    "--disable-background-networking", "--disable-component-update",
                                    "--disable-sync", "--user-data-dir=" + profile, "--remote-debugging-port=0",
                                    "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for line in browser.stderr:
            m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if m:
                break
        else:
            raise RuntimeError("chromium did not start its DevTools server")
        url = urllib.parse.quote("http://127.0.0.1:%s/?%s" % (port, query), safe="")
        req = urllib.request.Request("http://127.0.0.1:%s/json/new?%s" % (m.group(1), url), method="PUT")
        with urllib.request.urlopen(req, timeout=60) as r:
            tab = DevTools(json.load(r)["webSocketDebuggerUrl"])
        deadline = time.time() + 60
        while not tab.evaluate("location.protocol == 'http:' && document.readyState == 'complete' && !!(%s)" % ready) and time.time() < deadline:
            time.sleep(0.1)
        return tab.evaluate("document.documentElement.outerHTML")
    finally:
        if browser:
            browser.terminate()
            browser.wait(timeout=20)
        shutil.rmtree(profile, ignore_errors=True)
        proc.terminate()
        proc.wait(timeout=20)


dom = page_dom(web, "demo", "document.querySelector('.badge') && "
               "[...document.querySelectorAll('.badge')].every(b => b.textContent != 'checking…')")
svg = re.search(r'<svg[^>]*aria-label="Sheet Music for &quot;Demo Jig&quot;"', dom)
notes = len(re.findall(r'class="[^"]*abcjs-note', dom))
check(svg is not None, "no score SVG for the canned tune in the page")
check(notes >= 30, "expected the canned tune's notes drawn, found %d" % notes)  # it has 44 notes
check(re.search(r'class="badge ok">valid ABC<', dom), "the tune is not marked valid by /v1/abc/check")
check("Enjoy playing it!" in dom and "Here is a jig" in dom, "the text around the tune is missing")
print("page: the canned tune drawn by abcjs (%d notes), marked valid ABC" % notes)

# A chat from the page (?ask= sends a message; greedy): the streamed answer it shows is the API's reply.
api_reply = []


def ask_api(port):
    body = json.dumps({"messages": [{"role": "user", "content": "hello"}], "temperature": 0, "max_tokens": 16})
    req = urllib.request.Request("http://127.0.0.1:%s/v1/chat/completions" % port, data=body.encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        choice = json.load(r)["choices"][0]
        api_reply.extend([choice["message"]["content"], choice["finish_reason"]])


dom = page_dom(web, "ask=hello&temperature=0&max_tokens=16",
               "document.querySelector('.msg.assistant') && document.getElementById('stop').disabled", ask_api)
shown = re.search(r'<div class="msg assistant"><div class="who">Melodist</div><div class="body">'
                  r'<div class="text">(.*?)</div></div>', dom, re.S)
check(shown and html.unescape(shown.group(1)) == api_reply[0] and 'class="msg error"' not in dom,
      "the page's answer %r differs from the API's %r" % (shown and html.unescape(shown.group(1)), api_reply))
check(("cut at max tokens" in dom) == (api_reply[1] == "length"), "the note on an answer cut at max_tokens")
print("page chat: ?ask= streamed the API's greedy reply (%d chars) into the page" % len(api_reply[0]))

with tempfile.TemporaryDirectory() as bare:
    for name in ("index.html", "app.js"):
        shutil.copy(os.path.join(web, name), bare)
    dom = page_dom(bare, "demo", "document.getElementById('notice').textContent")
check("npm ci" in dom and "<svg" not in dom, "without abcjs the page must say to run npm ci")
check(re.search(r"<pre>X:1\nT:Demo Jig", dom), "without abcjs the tune must be shown as ABC text")
print("page without abcjs: loads, says to run npm ci, shows the ABC text")

T.finish()

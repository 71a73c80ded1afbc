// The Melodist page: a chat with the composer through /v1/chat/completions (streamed), every ABC tune in an
// answer drawn as a score with abcjs, checked by /v1/abc/check, and playable in the browser.
// Playback uses abcjs's own note timings (repeats, ties, tempo) with a small Web Audio synthesiser, so it works
// offline (abcjs's sampled instruments would be fetched from the internet).
"use strict";

const $ = (id) => document.getElementById(id);
const haveAbcjs = typeof window.ABCJS !== "undefined";
const params = new URLSearchParams(location.search); // ?ask=TEXT sends TEXT; settings by name
const turns = []; // {role, content} of the conversation so far
let controller = null; // aborts the running request
let audio = null; // {ctx, stop()} of the tune playing

function notice(html) {
  $("notice").innerHTML = html;
  $("notice").style.display = "block";
}

if (!haveAbcjs)
  notice("Scores need <b>abcjs</b>, which is not installed: run <code>npm ci</code> in <code>web/</code> " +
         "(or <code>npm ci --prefix web</code> from the repository) and reload. The chat works without it; " +
         "tunes are shown as ABC text.");

fetch("/v1/models").then((r) => r.json()).then((j) => {
  const m = j.data[0];
  $("model").textContent = `${m.id} · ${(m.parameters / 1e6).toFixed(1)}M parameters · ${m.context_length}-token context`;
  if (!params.has("max_tokens")) $("max_tokens").value = Math.min(1024, Math.floor(m.context_length / 2));
}).catch(() => { $("model").textContent = "server not reachable"; });

// ---- splitting an answer into text and ABC tunes

// Fenced blocks (```abc … ```) and bare tunes (from an X: line to the next blank line) become tunes.
function splitAbc(text) {
  const parts = [];
  const lines = text.split("\n");
  let prose = [], tune = null, fenced = false;
  const flushProse = () => { if (prose.length) parts.push({ kind: "text", text: prose.join("\n") }); prose = []; };
  const flushTune = () => { if (tune && tune.some((l) => /^K:/.test(l))) parts.push({ kind: "abc", text: tune.join("\n") + "\n" });
                            else if (tune) prose.push(...tune); tune = null; };
  for (const line of lines) {
    if (fenced) {
      if (/^\s*```/.test(line)) { fenced = false; flushTune(); } else tune.push(line);
    } else if (/^\s*```\s*(abc)?\s*$/i.test(line)) {
      flushTune(); flushProse(); fenced = true; tune = [];
    } else if (tune) {
      if (line.trim() === "") { flushTune(); prose.push(line); } else tune.push(line);
    } else if (/^X:\s*\d*\s*$/.test(line)) {
      flushProse(); tune = [line];
    } else prose.push(line);
  }
  if (fenced && tune) fenced = false; // an unfinished fence while streaming: show what there is
  flushTune(); flushProse();
  return parts;
}

// ---- showing messages

function addMessage(role, text, final = true) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.innerHTML = `<div class="who">${role === "user" ? "you" : role === "error" ? "error" : "Melodist"}</div><div class="body"></div>`;
  $("log").appendChild(div);
  setBody(div, text, final);
  return div;
}

// Renders text into the message; scores only when final (not on every streamed token).
function setBody(div, text, final) {
  const body = div.querySelector(".body");
  body.innerHTML = "";
  for (const part of splitAbc(text)) {
    if (part.kind === "text") {
      const p = document.createElement("div");
      p.className = "text";
      p.textContent = part.text;
      body.appendChild(p);
    } else {
      body.appendChild(tuneView(part.text, final));
    }
  }
  $("log").scrollTop = $("log").scrollHeight;
}

function tuneView(abc, final) {
  const box = document.createElement("div");
  box.className = "tune";
  const score = document.createElement("div");
  score.className = "score";
  const bar = document.createElement("div");
  bar.className = "bar";
  const pre = document.createElement("pre");
  pre.textContent = abc;
  box.append(score, bar, pre);
  if (!final) return box;
  let visual = null;
  if (haveAbcjs) {
    visual = ABCJS.renderAbc(score, abc, { responsive: "resize", add_classes: true })[0];
    pre.style.display = "none";
    const play = button("▶ Play", () => playTune(visual, play));
    const src = button("ABC", () => { pre.style.display = pre.style.display === "none" ? "block" : "none"; });
    bar.append(play, src);
    const midi = midiLink(abc);
    if (midi) bar.append(midi);
  }
  const copy = button("Copy", () => navigator.clipboard && navigator.clipboard.writeText(abc));
  const badge = document.createElement("span");
  badge.className = "badge";
  badge.textContent = "checking…";
  bar.append(copy, badge);
  checkAbc(abc, badge);
  return box;
}

function button(label, onclick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.onclick = onclick;
  return b;
}

function midiLink(abc) {
  try {
    const uri = ABCJS.synth.getMidiFile(abc, { midiOutputType: "encoded" });
    const a = document.createElement("a");
    a.href = Array.isArray(uri) ? uri[0] : uri;
    a.download = "melodist.mid";
    a.textContent = "MIDI";
    return a;
  } catch (e) {
    return null;
  }
}

async function checkAbc(abc, badge) {
  try {
    const r = await fetch("/v1/abc/check", { method: "POST", headers: { "Content-Type": "application/json" },
                                             body: JSON.stringify({ abc }) });
    const j = await r.json();
    const first = j.diagnostics.find((d) => d.severity === "error") || j.diagnostics[0];
    badge.className = "badge " + (j.errors ? "bad" : j.warnings ? "warn" : "ok");
    badge.textContent = j.errors ? `${j.errors} error${j.errors > 1 ? "s" : ""}` :
                        j.warnings ? `valid · ${j.warnings} warning${j.warnings > 1 ? "s" : ""}` : "valid ABC";
    if (first) badge.title = j.diagnostics.map((d) => `line ${d.line}:${d.col} ${d.severity}[${d.category}]: ${d.message}`).join("\n");
  } catch (e) {
    badge.textContent = "";
  }
}

// ---- playback: abcjs's note events, a plucked-string tone per note

function playTune(visual, play) {
  if (audio) { const was = audio.button; audio.stop(); if (was === play) return; }
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) { notice("This browser has no Web Audio: scores cannot be played."); return; }
  const ctx = new Ctx();
  const seq = visual.setUpAudio();
  const meter = visual.getMeterFraction();
  const meterSize = meter.den ? meter.num / meter.den : 1;
  const secondsPerWhole = visual.millisecondsPerMeasure(seq.tempo) / 1000 / meterSize;
  const t0 = ctx.currentTime + 0.1;
  let end = 0;
  const master = ctx.createGain();
  master.gain.value = 0.25;
  master.connect(ctx.destination);
  for (const track of seq.tracks) {
    for (const ev of track) {
      if (ev.cmd !== "note" || ev.pitch === undefined || ev.instrument === 128) continue; // 128: percussion
      const start = t0 + ev.start * secondsPerWhole, dur = Math.max(0.05, ev.duration * secondsPerWhole);
      const osc = ctx.createOscillator(), env = ctx.createGain();
      osc.type = "triangle";
      osc.frequency.value = 440 * Math.pow(2, (ev.pitch - 69) / 12);
      const vol = (ev.volume === undefined ? 100 : ev.volume) / 127;
      env.gain.setValueAtTime(0, start);
      env.gain.linearRampToValueAtTime(vol, start + 0.01);
      env.gain.exponentialRampToValueAtTime(Math.max(0.001, vol * 0.3), start + dur * 0.9);
      env.gain.linearRampToValueAtTime(0, start + dur);
      osc.connect(env).connect(master);
      osc.start(start);
      osc.stop(start + dur + 0.02);
      end = Math.max(end, start + dur);
    }
  }
  play.textContent = "■ Stop";
  const timer = setTimeout(() => audio && audio.stop(), (end - ctx.currentTime + 0.3) * 1000);
  audio = { button: play, stop() { clearTimeout(timer); ctx.close(); play.textContent = "▶ Play"; audio = null; } };
}

// ---- the chat

async function send(text) {
  turns.push({ role: "user", content: text });
  addMessage("user", text);
  const div = addMessage("assistant", "", false);
  const messages = [];
  const system = $("system").value.trim();
  if (system) messages.push({ role: "system", content: system });
  messages.push(...turns);
  const body = { model: "melodist", messages, stream: true, temperature: parseFloat($("temperature").value) || 0,
                 max_tokens: parseInt($("max_tokens").value, 10) || 1024 };
  if ($("seed").value !== "") body.seed = parseInt($("seed").value, 10);
  controller = new AbortController();
  busy(true);
  let answer = "", finish = null;
  try {
    const r = await fetch("/v1/chat/completions", { method: "POST", headers: { "Content-Type": "application/json" },
                                                    body: JSON.stringify(body), signal: controller.signal });
    if (!r.ok) throw new Error((await r.json()).error.message);
    const reader = r.body.getReader(), decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let at;
      while ((at = buf.indexOf("\n\n")) >= 0) {
        const event = buf.slice(0, at);
        buf = buf.slice(at + 2);
        if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
        const j = JSON.parse(event.slice(6));
        if (j.error) throw new Error(j.error.message);
        if (j.choices.length && j.choices[0].delta.content) {
          answer += j.choices[0].delta.content;
          setBody(div, answer, false);
        }
        if (j.choices.length && j.choices[0].finish_reason) finish = j.choices[0].finish_reason;
      }
    }
  } catch (e) {
    if (e.name !== "AbortError") addMessage("error", e.message);
  }
  setBody(div, answer, true);
  if (finish === "length") {
    const note = document.createElement("div");
    note.className = "who";
    note.textContent = "cut at max tokens: raise “max tokens” for a longer answer";
    div.appendChild(note);
  }
  turns.push({ role: "assistant", content: answer });
  controller = null;
  busy(false);
}

function busy(on) {
  $("send").disabled = on;
  $("stop").disabled = !on;
}

$("form").onsubmit = (e) => {
  e.preventDefault();
  const text = $("input").value.trim();
  if (!text || controller) return;
  $("input").value = "";
  send(text);
};
$("input").onkeydown = (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("form").requestSubmit(); }
};
$("stop").onclick = () => controller && controller.abort();
$("clear").onclick = () => { if (controller) controller.abort(); turns.length = 0; $("log").innerHTML = ""; };

for (const k of ["temperature", "max_tokens", "seed", "system"])
  if (params.has(k)) $(k).value = params.get(k);
if (params.has("ask")) send(params.get("ask"));

// ?demo: a canned answer, to see (and test) the scores without a model.
if (params.has("demo")) {
  addMessage("user", "Write a short jig in D major.");
  addMessage("assistant", "Here is a jig in D major, 8 bars:\n\nX:1\nT:Demo Jig\nR:jig\nM:6/8\nL:1/8\nK:D\n" +
             "|:A|dfa afd|gbg fed|ecA AGA|dfd d2:|\n|:e|fgf gfe|dcd e2A|dfa gec|d3 d2:|\n\nEnjoy playing it!");
}

// Times llama.cpp (through the npm package node-llama-cpp, CPU only) on a GGUF file the way bench_decode times
// melodist: prefill a prompt in one evaluation, then greedy-decode DECODE tokens one at a time.
//   node bench/llama_cpp.mjs MODEL.gguf THREADS DECODE --ids N VOCAB   prompt ids (i * 2654435761) % VOCAB,
//                                                                      as bench_decode; prints the timings
//   node bench/llama_cpp.mjs MODEL.gguf THREADS DECODE --text TEXT    prompt TEXT tokenized with BOS; prints
//                                                                      the continuation's ids (up to EOS)
// Run it where node can import node-llama-cpp (a node_modules above the working directory).
import {getLlama} from "node-llama-cpp";

const [modelPath, threads, decodeTokens, mode, arg, vocab] = process.argv.slice(2);
const llama = await getLlama({gpu: false, logLevel: "error"});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const bos = model.tokens.bos;
const tokens = mode === "--text" ? [bos, ...model.tokenize(arg, true).filter(t => t !== bos)]
                                 : Array.from({length: Number(arg)}, (_, i) => Number((BigInt(i) * 2654435761n) % BigInt(vocab)));
const n = Number(decodeTokens);
const context = await model.createContext({contextSize: tokens.length + n + 8, batchSize: 512, threads: Number(threads)});
const sequence = context.getSequence();
let first = 0, count = 0, firstCpu = null;
const out = [];
const start = performance.now(), startCpu = process.cpuUsage();
for await (const token of sequence.evaluate(tokens, {temperature: 0})) {
  if (count === 0) first = performance.now(), firstCpu = process.cpuUsage(startCpu);
  if (mode === "--text" && token === model.tokens.eos) break;
  out.push(token);
  if (++count === n) break;
}
const end = performance.now(), endCpu = process.cpuUsage(startCpu);
const cpuSeconds = u => (u.user + u.system) / 1e6;
if (mode === "--text") {
  console.log(out.join(" "));
} else {
  // The first token comes after the prefill (and one sampling step); the rest are pure decode steps.
  console.log(`llama.cpp prefill ${tokens.length} tok ${(tokens.length / ((first - start) / 1000)).toFixed(1)} tok/s` +
              ` | decode ${count - 1} tok ${((count - 1) / ((end - first) / 1000)).toFixed(2)} tok/s | ${threads} threads` +
              // Process processor time, as bench_decode reports it for one thread (node's own threads included).
              ` | per cpu-second: prefill ${(tokens.length / cpuSeconds(firstCpu)).toFixed(1)} tok/s, decode ` +
              `${((count - 1) / (cpuSeconds(endCpu) - cpuSeconds(firstCpu))).toFixed(2)} tok/s`);
}
await context.dispose();
await model.dispose();

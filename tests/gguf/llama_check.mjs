// llama.cpp (through node-llama-cpp, CPU only) on a GGUF file, for tests/gguf/gguf_check.py:
//   node llama_check.mjs MODEL.gguf greedy STEPS ID,ID,...   greedy continuation of the ids (stops at an
//                                                          end-of-generation token), ids on one line
//   node llama_check.mjs MODEL.gguf tokenize TEXT...        llama.cpp's tokenization of each TEXT (special
//                                                          tokens recognised, no BOS added), a line each
import {getLlama} from "node-llama-cpp";

const [modelPath, mode, a, b, ...more] = process.argv.slice(2);
const llama = await getLlama({gpu: false, logLevel: "error"});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
if (mode === "tokenize") {
  for (const text of [a, b, ...more].filter(t => t !== undefined))
    console.log(Array.from(model.tokenize(text, true)).join(" "));
} else {
  const prompt = b.split(",").map(Number), steps = Number(a);
  const context = await model.createContext({contextSize: prompt.length + steps + 8, batchSize: 512, threads: 1});
  const sequence = context.getSequence();
  const out = [];
  if (steps > 0)
    for await (const token of sequence.evaluate(prompt, {temperature: 0})) {
      if (model.isEogToken(token)) break;
      out.push(token);
      if (out.length === steps) break;
    }
  console.log(out.join(" "));
  await context.dispose();
}
await model.dispose();

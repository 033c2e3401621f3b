// Greedy decoding of raw token ids with llama.cpp (node-llama-cpp's prebuilt CPU build): loads a
// GGUF file, evaluates the prompt, and prints the first N tokens chosen at temperature 0, without
// penalties, with an F32 KV cache, comma-separated on one line.
//   node greedy.mjs MODEL.gguf 1,17,200 N
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const [model_path, prompt_text, n_text] = process.argv.slice(2);
const prompt = prompt_text.split(",").map(Number);
const n = Number(n_text);

const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath: model_path, gpuLayers: 0, useMmap: false});
const context = await model.createContext({
    contextSize: prompt.length + n + 16,
    batchSize: prompt.length + n + 16,
    flashAttention: false,
    threads: 2,
    // the reference keeps its cache in f32: an f16 cache would round every key and value
    experimentalKvCacheKeyType: "F32",
    experimentalKvCacheValueType: "F32",
});
const sequence = context.getSequence();
const out = [];
for await (const token of sequence.evaluate(prompt, {temperature: 0, yieldEogToken: true})) {
    out.push(token);
    if (out.length >= n) break;
}
console.log(out.join(","));
await context.dispose();
await model.dispose();
await llama.dispose();

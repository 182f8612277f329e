// GGUF benchmark of @webtune/nn + @webtune/gguf: export time (device -> GGUF file) and load time
// and peak host memory (GGUF file -> device) for random models of the stories15M shape (dim 288,
// hidden 768, 6 layers, vocab 32000) and of a 256-aligned variant (dim 512, hidden 1536, 4 layers)
// whose rows are whole Q4_K blocks (288 is not: llama.cpp and webtune fall back to Q5_0/Q8_0 there).
//   pnpm --filter @webtune/nn bench:gguf
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGguf } from '@webtune/gguf';
import { CausalLM, createModelConfig, initializeModel } from '@webtune/nn';
import { loadGgufFile, saveGgufFile } from '@webtune/nn/node';
import { createDevice } from '@webtune/tensors';
import { fullFixturePath } from '@webtune/test-utils/fixtures';

const device = await createDevice();
console.log(`device: ${device.info.vendor} ${device.info.device} (${device.info.adapterClass})\n`);
const folder = await mkdtemp(join(tmpdir(), 'webtune-gguf-bench-'));
const stories = fullFixturePath('models', 'stories260K-hf');
const tokenizerFiles = {
  'tokenizer.json': new Uint8Array(await readFile(join(stories, 'tokenizer.json'))),
  'tokenizer_config.json': new Uint8Array(await readFile(join(stories, 'tokenizer_config.json'))),
};

/** Runs `work` while sampling resident and array-buffer memory every 2 ms; returns the peaks above the start. */
async function measure(work) {
  globalThis.gc?.();
  const start = process.memoryUsage();
  let peakRss = start.rss;
  let peakBuffers = start.arrayBuffers;
  const timer = setInterval(() => {
    const now = process.memoryUsage();
    peakRss = Math.max(peakRss, now.rss);
    peakBuffers = Math.max(peakBuffers, now.arrayBuffers);
  }, 2);
  const began = performance.now();
  const result = await work();
  const seconds = (performance.now() - began) / 1000;
  clearInterval(timer);
  const end = process.memoryUsage();
  peakRss = Math.max(peakRss, end.rss);
  peakBuffers = Math.max(peakBuffers, end.arrayBuffers);
  return { result, seconds, rss: peakRss - start.rss, buffers: peakBuffers - start.arrayBuffers };
}

const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const shapes = [
  ['stories15M shape', { hiddenSize: 288, intermediateSize: 768, numHiddenLayers: 6, numAttentionHeads: 6 }],
  [
    '256-aligned variant',
    { hiddenSize: 512, intermediateSize: 1536, numHiddenLayers: 4, numAttentionHeads: 8 },
  ],
];
const rows = [];
for (const [label, shape] of shapes) {
  const config = createModelConfig({
    ...shape,
    numKeyValueHeads: shape.numAttentionHeads,
    vocabSize: 32000,
    maxPositionEmbeddings: 256,
    rmsNormEps: 1e-5,
    tieWordEmbeddings: true,
    bosTokenId: 1,
    eosTokenIds: [2],
  });
  const model = initializeModel(new CausalLM(device, config), { seed: 0 });
  const weightBytes = model.parameterCount() * 4;
  for (const fileType of ['F16', 'Q8_0', 'Q4_K_M']) {
    const path = join(folder, `${label.replace(/\W+/g, '-')}-${fileType}.gguf`);
    const exported = await measure(() => saveGgufFile(model, path, { fileType, tokenizerFiles }));
    const file = await readGguf(new Uint8Array(await readFile(path)));
    const types = {};
    for (const tensor of file.tensors) types[tensor.typeName] = (types[tensor.typeName] ?? 0) + 1;
    const loaded = await measure(() => loadGgufFile(device, path));
    const packed = loaded.result.packedTensors;
    loaded.result.model.dispose();
    rows.push({
      model: label,
      parameters: model.parameterCount(),
      type: fileType,
      tensorTypes: Object.entries(types)
        .map(([type, count]) => `${type}x${count}`)
        .join(' '),
      fileBytes: (await stat(path)).size,
      exportSeconds: exported.seconds,
      loadSeconds: loaded.seconds,
      loadPeakRssBytes: loaded.rss,
      loadPeakArrayBufferBytes: loaded.buffers,
      packedTensors: packed,
      f32WeightBytes: weightBytes,
    });
    const last = rows.at(-1);
    console.log(
      `${label} ${fileType}: file ${mib(last.fileBytes)} (${last.tensorTypes}); export ${last.exportSeconds.toFixed(2)} s; ` +
        `load ${last.loadSeconds.toFixed(2)} s, peak host +${mib(last.loadPeakRssBytes)} RSS, +${mib(last.loadPeakArrayBufferBytes)} array buffers ` +
        `(f32 weights ${mib(weightBytes)}; ${packed} projections kept packed)`,
    );
  }
  model.dispose();
}
console.log(`\n${JSON.stringify(rows)}`);
await rm(folder, { recursive: true, force: true });
device.destroy();

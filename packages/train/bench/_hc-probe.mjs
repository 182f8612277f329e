import { CausalLM, createModelConfig, generateWithTimings, loadWeights } from '@webtune/nn';
import { createDevice } from '@webtune/tensors';
import { globals } from '../../tensors/node_modules/webgpu/index.js';
const original = globals.GPUBuffer.prototype.getMappedRange;
globals.GPUBuffer.prototype.getMappedRange = function (...a) { const r = original.apply(this, a); new Uint8Array(r).fill(0); return r; };
const [cls='discrete', baseFormat='q4_0', vocab='151936', hidden='1024', inter='3072', layers='28'] = process.argv.slice(2);
const device = await createDevice({ dawnOptions: ['backend=null'], adapterClass: cls });
const config = createModelConfig({ architecture: 'Qwen3ForCausalLM', hiddenSize: +hidden, intermediateSize: +inter, numHiddenLayers: +layers, numAttentionHeads: 16,
  numKeyValueHeads: 8, headDim: 128, vocabSize: +vocab, tieWordEmbeddings: true, qkNorm: true, maxPositionEmbeddings: 4096 });
const model = new CausalLM(device, config);
async function* entries() {
  for (const [name, slot] of model.namedSlots()) {
    if (name === 'lm_head.weight') continue;
    const size = slot.shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(size); if (name.endsWith('norm.weight')) values.fill(1);
    yield { name, dtype: 'F32', shape: [...slot.shape], data: new Uint8Array(values.buffer) };
  }
}
let t = performance.now();
await loadWeights(model, entries(), { baseFormat });
console.log('loaded', (performance.now()-t).toFixed(0), 'ms', 'gpu bytes', device.stats, (process.memoryUsage().rss/2**30).toFixed(2), 'GiB');
const ids = Array.from({ length: 128 }, (_, i) => 1 + ((i * 7919) % (+vocab - 1)));
for (let r = 0; r < 3; r++) {
  const s0 = { ...device.stats };
  const t0 = performance.now();
  const { timings } = await generateWithTimings(model, null, [ids], { maxNewTokens: 32, stopTokens: [] });
  console.log(r, (performance.now()-t0).toFixed(1), 'ms', JSON.stringify(timings));
}

// Greedy decode under an f16 base, the token table (and tied head) stored in f16 against the
// storage before it (an f32 table beside the f16 projections), alternating in one process so the
// shared machine's load hits both alike: decode tokens/s (median of the runs after a warm-up),
// whether the fused path ran (and why not), dispatches per token and the table's device bytes.
//   pnpm --filter @webtune/nn build && node --expose-gc bench/half-table-decode.mjs [options]
// Options: --shape=stories15M (default) or --shape=qwen3-0.6B (with --layers=N: the first N
// decoder layers, the full 151,936-token vocabulary: an f32 table over one 128 MiB binding is
// split and decodes unfused, an f16 one decodes fused), --new=N new tokens (default 64),
// --prompt=N prompt tokens (default 16), --runs=N timed runs per storage (default 3).
import {
  CausalLM,
  createModelConfig,
  generateWithTimings,
  initializeModel,
  packFrozenWeights,
} from '@webtune/nn';
import { createDevice } from '@webtune/tensors';

const args = process.argv.slice(2);
const option = (name, fallback) =>
  args.findLast((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const shapeName = option('shape', 'stories15M');
const layers = option('layers', null);
const newTokens = Number(option('new', 64));
const promptTokens = Number(option('prompt', 16));
const runs = Number(option('runs', 3));

const SHAPES = {
  stories15M: {
    hiddenSize: 288,
    intermediateSize: 768,
    numHiddenLayers: 6,
    numAttentionHeads: 6,
    numKeyValueHeads: 6,
    vocabSize: 32000,
  },
  'qwen3-0.6B': {
    architecture: 'Qwen3ForCausalLM',
    hiddenSize: 1024,
    intermediateSize: 3072,
    numHiddenLayers: 28,
    numAttentionHeads: 16,
    numKeyValueHeads: 8,
    headDim: 128,
    vocabSize: 151936,
    qkNorm: true,
  },
};
const device = await createDevice();
const config = createModelConfig({
  ...SHAPES[shapeName],
  ...(layers ? { numHiddenLayers: Number(layers) } : {}),
  tieWordEmbeddings: true,
  maxPositionEmbeddings: 512,
  bosTokenId: 1,
  eosTokenIds: [2],
});
console.log(
  `${device.info.vendor} ${device.info.device} (${device.info.adapterClass}); ${shapeName}${layers ? `, ${layers} layers` : ''}; prompt ${promptTokens}, ${newTokens} new tokens, greedy, batch 1`,
);

/** An f16 base of the shape (same seed, so both storages hold the same projections). */
async function halfBase() {
  const model = initializeModel(new CausalLM(device, config), { seed: 0, std: 0.02 });
  await packFrozenWeights(model, 'f16');
  return model;
}

/** The storage before the f16 table: the packed table decoded back into an f32 tensor, tied head too. */
async function withF32Table(model) {
  const packed = model.getSubmodule('model.embed_tokens').takePackedParameter('weight');
  model.getSubmodule('lm_head').takePackedParameter('weight');
  const values = Float32Array.from(await packed.decode());
  model.setParameterByName('model.embed_tokens.weight', device.fromArray(values, packed.shape, 'f32').keep());
  packed.dispose();
  model.tieWeights();
  return model;
}

const tableBytes = (model) => {
  const packed = model.getSubmodule('model.embed_tokens').packedParameter('weight');
  return packed ? packed.byteLength : model.getParameterByName('model.embed_tokens.weight').size * 4;
};

const models = { 'f32 table': await withF32Table(await halfBase()), 'f16 table': await halfBase() };
const ids = [
  1,
  ...Array.from({ length: promptTokens - 1 }, (_, i) => 3 + ((i * 7919) % (config.vocabSize - 3))),
];
const results = Object.fromEntries(Object.keys(models).map((k) => [k, []]));
const info = {};
for (let run = 0; run <= runs; run++) {
  for (const [name, model] of Object.entries(models)) {
    globalThis.gc?.();
    const { results: out, timings } = await generateWithTimings(model, null, [ids], {
      maxNewTokens: newTokens,
      stopTokens: [],
    });
    info[name] = {
      fused: timings.fused,
      unfusedReason: timings.unfusedReason,
      dispatchesPerToken: +(timings.decodeDispatches / Math.max(1, timings.decodeSteps)).toFixed(1),
      tableBytes: tableBytes(model),
      tokens: out[0].tokens.slice(0, 8).join(','),
    };
    if (run > 0) results[name].push((1000 * timings.decodeSteps) / timings.decodeMs);
  }
}
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
for (const [name, values] of Object.entries(results)) {
  console.log(
    JSON.stringify({
      shape: `${shapeName}${layers ? `, ${layers} layers` : ''}`,
      storage: name,
      decode_tokens_per_s: +median(values).toFixed(2),
      runs: values.map((v) => +v.toFixed(2)),
      ...info[name],
    }),
  );
}
for (const model of Object.values(models)) model.dispose();
device.destroy();

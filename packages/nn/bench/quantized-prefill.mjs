// Prefill of one prompt (batch 1) through the tiled prefill against the model's own forward, for
// the models that used to take the forward: a quantized base (QLoRA's quantization_bit 8 / 4: Q8_0
// or Q4_0 projections, a Q8_0 token table tied to the head) at the stories15M shape, and Gemma 2/3
// (the tiny Transformers fixture, and its config at the stories15M shape with a sliding window of
// 64). The two paths alternate in one process so that the shared machine's load hits both alike.
// Random weights where the shape is not the fixture's: speed depends on the shape only.
//   node --expose-gc bench/quantized-prefill.mjs [--cases=q8_0,q4_0,gemma2-fixture,gemma2,gemma3]
//     [--prompt=128] [--repeats=5]
// stdout: one JSON row per case and path: prompt tokens/s and prefill ms (medians of the repeats
// after one warm-up), each run's ms, the call's process CPU time, the path generate reported, and
// the load average at the start and end of the case.
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const {
  CausalLM,
  createModelConfig,
  generateWithTimings,
  initializeModel,
  packFrozenWeights,
  parseModelConfig,
} = await import('@webtune/nn');
const { loadModelDirectory } = await import('@webtune/nn/node');
const { createDevice } = await import('@webtune/tensors');

const args = process.argv.slice(2);
const option = (name, fallback) =>
  args.findLast((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const cases = option('cases', 'q8_0,q4_0,gemma2-fixture,gemma2,gemma3').split(',');
const promptLength = Number(option('prompt', 128));
const repeats = Number(option('repeats', 5));
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', '__fixtures__', 'transformers');
const STORIES15M = {
  hiddenSize: 288,
  intermediateSize: 768,
  numHiddenLayers: 6,
  numAttentionHeads: 6,
  numKeyValueHeads: 6,
  vocabSize: 32000,
};
const device = await createDevice();

/** A Gemma fixture's config (its family's parts) at the stories15M shape, window 64. */
function gemmaAt15M(name) {
  const json = JSON.parse(readFileSync(join(FIXTURES, name, 'config.json'), 'utf8'));
  const text = json.text_config ?? json;
  Object.assign(text, {
    hidden_size: 288,
    intermediate_size: 768,
    num_hidden_layers: 6,
    num_attention_heads: 6,
    num_key_value_heads: 6,
    head_dim: 48,
    vocab_size: 32000,
    sliding_window: 64,
    max_position_embeddings: 512,
  });
  if (text.layer_types)
    text.layer_types = Array.from({ length: 6 }, (_, i) => text.layer_types[i % text.layer_types.length]);
  return parseModelConfig(json);
}

async function modelOf(name) {
  if (name === 'q8_0' || name === 'q4_0') {
    const config = createModelConfig({
      ...STORIES15M,
      tieWordEmbeddings: true,
      maxPositionEmbeddings: 512,
      bosTokenId: 1,
      eosTokenIds: [2],
    });
    const model = initializeModel(new CausalLM(device, config), { seed: 0 });
    await packFrozenWeights(model, name);
    return { model, label: `stories15M shape, ${name} base` };
  }
  if (name.endsWith('-fixture')) {
    const family = name.slice(0, -'-fixture'.length);
    const { model } = await loadModelDirectory(device, join(FIXTURES, family));
    return { model, label: `${family} Transformers fixture` };
  }
  const model = initializeModel(new CausalLM(device, gemmaAt15M(name)), { seed: 0, std: 0.05 });
  return { model, label: `${name} at the stories15M shape, window 64` };
}

const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1];
for (const name of cases) {
  const { model, label } = await modelOf(name);
  const vocab = model.config.vocabSize;
  const prompt = [1, ...Array.from({ length: promptLength - 1 }, (_, i) => 3 + ((i * 7919) % (vocab - 3)))];
  const loadBefore = loadavg()[0];
  const runs = { true: [], false: [] };
  for (let run = 0; run <= repeats; run++) {
    for (const tiledPrefill of [true, false]) {
      globalThis.gc?.();
      const cpu = process.cpuUsage();
      const { timings } = await generateWithTimings(model, null, [prompt], {
        maxNewTokens: 1,
        stopTokens: [],
        tiledPrefill,
      });
      const used = process.cpuUsage(cpu);
      if (run > 0) runs[tiledPrefill].push({ ...timings, cpuMs: (used.user + used.system) / 1000 });
    }
  }
  const loadAfter = loadavg()[0];
  for (const tiled of ['true', 'false']) {
    const list = runs[tiled];
    const ms = median(list.map((t) => t.prefillMs));
    console.log(
      JSON.stringify({
        case: `prefill ${label}, 1 x ${promptLength}`,
        path: list[0].prefillPath,
        prompt_tokens_per_second: +((promptLength / ms) * 1000).toFixed(0),
        prefill_ms: +ms.toFixed(1),
        call_cpu_ms: +median(list.map((t) => t.cpuMs)).toFixed(0),
        runs_ms: list.map((t) => +t.prefillMs.toFixed(1)),
        load: [+loadBefore.toFixed(2), +loadAfter.toFixed(2)],
      }),
    );
  }
  model.dispose();
}
device.destroy();

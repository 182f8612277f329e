// LoRA SFT on a frozen base in f32, f16, Q8_0 and Q4_0: tokens/s, device and host peak memory,
// and the memory plan's prediction beside the measurement; then the plan's table for Qwen3
// 0.6B / 1.7B / 4B shapes.
//
//   pnpm --filter @webtune/train build && node --expose-gc bench/qlora.mjs
//   node bench/qlora.mjs --only=0.6B --formats=q4_0 --steps=2     (the scale run: slow on lavapipe)
//
// Options: --only=<regexp> over shape names (default: the stories15M shape only; the 0.6B shape
// runs when named), --formats=f32,f16,q8_0,q4_0, --steps=N timed steps after one warm-up (default 2),
// --layers=N keeps the first N decoder layers of each shape (vocabulary and widths unchanged:
// `--only=0.6B --layers=2` times the full-size products in minutes), --json: one JSON row per case
// on stdout, --table=f32: under an f16/bf16 base, decode the packed token table (and tied head)
// back into an f32 tensor after loading, the storage before half-precision tables (its device
// peak is taken from after that conversion; the plan's row then assumes the packed table).
//
// Weights are random and streamed into the model tensor by tensor through loadWeights (the same
// path as a safetensors file), packed on the way: host memory holds one tensor at a time. Device
// peak: the device's peak of live tensor bytes from before loading; host peak: the largest RSS
// sampled every 50 ms.
import { CausalLM, createModelConfig, loadWeights } from '@webtune/nn';
import { getPeftModel, loraConfig } from '@webtune/peft';
import { createDevice, formatBytes } from '@webtune/tensors';
import { planMemory, supervisedTask, train, trainablePeftModel } from '@webtune/train';

const args = process.argv.slice(2);
const option = (name) => args.findLast((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const jsonOnly = args.includes('--json');
const info = jsonOnly ? console.error : console.log;
const steps = Number(option('steps') ?? 2);
const only = new RegExp(option('only') ?? 'stories15M');
const formats = (option('formats') ?? 'f32,f16,q8_0,q4_0').split(',');
const layers = option('layers') ? Number(option('layers')) : null;
const f32Table = option('table') === 'f32';

/** The storage before half-precision tables: the packed table decoded into an f32 tensor. */
async function unpackTable(model) {
  const packed = model.getSubmodule('model.embed_tokens').takePackedParameter('weight');
  if (model.config.tieWordEmbeddings) model.getSubmodule('lm_head').takePackedParameter('weight');
  const values = Float32Array.from(await packed.decode());
  model.setParameterByName('model.embed_tokens.weight', device.fromArray(values, packed.shape, 'f32').keep());
  packed.dispose();
  model.tieWeights();
}

const QWEN3 = {
  '0.6B': { hiddenSize: 1024, intermediateSize: 3072, numHiddenLayers: 28, numAttentionHeads: 16 },
  '1.7B': { hiddenSize: 2048, intermediateSize: 6144, numHiddenLayers: 28, numAttentionHeads: 16 },
  '4B': { hiddenSize: 2560, intermediateSize: 9728, numHiddenLayers: 36, numAttentionHeads: 32 },
};
const qwen3 = (size) => ({
  ...QWEN3[size],
  architecture: 'Qwen3ForCausalLM',
  numKeyValueHeads: 8,
  headDim: 128,
  vocabSize: 151936,
  tieWordEmbeddings: true,
  qkNorm: true,
});
const SHAPES = [
  {
    name: 'stories15M shape',
    config: {
      hiddenSize: 288,
      intermediateSize: 768,
      numHiddenLayers: 6,
      numAttentionHeads: 6,
      numKeyValueHeads: 6,
      vocabSize: 32000,
      tieWordEmbeddings: true,
    },
    batch: 4,
    seq: 128,
  },
  { name: 'Qwen3-0.6B shape', config: qwen3('0.6B'), batch: 1, seq: 128 },
];

let hostPeak = 0;
const sampler = setInterval(() => {
  hostPeak = Math.max(hostPeak, process.memoryUsage().rss);
}, 50);

/** Random weights in the shape of every slot, one tensor at a time (std 0.02, norms 1). */
async function* randomEntries(model, seed) {
  let state = seed >>> 0;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  for (const [name, slot] of model.namedSlots()) {
    if (model.config.tieWordEmbeddings && name === 'lm_head.weight') continue;
    const size = slot.shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(size);
    if (name.endsWith('norm.weight')) values.fill(1);
    else for (let i = 0; i < size; i++) values[i] = (next() - 0.5) * 0.07;
    yield { name, dtype: 'F32', shape: [...slot.shape], data: new Uint8Array(values.buffer) };
  }
}

const device = await createDevice();
info(
  `adapter: ${device.info.vendor} ${device.info.device} (${device.info.adapterClass}); timed steps: ${steps}`,
);
const rows = [];
for (const full of SHAPES.filter((s) => only.test(s.name))) {
  const shape = layers
    ? { ...full, name: `${full.name}, ${layers} layers`, config: { ...full.config, numHiddenLayers: layers } }
    : full;
  for (const baseFormat of formats) {
    globalThis.gc?.();
    await device.sync();
    device.resetPeak();
    hostPeak = process.memoryUsage().rss;
    const hostBefore = hostPeak;
    const deviceBefore = device.memory().liveBytes;
    const config = createModelConfig(shape.config);
    const model = new CausalLM(device, config);
    const loadStart = performance.now();
    await loadWeights(model, randomEntries(model, 7), { baseFormat });
    const loadMs = performance.now() - loadStart;
    if (f32Table && (baseFormat === 'f16' || baseFormat === 'bf16')) {
      await unpackTable(model);
      await device.sync();
      device.resetPeak();
    }
    const peft = await getPeftModel(
      model,
      loraConfig({ r: 8, lora_alpha: 16, target_modules: 'all-linear' }),
      { seed: 0 },
    );
    const data = Array.from({ length: shape.batch }, (_, r) => {
      const ids = Array.from({ length: shape.seq }, (_, t) => (r * 7919 + t * 104729) % config.vocabSize);
      return { inputIds: ids, labels: ids };
    });
    const times = [];
    await train({
      model: trainablePeftModel(peft),
      task: supervisedTask({ stage: 'pt' }),
      train: data,
      args: { perDeviceTrainBatchSize: shape.batch, maxSteps: 1 + steps, learningRate: 1e-3, shuffle: false },
      onEvent: (event) => {
        if (event.type === 'step-end') {
          times.push(event.stepMs);
          info(`  ${shape.name} ${baseFormat}: step ${event.step} ${Math.round(event.stepMs)} ms`);
        }
      },
    });
    const devicePeak = device.memory().peakBytes - deviceBefore;
    const plan = planMemory({
      model: config,
      baseFormat,
      finetuningType: 'lora',
      lora: { r: 8, targetsPerLayer: 7 },
      batchSize: shape.batch,
      sequenceLength: shape.seq,
      gradientCheckpointing: false,
      limits: {
        maxBufferSize: device.gpu.limits.maxBufferSize,
        maxStorageBufferBindingSize: device.maxBindingBytes,
      },
    });
    const timed = times.slice(1).sort((a, b) => a - b);
    const stepMs = timed[Math.floor(timed.length / 2)];
    const row = {
      name: 'qlora-sft',
      model: shape.name,
      base_format: baseFormat,
      table: f32Table && (baseFormat === 'f16' || baseFormat === 'bf16') ? 'f32' : 'packed',
      tokens: shape.batch * shape.seq,
      tokens_per_s: Number(((shape.batch * shape.seq) / (stepMs / 1000)).toFixed(1)),
      load_ms: Math.round(loadMs),
      peak_device_bytes: devicePeak,
      planned_peak_bytes: plan.peak,
      plan_error: Number(((plan.peak - devicePeak) / devicePeak).toFixed(3)),
      peak_host_bytes: hostPeak - hostBefore,
    };
    rows.push(row);
    if (jsonOnly) console.log(JSON.stringify(row));
    else
      info(
        `${shape.name} ${baseFormat}: ${row.tokens_per_s} tokens/s, device peak ${formatBytes(devicePeak)} (plan ${formatBytes(plan.peak)}, ${(row.plan_error * 100).toFixed(1)}%), host peak +${formatBytes(row.peak_host_bytes)}, load ${row.load_ms} ms`,
      );
    model.dispose();
  }
}
clearInterval(sampler);
if (!jsonOnly) {
  console.table(rows.map(({ name, ...rest }) => rest));
  const table = [];
  for (const size of Object.keys(QWEN3)) {
    const config = createModelConfig(qwen3(size));
    const entry = { model: `Qwen3-${size}` };
    for (const baseFormat of ['f32', 'f16', 'q8_0', 'q4_0']) {
      const plan = planMemory({
        model: config,
        baseFormat,
        finetuningType: 'lora',
        lora: { r: 8, targetsPerLayer: 7 },
        batchSize: 1,
        sequenceLength: 1024,
        gradientCheckpointing: true,
        limits: { maxBufferSize: 2 ** 32 - 1, maxStorageBufferBindingSize: 2 ** 27 },
      });
      entry[`${baseFormat} weights`] = formatBytes(plan.weights);
      entry[`${baseFormat} peak`] = formatBytes(plan.peak);
    }
    table.push(entry);
  }
  info('Memory plan, LoRA r 8 all-linear, batch 1 x 1024 tokens, gradient checkpointing:');
  console.table(table);
}

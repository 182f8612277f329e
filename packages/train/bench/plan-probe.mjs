// Probe: what is live on the device at the peak of a LoRA SFT step, grouped by label.
//   node --expose-gc bench/plan-probe.mjs --layers=2 --vocab=151936 --format=q4_0 --steps=2
import { CausalLM, createModelConfig, loadWeights } from '@webtune/nn';
import { getPeftModel, loraConfig } from '@webtune/peft';
import { createDevice, formatBytes } from '@webtune/tensors';
import { planMemory, supervisedTask, train, trainablePeftModel } from '@webtune/train';

const args = process.argv.slice(2);
const option = (name, fallback) =>
  args.findLast((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const layers = Number(option('layers', 2));
const vocab = Number(option('vocab', 151936));
const baseFormat = option('format', 'q4_0');
const steps = Number(option('steps', 2));
const seq = Number(option('seq', 128));
const batch = Number(option('batch', 1));
const hidden = Number(option('hidden', 1024));
const shape = option('shape', 'qwen');
const checkpointing = args.includes('--gc');
const saveTables = args.includes('--save-tables');
const cfg =
  shape === 'qwen'
    ? {
        architecture: 'Qwen3ForCausalLM',
        hiddenSize: hidden,
        intermediateSize: 3072,
        numHiddenLayers: layers,
        numAttentionHeads: 16,
        numKeyValueHeads: 8,
        headDim: 128,
        vocabSize: vocab,
        tieWordEmbeddings: true,
        qkNorm: true,
      }
    : {
        hiddenSize: 288,
        intermediateSize: 768,
        numHiddenLayers: layers,
        numAttentionHeads: 6,
        numKeyValueHeads: 6,
        vocabSize: vocab,
        tieWordEmbeddings: true,
      };

const device = await createDevice();
const lifetime = device.lifetime;
const live = new Set();
const origAllocate = lifetime.allocate.bind(lifetime);
const origRelease = lifetime.release.bind(lifetime);
let snapshotAt = 0;
let snapshot = null;
lifetime.allocate = (...a) => {
  const storage = origAllocate(...a);
  storage.__label = `${a[4]}[${a[3].join(',')}]`;
  live.add(storage);
  const m = lifetime.memory();
  if (m.liveBytes > snapshotAt) {
    snapshotAt = m.liveBytes;
    snapshot = [...live].map((s) => [s.__label, s.allocatedBytes]);
    globalThis.peakStack = new Error().stack;
  }
  return storage;
};
lifetime.release = (storage) => {
  origRelease(storage);
  if (storage.refs <= 0) live.delete(storage);
};

async function* randomEntries(model) {
  let state = 7;
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
const before = device.memory().liveBytes;
const config = createModelConfig(cfg);
const model = new CausalLM(device, config);
await loadWeights(model, randomEntries(model), { baseFormat });
const afterLoad = device.memory().liveBytes - before;
const peft = await getPeftModel(
  model,
  loraConfig({
    r: 8,
    lora_alpha: 16,
    target_modules: 'all-linear',
    modules_to_save: saveTables ? ['embed_tokens', 'lm_head'] : null,
  }),
  {
    seed: 0,
  },
);
const afterPeft = device.memory().liveBytes - before;
const data = Array.from({ length: batch }, (_, r) => {
  const ids = Array.from({ length: seq }, (_, t) => (r * 7919 + t * 104729) % vocab);
  return { inputIds: ids, labels: ids };
});
device.resetPeak();
snapshotAt = 0;
const task = supervisedTask({ stage: 'pt' });
let afterForward = null;
const forward = task.forward;
task.forward = (...a) => {
  const out = forward(...a);
  const groups = new Map();
  for (const s of live) groups.set(s.__label, (groups.get(s.__label) ?? 0) + s.allocatedBytes);
  afterForward = { live: device.memory().liveBytes - before, groups };
  return out;
};
await train({
  model: trainablePeftModel(peft),
  task,
  train: data,
  args: {
    perDeviceTrainBatchSize: batch,
    maxSteps: steps,
    learningRate: 1e-3,
    shuffle: false,
    gradientCheckpointing: checkpointing,
  },
  onEvent: (e) =>
    e.type === 'step-end' &&
    console.error(
      `step ${e.step} ${Math.round(e.stepMs)} ms live ${formatBytes(device.memory().liveBytes - before)}`,
    ),
});
const peak = device.memory().peakBytes - before;
const plan = planMemory({
  model: config,
  baseFormat,
  finetuningType: 'lora',
  lora: { r: 8, targetsPerLayer: 7 },
  batchSize: batch,
  sequenceLength: seq,
  gradientCheckpointing: checkpointing,
  limits: {
    maxBufferSize: device.gpu.limits.maxBufferSize,
    maxStorageBufferBindingSize: device.maxBindingBytes,
  },
});
const groups = new Map();
for (const [label, bytes] of snapshot) {
  const key = label.replace(/#\d+$/, '');
  const g = groups.get(key) ?? [0, 0];
  g[0] += bytes;
  g[1]++;
  groups.set(key, g);
}
const sorted = [...groups].sort((a, b) => b[1][0] - a[1][0]);
console.log(
  `layers ${layers} vocab ${vocab} ${baseFormat} ${batch}x${seq}: load ${formatBytes(afterLoad)} peft ${formatBytes(afterPeft)} peak ${formatBytes(peak)} (${peak}) plan ${formatBytes(plan.peak)} (${((plan.peak / peak - 1) * 100).toFixed(1)}%)`,
);
console.log(
  JSON.stringify({
    weights: plan.weights,
    trainable: plan.trainable,
    gradients: plan.gradients,
    optimizer: plan.optimizer,
    activations: plan.activations,
    logits: plan.logits,
    workspace: plan.workspace,
  }),
);
for (const [label, [bytes, count]] of sorted.slice(0, 40))
  console.log(`${formatBytes(bytes).padStart(12)} x${count} ${label}`);
console.log(`after forward (last step): live ${formatBytes(afterForward.live)}`);
for (const [label, bytes] of [...afterForward.groups].sort((a, b) => b[1] - a[1]).slice(0, 30))
  console.log(`  ${formatBytes(bytes).padStart(12)} ${label}`);
if (process.env.STACK) console.log(globalThis.peakStack);
process.exit(0);

// Which kernels need more than WebGPU's default limits, per adapter class, at real model shapes.
// Runs one layer of each shape through a LoRA SFT step (forward, backward, clipping, AdamW, then
// generate with the adapters), a full fine-tune step (f32 bases) and generate (tiled prefill +
// fused decode) on a device made with `limits: 'default'`, and prints each failure (the kernel and
// the limit it broke).
//
//   node packages/train/bench/limits-sweep.mjs [--backend=null|lavapipe] [--classes=software,discrete]
//     [--only=<regexp over the case name>]
//
// On Dawn's null backend (the default) every pipeline is validated by Tint/Dawn but no kernel runs
// (read-backs are zeroed so generation goes on): a compile-only sweep, seconds per case.
import { CausalLM, createModelConfig, generate, initializeModel, loadWeights } from '@webtune/nn';
import { getPeftModel, loraConfig } from '@webtune/peft';
import { createDevice } from '@webtune/tensors';
import { supervisedTask, train, trainableCausalLM, trainablePeftModel } from '../dist/index.js';
import { zeroReadBacks } from './host-cost-cases.mjs';

const option = (name) =>
  process.argv
    .slice(2)
    .findLast((a) => a.startsWith(`--${name}=`))
    ?.slice(name.length + 3);
const backend = option('backend') ?? 'null';
const classes = (option('classes') ?? 'software,integrated,discrete').split(',');
const only = option('only') ? new RegExp(option('only')) : null;

// One decoder layer of each family's shape (head dims 64, 80, 96, 128, 256; GQA; hidden 4096).
const SHAPES = {
  'llama-hd64': { hiddenSize: 512, intermediateSize: 1376, numAttentionHeads: 8, numKeyValueHeads: 2 },
  'phi-hd80': {
    hiddenSize: 640,
    intermediateSize: 1720,
    numAttentionHeads: 8,
    numKeyValueHeads: 8,
    headDim: 80,
  },
  hd96: { hiddenSize: 768, intermediateSize: 2048, numAttentionHeads: 8, numKeyValueHeads: 4, headDim: 96 },
  'qwen3-hd128': {
    architecture: 'Qwen3ForCausalLM',
    hiddenSize: 1024,
    intermediateSize: 3072,
    numAttentionHeads: 16,
    numKeyValueHeads: 8,
    headDim: 128,
    qkNorm: true,
  },
  'qwen2-bias': {
    architecture: 'Qwen2ForCausalLM',
    hiddenSize: 512,
    intermediateSize: 1376,
    numAttentionHeads: 8,
    numKeyValueHeads: 2,
    qkvBias: true,
  },
  'gemma-hd256': {
    hiddenSize: 512,
    intermediateSize: 1536,
    numAttentionHeads: 4,
    numKeyValueHeads: 1,
    headDim: 256,
  },
  'llama-4096': { hiddenSize: 4096, intermediateSize: 4096, numAttentionHeads: 32, numKeyValueHeads: 8 },
};
const FORMATS = ['f32', 'f16', 'q8_0', 'q4_0', 'q4_k'];

function modelConfig(shape) {
  return createModelConfig({
    numHiddenLayers: 1,
    vocabSize: 512,
    tieWordEmbeddings: true,
    maxPositionEmbeddings: 512,
    bosTokenId: 1,
    eosTokenIds: [2],
    ...shape,
  });
}

async function makeModel(device, config, baseFormat) {
  if (baseFormat === 'f32') return initializeModel(new CausalLM(device, config), { seed: 0 });
  // Packed bases load from host values (the f32 model of the 4096 shape would not fit the null
  // backend's 512 MiB).
  const model = new CausalLM(device, config);
  async function* entries() {
    for (const [name, slot] of model.namedSlots()) {
      if (name === 'lm_head.weight' && config.tieWordEmbeddings) continue;
      const size = slot.shape.reduce((a, b) => a * b, 1);
      const values = new Float32Array(size);
      if (name.endsWith('norm.weight')) values.fill(1);
      else for (let i = 0; i < size; i += 97) values[i] = 0.01 * ((i % 7) - 3);
      yield { name, dtype: 'F32', shape: [...slot.shape], data: new Uint8Array(values.buffer) };
    }
  }
  await loadWeights(model, entries(), { baseFormat });
  return model;
}

// Rows of different lengths: a padded batch.
const rows = (config, count, length) =>
  Array.from({ length: count }, (_, r) => {
    const ids = Array.from(
      { length: length - 11 * r },
      (_, t) => 3 + ((r * 7919 + t * 104729) % (config.vocabSize - 3)),
    );
    return { inputIds: ids, labels: ids };
  });

async function step(trainable, config, activationDtype) {
  await train({
    model: trainable,
    task: supervisedTask({ stage: 'pt' }),
    train: rows(config, 2, 37),
    args: {
      perDeviceTrainBatchSize: 2,
      maxSteps: 1,
      learningRate: 1e-3,
      lrSchedulerType: 'constant',
      maxGradNorm: 1,
      shuffle: false,
      activationDtype,
    },
  });
}

const failures = new Map();
async function attempt(name, run) {
  if (only && !only.test(name)) return;
  const started = performance.now();
  try {
    await run();
    console.log(`ok    ${name} (${(performance.now() - started).toFixed(0)} ms)`);
  } catch (error) {
    const message = String(error?.message ?? error)
      .split('\n')[0]
      .slice(0, 300);
    console.log(`FAIL  ${name}: ${message}`);
    failures.set(message, [...(failures.get(message) ?? []), name]);
  }
}

for (const adapterClass of classes) {
  for (const [shapeName, shape] of Object.entries(SHAPES)) {
    // A device per shape: a pipeline that failed stays cached as invalid on its device.
    const device = await createDevice({
      adapterClass,
      limits: 'default',
      dawnOptions: backend === 'null' ? ['backend=null'] : undefined,
    });
    // No kernel runs on the null backend: zeroed read-backs let generation go on.
    if (backend === 'null') zeroReadBacks(device);
    const storage = device.info.limits.maxStorageBuffersPerShaderStage;
    console.log(
      `# ${adapterClass} ${shapeName}: ${device.info.device}, ${storage} storage buffers per stage`,
    );
    const config = modelConfig(shape);
    for (const baseFormat of FORMATS) {
      if (shapeName === 'llama-4096' && (baseFormat === 'f32' || baseFormat === 'f16')) continue;
      const name = `${adapterClass} ${shapeName} ${baseFormat}`;
      for (const activationDtype of baseFormat === 'f32' ? ['f32', 'f16'] : ['f32']) {
        await attempt(`${name} lora act-${activationDtype}`, async () => {
          const model = await makeModel(device, config, baseFormat);
          try {
            const peft = await getPeftModel(
              model,
              loraConfig({ r: 8, lora_alpha: 16, target_modules: 'all-linear' }),
              {
                seed: 0,
              },
            );
            await step(trainablePeftModel(peft), config, activationDtype);
            // Generation with the adapters (chat, eval, PPO's rollouts).
            await generate(model, null, [rows(config, 1, 41)[0].inputIds], {
              maxNewTokens: 2,
              stopTokens: [],
            });
          } finally {
            model.dispose();
          }
        });
      }
      if (baseFormat === 'f32' && shapeName !== 'llama-4096') {
        await attempt(`${name} full`, async () => {
          const model = await makeModel(device, config, baseFormat);
          try {
            await step(trainableCausalLM(model), config, 'f32');
          } finally {
            model.dispose();
          }
        });
      }
      await attempt(`${name} generate`, async () => {
        const model = await makeModel(device, config, baseFormat);
        try {
          await generate(model, null, [rows(config, 1, 41)[0].inputIds], { maxNewTokens: 3, stopTokens: [] });
        } finally {
          model.dispose();
        }
      });
    }
    device.destroy();
  }
}
console.log(`\n${failures.size} distinct failures`);
for (const [message, names] of failures)
  console.log(`- ${message}\n    ${names.length} cases, e.g. ${names.slice(0, 4).join('; ')}`);

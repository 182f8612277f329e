import { type BaseFormat, CausalLM, createModelConfig, loadWeights, type ModelConfig } from '@webtune/nn';

type Shape = Parameters<typeof createModelConfig>[0];

import { getPeftModel, loraConfig } from '@webtune/peft';
import { clearTape, createDevice, type Device } from '@webtune/tensors';
import { Rng, requireF16 } from '@webtune/test-utils';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { trainablePeftModel } from '../model/trainable-model.js';
import { supervisedTask } from '../tasks/sft-task.js';
import { train } from '../trainer.js';
import { planMemory } from './memory-plan.js';

// The plan against what the device really allocates: live tensor bytes (pool size classes
// included) after loading, after adding LoRA, and the peak of two LoRA SFT steps.

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterEach(() => clearTape());

/** A stories15M-like layer (hidden 288, 6 heads) with a smaller vocabulary and 2 layers. */
const STORIES_LIKE = {
  hiddenSize: 288,
  intermediateSize: 768,
  numHiddenLayers: 2,
  numAttentionHeads: 6,
  numKeyValueHeads: 6,
  vocabSize: 4096,
  tieWordEmbeddings: true,
};
/** A Qwen3-like layer: q/k norms, grouped keys, head_dim 64, a vocabulary that is a multiple of 1,024. */
const QWEN3_LIKE = {
  architecture: 'Qwen3ForCausalLM',
  hiddenSize: 256,
  intermediateSize: 768,
  numHiddenLayers: 2,
  numAttentionHeads: 4,
  numKeyValueHeads: 2,
  headDim: 64,
  vocabSize: 2048,
  tieWordEmbeddings: true,
  qkNorm: true,
};

async function* randomWeights(model: CausalLM, seed: number) {
  const rng = new Rng(seed);
  for (const [name, slot] of model.namedSlots()) {
    if (model.config.tieWordEmbeddings && name === 'lm_head.weight') continue;
    const size = slot.shape.reduce((a, b) => a * b, 1);
    const values = name.endsWith('norm.weight') ? new Float32Array(size).fill(1) : rng.normal(size, 0.02);
    yield { name, dtype: 'F32' as const, shape: [...slot.shape], data: new Uint8Array(values.buffer) };
  }
}

interface Measured {
  weights: number;
  trainable: number;
  peak: number;
}

async function measure(
  shape: Shape,
  baseFormat: BaseFormat,
  batch: number,
  seq: number,
  checkpointing: Checkpointing,
  modulesToSave: string[] | null = null,
): Promise<{ measured: Measured; config: ModelConfig }> {
  await device.sync();
  const before = device.memory().liveBytes;
  device.resetPeak();
  const config = createModelConfig(shape);
  const model = new CausalLM(device, config);
  try {
    await loadWeights(model, randomWeights(model, 3), { baseFormat });
    const weights = device.memory().liveBytes - before;
    const peft = await getPeftModel(
      model,
      loraConfig({ r: 8, lora_alpha: 16, target_modules: 'all-linear', modules_to_save: modulesToSave }),
      {
        seed: 0,
      },
    );
    const trainable = device.memory().liveBytes - before - weights;
    const rows = Array.from({ length: batch }, (_, r) => {
      const ids = Array.from({ length: seq }, (_, t) => (r * 7919 + t * 104729) % config.vocabSize);
      return { inputIds: ids, labels: ids };
    });
    await train({
      model: trainablePeftModel(peft),
      task: supervisedTask({ stage: 'pt' }),
      train: rows,
      // Two steps: the second runs with AdamW's moments allocated.
      args: {
        perDeviceTrainBatchSize: batch,
        maxSteps: 2,
        learningRate: 1e-3,
        shuffle: false,
        gradientCheckpointing: checkpointing !== false,
        checkpointDtype: checkpointing === 'f16' ? 'f16' : 'f32',
      },
    });
    return { measured: { weights, trainable, peak: device.memory().peakBytes - before }, config };
  } finally {
    model.dispose();
  }
}

/** No checkpointing, checkpointing, or checkpointing with the layer inputs stored in f16. */
type Checkpointing = boolean | 'f16';

const CASES: [string, Shape, BaseFormat, Checkpointing, string[]?][] = [
  ['stories-like, f32 base', STORIES_LIKE, 'f32', false],
  ['stories-like, f16 base', STORIES_LIKE, 'f16', false],
  ['stories-like, Q8_0 base', STORIES_LIKE, 'q8_0', false],
  ['stories-like, Q4_0 base', STORIES_LIKE, 'q4_0', false],
  ['stories-like, Q4_0 base, gradient checkpointing', STORIES_LIKE, 'q4_0', true],
  ['stories-like, f16 base, gradient checkpointing with f16 layer inputs', STORIES_LIKE, 'f16', 'f16'],
  [
    'stories-like, Q8_0 base, embed_tokens and lm_head trained (f32 copies)',
    STORIES_LIKE,
    'q8_0',
    false,
    ['embed_tokens', 'lm_head'],
  ],
  [
    'stories-like, f16 base, embed_tokens and lm_head trained (f32 copies beside the f16 table)',
    STORIES_LIKE,
    'f16',
    false,
    ['embed_tokens', 'lm_head'],
  ],
  ['Qwen3-like, f32 base (a 2,048 vocabulary: the logits gradient is copied too)', QWEN3_LIKE, 'f32', false],
];

describe('memory plan against the device', () => {
  it.for(CASES)(
    '%s: weights, LoRA parameters and the peak of 2 LoRA SFT steps',
    async ([label, shape, baseFormat, checkpointing, modulesToSave], context) => {
      if (checkpointing === 'f16') requireF16(context, device.hasF16);
      const batch = 2;
      const seq = 64;
      const { measured, config } = await measure(
        shape,
        baseFormat,
        batch,
        seq,
        checkpointing,
        modulesToSave ?? null,
      );
      const plan = planMemory({
        model: config,
        baseFormat,
        finetuningType: 'lora',
        lora: {
          r: 8,
          targetsPerLayer: 7,
          trainedTables: modulesToSave ? { embedding: true, head: true } : undefined,
        },
        batchSize: batch,
        sequenceLength: seq,
        gradientCheckpointing: checkpointing !== false,
        checkpointDtype: checkpointing === 'f16' ? 'f16' : 'f32',
        matmulOuterSegments: device.tuning.matmulOuterSegments,
        limits: {
          maxBufferSize: device.gpu.limits.maxBufferSize,
          maxStorageBufferBindingSize: device.maxBindingBytes,
        },
      });
      console.log(
        `${label}: peak measured ${measured.peak}, planned ${plan.peak} (${((plan.peak / measured.peak - 1) * 100).toFixed(1)}%)`,
      );
      // Weights (the f16 or Q8_0 table included) are tensors the plan counts one by one, each in
      // its pool size class: exact. A/B within 2%.
      expect(plan.weights).toBe(measured.weights);
      expect(Math.abs(plan.trainable / measured.trainable - 1)).toBeLessThan(0.02);
      // The issue asks for the peak within 15%; these shapes land within 5%.
      expect(Math.abs(plan.peak / measured.peak - 1)).toBeLessThan(0.05);
    },
  );

  it('a longer sequence grows the planned peak as much as the measured one', async () => {
    // Without the terms the plan would not follow the device: a longer sequence grows the
    // measured peak, and the plan grows by the same amount within 10%.
    const short = await measure(STORIES_LIKE, 'q4_0', 1, 32, false);
    const long = await measure(STORIES_LIKE, 'q4_0', 1, 96, false);
    const planFor = (seq: number) =>
      planMemory({
        model: short.config,
        baseFormat: 'q4_0',
        finetuningType: 'lora',
        lora: { r: 8, targetsPerLayer: 7 },
        batchSize: 1,
        sequenceLength: seq,
        gradientCheckpointing: false,
        matmulOuterSegments: device.tuning.matmulOuterSegments,
        limits: {
          maxBufferSize: device.gpu.limits.maxBufferSize,
          maxStorageBufferBindingSize: device.maxBindingBytes,
        },
      }).peak;
    const measuredGrowth = long.measured.peak - short.measured.peak;
    const plannedGrowth = planFor(96) - planFor(32);
    console.log(
      `sequence 32 -> 96: peak grows ${measuredGrowth} measured, ${plannedGrowth} planned (${((plannedGrowth / measuredGrowth - 1) * 100).toFixed(1)}%)`,
    );
    expect(measuredGrowth).toBeGreaterThan(0);
    expect(Math.abs(plannedGrowth / measuredGrowth - 1)).toBeLessThan(0.1);
  });

  it.for(['f16', 'bf16', 'q8_0'] as const)(
    '%s base: the resident weights of a table split in chunks of rows over 1 MiB bindings, exactly',
    async (baseFormat) => {
      // The stories-like table [4096, 288]: 2.36 MB in f16/bf16 (3 chunks), 1.25 MB in Q8_0 (2).
      const small = await createDevice({ maxBindingBytes: 1 << 20 });
      try {
        const config = createModelConfig(STORIES_LIKE);
        const model = new CausalLM(small, config);
        const before = small.memory().liveBytes;
        await loadWeights(model, randomWeights(model, 3), { baseFormat });
        const table = model.getSubmodule('model.embed_tokens').packedParameter('weight');
        expect(table?.format).toBe(baseFormat);
        expect(table?.chunks.length).toBe(baseFormat === 'q8_0' ? 2 : 3);
        const plan = planMemory({
          model: config,
          baseFormat,
          finetuningType: 'none',
          batchSize: 1,
          sequenceLength: 16,
          gradientCheckpointing: false,
          limits: {
            maxBufferSize: small.gpu.limits.maxBufferSize,
            maxStorageBufferBindingSize: small.maxBindingBytes,
          },
        });
        expect(plan.weights).toBe(small.memory().liveBytes - before);
        model.dispose();
      } finally {
        small.destroy();
      }
    },
  );
});

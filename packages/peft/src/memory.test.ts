import { CausalLM, createModelConfig, initializeModel } from '@webtune/nn';
import { createDevice, type Device, formatBytes, type Tensor, zeros } from '@webtune/tensors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freezeTrainableNames } from './freeze/freeze.js';
import { loraConfig } from './lora/lora-config.js';
import { estimateTrainingMemory } from './memory.js';
import { getPeftModel } from './peft-model.js';
import { formatTrainableSummary } from './summary.js';

/** stories15M (llama2.c): dim 288, 6 layers, 6 heads, vocab 32000, hidden 768, tied classifier. */
const STORIES_15M = createModelConfig({
  hiddenSize: 288,
  intermediateSize: 768,
  numHiddenLayers: 6,
  numAttentionHeads: 6,
  vocabSize: 32000,
  maxPositionEmbeddings: 256,
  tieWordEmbeddings: true,
});
const LORA = loraConfig({ r: 8, lora_alpha: 16, target_modules: 'all-linear' });

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());

describe('training memory: LoRA r=8 on all linear layers of a stories15M-shape model', () => {
  it('estimates from shapes: parameters, gradients and AdamW state against full fine-tuning', () => {
    const lora = estimateTrainingMemory(STORIES_15M, { type: 'lora', config: LORA });
    const full = estimateTrainingMemory(STORIES_15M, { type: 'full' });
    // 32000 * 288 embedding (tied head) + 6 * (4 * 288^2 + 3 * 288 * 768 + 2 * 288) + 288.
    expect(full.totalParameters).toBe(15_191_712);
    expect(full.trainableParameters).toBe(15_191_712);
    // Per layer: q, k, v, o 8 * (288 + 288) each, gate, up, down 8 * (288 + 768) each.
    expect(lora.trainableParameters).toBe(6 * (4 * 8 * 576 + 3 * 8 * 1056));
    expect(lora.trainableParameters).toBe(262_656);
    expect(lora.totalParameters).toBe(15_191_712 + 262_656);
    expect(lora.gradientBytes).toBe(4 * 262_656);
    expect(lora.optimizerStateBytes).toBe(8 * 262_656);
    expect(full.gradientBytes).toBe(4 * 15_191_712);
    expect(full.optimizerStateBytes).toBe(8 * 15_191_712);
    // Freezing all but the last 2 layers sits in between.
    const freeze = estimateTrainingMemory(STORIES_15M, { type: 'freeze', options: { trainableLayers: 2 } });
    expect(freeze.trainableParameters).toBe(2 * 995_904);
    const dora = estimateTrainingMemory(STORIES_15M, { type: 'lora', config: { ...LORA, use_dora: true } });
    expect(dora.trainableParameters).toBe(262_656 + 6 * (4 * 288 + 2 * 768 + 288));
    console.log(`LoRA: ${formatTrainableSummary(lora)}`);
    console.log(`full: ${formatTrainableSummary(full)}`);
  });

  it('measures the device bytes: the built model and its adapter, gradients and optimizer state', async () => {
    const measure = <T>(fn: () => T): [T, number] => {
      const before = device.memory().liveBytes;
      const result = fn();
      return [result, device.memory().liveBytes - before];
    };
    const [model, weightBytes] = measure(() =>
      initializeModel(new CausalLM(device, STORIES_15M), { seed: 1 }),
    );
    const before = device.memory().liveBytes;
    const peft = await getPeftModel(model, LORA);
    const adapterBytes = device.memory().liveBytes - before;
    const trainable = peft.trainableParameters().map(([, tensor]) => tensor);
    // What training allocates per trainable tensor: a gradient, and AdamW's m and v (float32).
    const allocate = (tensors: Tensor[], copies: number) =>
      measure(() =>
        tensors.flatMap((t) => Array.from({ length: copies }, () => zeros(device, t.shape, 'f32').keep())),
      );
    const [loraGradients, loraGradientBytes] = allocate(trainable, 1);
    const [loraState, loraStateBytes] = allocate(trainable, 2);
    for (const t of [...loraGradients, ...loraState]) t.dispose();
    const base = [...model.namedParameters()].map(([, t]) => t).filter((t) => !trainable.includes(t));
    const [fullGradients, fullGradientBytes] = allocate(base, 1);
    const [fullState, fullStateBytes] = allocate(base, 2);
    for (const t of [...fullGradients, ...fullState]) t.dispose();

    const summary = peft.summary();
    expect(weightBytes).toBeGreaterThanOrEqual(4 * 15_191_712);
    expect(adapterBytes).toBeGreaterThanOrEqual(summary.gradientBytes);
    expect(loraGradientBytes).toBeGreaterThanOrEqual(summary.gradientBytes);
    expect(loraStateBytes).toBeGreaterThanOrEqual(summary.optimizerStateBytes);
    // The buffer pool rounds sizes up (the 36.9 MB embedding most of all): bounded overhead.
    expect(weightBytes).toBeLessThan(1.25 * 4 * 15_191_712);
    expect(loraStateBytes).toBeLessThan(1.25 * summary.optimizerStateBytes);
    const loraTotal = weightBytes + adapterBytes + loraGradientBytes + loraStateBytes;
    const fullTotal = weightBytes + fullGradientBytes + fullStateBytes;
    expect(loraTotal).toBeLessThan(0.4 * fullTotal);
    const row = (label: string, weights: number, gradients: number, state: number) =>
      `${label.padEnd(28)} weights ${formatBytes(weights).padStart(9)}  gradients ${formatBytes(gradients).padStart(9)}  optimizer ${formatBytes(state).padStart(9)}  total ${formatBytes(weights + gradients + state).padStart(9)}`;
    console.log(
      [
        `stories15M shape, device bytes (${device.info.vendor} ${device.info.architecture}):`,
        row('full fine-tuning', weightBytes, fullGradientBytes, fullStateBytes),
        row('LoRA r=8 all-linear', weightBytes + adapterBytes, loraGradientBytes, loraStateBytes),
        row(`freeze last 2 layers (est.)`, 4 * 15_191_712, 4 * 2 * 995_904, 8 * 2 * 995_904),
        `trainable: ${peft.formatSummary()}`,
        `exact bytes: weights ${4 * 15_191_712} + adapter ${summary.gradientBytes}; LoRA gradients ${summary.gradientBytes}, optimizer ${summary.optimizerStateBytes}; full gradients ${4 * 15_191_712}, optimizer ${8 * 15_191_712}`,
      ].join('\n'),
    );
    expect(freezeTrainableNames(model, { trainableLayers: 2 }).length).toBeGreaterThan(0);
    peft.model.dispose();
  });
});

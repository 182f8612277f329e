import { CausalLM, createModelConfig, initializeModel } from '@webtune/nn';
import { getPeftModel, loraConfig } from '@webtune/peft';
import { createDevice, type Device } from '@webtune/tensors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainablePeftModel } from './model/trainable-model.js';
import { supervisedTask } from './tasks/sft-task.js';
import { train } from './trainer.js';

/*
 * Dispatches of one LoRA SFT step at the stories260K shape (5 layers, all-linear r 8, AdamW,
 * clipping; the bench's step, on 2 x 32 tokens so it runs in seconds: the count does not depend
 * on the token count at these sizes). Counted, not timed: on lavapipe each dispatch costs a fixed
 * 20-50 us besides its work, and the step's count was the open part of issue #21.
 */

let fused: Device;
let separate: Device;
beforeAll(async () => {
  fused = await createDevice();
  // The LoRA layers as separate products and adds (what a step did before lowRankLinear).
  separate = await createDevice({ tuning: { lowRankEpilogue: false } });
});
afterAll(() => {
  fused?.destroy();
  separate?.destroy();
});

const LAYERS = 5;

/** Dispatches of the second training step (the first also compiles, packs and allocates). */
async function stepDispatches(device: Device): Promise<{ dispatches: number; losses: number[] }> {
  const config = createModelConfig({
    hiddenSize: 64,
    intermediateSize: 172,
    numHiddenLayers: LAYERS,
    numAttentionHeads: 8,
    numKeyValueHeads: 4,
    vocabSize: 512,
    tieWordEmbeddings: true,
    maxPositionEmbeddings: 512,
    bosTokenId: 1,
    eosTokenIds: [2],
  });
  const model = initializeModel(new CausalLM(device, config), { seed: 0 });
  try {
    const peft = await getPeftModel(
      model,
      loraConfig({ r: 8, lora_alpha: 16, target_modules: 'all-linear' }),
      {
        seed: 0,
      },
    );
    const rows = Array.from({ length: 2 }, (_, r) => {
      const ids = Array.from({ length: 32 }, (_, t) => (r * 7919 + t * 104729) % 512);
      return { inputIds: ids, labels: ids };
    });
    const counts: number[] = [];
    const losses: number[] = [];
    await train({
      model: trainablePeftModel(peft),
      task: supervisedTask({ stage: 'pt' }),
      train: rows,
      args: {
        perDeviceTrainBatchSize: 2,
        maxSteps: 3,
        learningRate: 1e-3,
        lrSchedulerType: 'constant',
        maxGradNorm: 1,
        shuffle: false,
        gradientCheckpointing: false,
      },
      onEvent: (event) => {
        if (event.type !== 'step-end') return;
        counts.push(device.stats.dispatches);
        losses.push(event.loss);
      },
    });
    return { dispatches: counts[2] - counts[1], losses };
  } finally {
    model.dispose();
  }
}

describe('dispatches of a LoRA SFT step at the stories260K shape', () => {
  it('runs each LoRA layer as one op: 16 per layer fewer than the separate products, same losses', async () => {
    const one = await stepDispatches(fused);
    const apart = await stepDispatches(separate);
    // Per layer: 7 targets x 1 forward product (B A x in the base product's epilogue), 7 input
    // gradients dy W + dh A in one product (but layer 0's q/k/v, whose input, the frozen
    // embedding's output, needs none), and the residual adds after o_proj and down_proj.
    expect(apart.dispatches - one.dispatches).toBe(16 * LAYERS - 3);
    // 395 before lowRankLinear: a count above this bound is a regression of issue #21's step.
    expect(one.dispatches).toBeLessThanOrEqual(318);
    expect(one.losses.length).toBe(3);
    one.losses.forEach((loss, i) => {
      expect(Math.abs(loss - apart.losses[i])).toBeLessThan(1e-4);
    });
  });
});

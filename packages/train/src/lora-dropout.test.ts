import { getPeftModel, loraConfig } from '@webtune/peft';
import { clearTape, createDevice, type Device } from '@webtune/tensors';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listCheckpoints } from './checkpoint/checkpoint.js';
import { memoryStorage, type TrainingStorage } from './checkpoint/training-storage.js';
import type { TrainingArguments } from './config/training-arguments.js';
import { trainablePeftModel } from './model/trainable-model.js';
import { supervisedTask } from './tasks/sft-task.js';
import { patternRows, tinyLlama } from './testing/toy-model.js';
import { train } from './trainer.js';

// LoRA with dropout: the masks are a pure function of (run seed, step, micro-batch, layer path),
// so a resumed run draws the masks of the uninterrupted one and gradient checkpointing's
// recomputation draws the masks of the first forward.

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());
afterEach(() => clearTape());

const ROWS = patternRows(12, 6);
const ARGS: TrainingArguments = {
  perDeviceTrainBatchSize: 2,
  gradientAccumulationSteps: 2,
  maxSteps: 6,
  learningRate: 0.05,
  lrSchedulerType: 'constant',
  loggingSteps: 1,
  seed: 3,
};

/** Trains LoRA (dropout 0.1) on a fresh tiny Llama; returns the losses and the adapter's final weights. */
async function run(
  args: TrainingArguments,
  storage: TrainingStorage | null = null,
  crashAfterStep?: number,
  dropout = 0.1,
) {
  const model = tinyLlama(device, 2);
  const peft = await getPeftModel(
    model,
    loraConfig({ r: 4, lora_alpha: 8, target_modules: 'all-linear', lora_dropout: dropout }),
    { seed: 9 },
  );
  try {
    const result = await train({
      model: trainablePeftModel(peft),
      task: supervisedTask(),
      train: ROWS,
      args,
      storage,
      onEvent: (event) => {
        if (event.type === 'step-end' && event.step === crashAfterStep) throw new Error('simulated crash');
      },
    });
    const weights: number[] = [];
    for (const [, tensor] of peft.adapterStateDict())
      weights.push(...((await tensor.toArray()) as Float32Array));
    return { losses: result.losses, weights };
  } finally {
    model.dispose();
  }
}

describe('LoRA dropout in training', () => {
  it('a resumed run repeats the uninterrupted one exactly; checkpointing changes nothing', async () => {
    const args = { ...ARGS, saveSteps: 3 };
    const reference = await run(args, memoryStorage());
    const storage = memoryStorage();
    await expect(run(args, storage, 4)).rejects.toThrow('simulated crash');
    expect(await listCheckpoints(storage)).toEqual(['checkpoint-3']);
    const resumed = await run({ ...args, resumeFromCheckpoint: true }, storage);
    expect(resumed.losses).toEqual(reference.losses.slice(3));
    expect(resumed.weights).toEqual(reference.weights);

    // Gradient checkpointing recomputes each decoder layer with the masks of its first forward.
    const checkpointed = await run({ ...ARGS, gradientCheckpointing: true });
    for (const [i, loss] of reference.losses.entries()) expect(checkpointed.losses[i]).toBeCloseTo(loss, 5);
    const worst = Math.max(...checkpointed.weights.map((w, i) => Math.abs(w - reference.weights[i])));
    expect(worst).toBeLessThan(1e-5);

    // The masks do act: without dropout the run differs.
    const undropped = await run(ARGS, null, undefined, 0);
    expect(
      Math.max(...undropped.losses.map((loss, i) => Math.abs(loss - reference.losses[i]))),
    ).toBeGreaterThan(1e-4);
  });
});

import { clearTape, createDevice, type Device } from '@webtune/tensors';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listCheckpoints } from './checkpoint/checkpoint.js';
import { memoryStorage } from './checkpoint/training-storage.js';
import type { TrainingArguments } from './config/training-arguments.js';
import { patternRows } from './testing/toy-model.js';
import { trainToyModel } from './testing/toy-run.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());
afterEach(() => clearTape());

// 24 rows, micro-batches of 2, 2 per step: 6 optimizer steps per epoch.
const ARGS: TrainingArguments = {
  perDeviceTrainBatchSize: 2,
  gradientAccumulationSteps: 2,
  learningRate: 0.05,
  loggingSteps: 2,
  seed: 7,
};

async function run(args: TrainingArguments) {
  const storage = memoryStorage();
  const { result, events } = await trainToyModel(device, {
    train: patternRows(24, 7),
    validation: patternRows(4, 7),
    args,
    storage,
  });
  const evals = events.flatMap((event) => (event.type === 'eval-end' ? [event.step] : []));
  return { result, evals, checkpoints: await listCheckpoints(storage) };
}

describe("eval_strategy and save_strategy 'epoch'", () => {
  it('evaluate and save at the end of each epoch, and at the last step of a part epoch', async () => {
    const { result, evals, checkpoints } = await run({
      ...ARGS,
      numTrainEpochs: 1.5,
      evalStrategy: 'epoch',
      saveStrategy: 'epoch',
    });
    expect(result.steps).toBe(9);
    expect(result.epoch).toBe(1.5);
    expect(evals).toEqual([6, 9]);
    // Transformers saves at every epoch end, the cut-short last epoch's (step 9) included.
    expect(checkpoints).toEqual(['checkpoint-6', 'checkpoint-9']);
  });

  it("'no' turns them off even when steps are given; 'steps' follows the steps", async () => {
    const off = await run({
      ...ARGS,
      maxSteps: 4,
      evalStrategy: 'no',
      evalSteps: 1,
      saveStrategy: 'no',
      saveSteps: 1,
    });
    expect(off.evals).toEqual([]);
    expect(off.checkpoints).toEqual([]);
    const steps = await run({ ...ARGS, maxSteps: 4, evalStrategy: 'steps', evalSteps: 3, saveSteps: 2 });
    expect(steps.evals).toEqual([3, 4]);
    expect(steps.checkpoints).toEqual(['checkpoint-2', 'checkpoint-4']);
  });
});

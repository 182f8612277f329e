import { clearTape, createDevice, type Device } from '@webtune/tensors';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { memoryStorage } from '../checkpoint/training-storage.js';
import type { KtoRow } from '../data/rows.js';
import type { StepEndEvent, TrainerEvent } from '../events.js';
import { patternRows, toyModel } from '../testing/toy-model.js';
import { evaluate, train } from '../trainer.js';
import { ktoTask } from './kto-task.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());
afterEach(() => clearTape());

/**
 * Even rows follow the pattern (desirable); odd rows break it (undesirable). The KL pair of row i
 * is its prompt with the answer of row i + 1, as @webtune/data's encodeKto builds it.
 */
function ktoRows(count: number): KtoRow[] {
  const answers = patternRows(count, 6).map((row, i) => {
    const ids =
      i % 2 === 0 ? Array.from(row.inputIds) : row.inputIds.map((id, t) => (t < 2 ? id : (id * 5 + 2) % 16));
    return { ids, desirable: i % 2 === 0 };
  });
  const labelled = (ids: number[]) => ({ inputIds: ids, labels: ids.map((id, t) => (t < 1 ? -100 : id)) });
  return answers.map((answer, i) => {
    const other = answers[(i + 1) % answers.length].ids;
    return {
      ...labelled(answer.ids),
      desirable: answer.desirable,
      kl: labelled([answer.ids[0], ...other.slice(1)]),
    };
  });
}

describe('KTO task on a toy model', () => {
  it('frozen-copy reference: 1 - sigmoid(0) weighted at the start, chosen rewards rise above rejected', async () => {
    const model = toyModel(device);
    const frozen = toyModel(device);
    const events: TrainerEvent[] = [];
    const data = ktoRows(16);
    const task = ktoTask({ beta: 0.5, desirableWeight: 1.5, undesirableWeight: 1, frozenCopy: frozen });
    const storage = memoryStorage();
    await train({
      model,
      task,
      train: data,
      args: {
        perDeviceTrainBatchSize: 4,
        gradientAccumulationSteps: 2,
        maxSteps: 12,
        learningRate: 0.05,
        shuffle: false,
      },
      onEvent: (event) => events.push(event),
      storage,
    });
    const steps = events.filter((e): e is StepEndEvent => e.type === 'step-end');
    // Policy = reference and KL = 0: every loss is w / 2; half the rows weigh 1.5, half 1.
    expect(steps[0].loss).toBeCloseTo((0.5 * 1.5 + 0.5 * 1) / 2, 5);
    expect(steps[0].metrics['rewards/chosen']).toBeCloseTo(0, 5);
    expect(steps[0].metrics.kl).toBeCloseTo(0, 5);
    const log = new TextDecoder().decode(await storage.readFile('trainer_log.jsonl'));
    for (const name of ['rewards/chosen', 'rewards/rejected', 'rewards/margins', 'logps/chosen', 'kl']) {
      expect(log).toContain(`"${name}"`);
    }
    const after = await evaluate(model, task, data, 8);
    expect(after.metrics['eval_rewards/chosen']).toBeGreaterThan(after.metrics['eval_rewards/rejected']);
    expect(after.metrics['eval_rewards/margins']).toBeGreaterThan(0.5);
    expect(after.loss).toBeLessThan(steps[0].loss);
    model.dispose();
    frozen.dispose();
  });

  it('without adapters or a copy the reference is precomputed before step 1', async () => {
    const model = toyModel(device);
    const result = await train({
      model,
      task: ktoTask({ beta: 0.1 }),
      train: ktoRows(8),
      validation: ktoRows(4),
      args: { perDeviceTrainBatchSize: 4, maxSteps: 4, learningRate: 0.05, evalSteps: 2 },
    });
    expect(result.losses[0]).toBeCloseTo(0.5, 5);
    expect(result.losses[3]).toBeLessThan(0.5);
    expect(result.evalLosses.map((e) => e.step)).toEqual([2, 4]);
    model.dispose();
  });
});

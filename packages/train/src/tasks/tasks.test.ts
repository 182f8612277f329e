import { memoryFileSource } from '@webtune/nn';
import { clearTape, createDevice, type Device } from '@webtune/tensors';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { memoryStorage } from '../checkpoint/training-storage.js';
import type { PreferenceRow } from '../data/rows.js';
import type { StepEndEvent, TrainerEvent } from '../events.js';
import { patternRows, toyModel } from '../testing/toy-model.js';
import { evaluate, train } from '../trainer.js';
import { preferenceTask } from './preference-task.js';
import { rewardTask } from './reward-task.js';
import { loadValueHead, VALUE_HEAD_FILE } from './value-head-file.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());
afterEach(() => clearTape());

/** Pairs whose chosen answer follows the pattern and whose rejected answer breaks it. */
function pairs(count: number): PreferenceRow[] {
  return patternRows(count, 6).map((row) => {
    const broken = row.inputIds.map((id, t) => (t < 2 ? id : (id * 5 + 2) % 16));
    return {
      chosen: row,
      rejected: { inputIds: broken, labels: broken.map((id, t) => (t < 1 ? -100 : id)) },
    };
  });
}

describe('preference and reward tasks on a toy model', () => {
  it('DPO with a frozen copy as reference: ln 2 at the start, accuracy up, rewards in the events', async () => {
    const model = toyModel(device);
    const frozen = toyModel(device);
    const events: TrainerEvent[] = [];
    const data = pairs(16);
    const task = preferenceTask({ loss: 'sigmoid', beta: 0.5, frozenCopy: frozen });
    await train({
      model,
      task,
      train: data,
      args: { perDeviceTrainBatchSize: 4, gradientAccumulationSteps: 2, maxSteps: 12, learningRate: 0.05 },
      onEvent: (event) => events.push(event),
    });
    const steps = events.filter((e): e is StepEndEvent => e.type === 'step-end');
    expect(steps[0].loss).toBeCloseTo(Math.LN2, 5);
    expect(Object.keys(steps[0].metrics)).toEqual(
      expect.arrayContaining([
        'rewards/chosen',
        'rewards/rejected',
        'rewards/accuracies',
        'rewards/margins',
        'logps/chosen',
      ]),
    );
    const after = await evaluate(model, task, data, 8);
    expect(after.metrics['eval_rewards/accuracies']).toBeGreaterThan(0.8);
    expect(after.metrics['eval_rewards/margins']).toBeGreaterThan(0);
    model.dispose();
    frozen.dispose();
  });

  it('ORPO and SimPO train without any reference; a precomputed reference is computed before step 1', async () => {
    for (const loss of ['orpo', 'simpo'] as const) {
      const model = toyModel(device);
      const task = preferenceTask({ loss, beta: loss === 'simpo' ? 2 : 0.1 });
      const before = await evaluate(model, task, pairs(8), 8);
      await train({
        model,
        task,
        train: pairs(8),
        args: { perDeviceTrainBatchSize: 4, maxSteps: 6, learningRate: 0.05 },
      });
      const after = await evaluate(model, task, pairs(8), 8);
      expect(after.loss, loss).toBeLessThan(before.loss * 0.8);
      model.dispose();
    }
    const model = toyModel(device);
    const result = await train({
      model,
      task: preferenceTask({ loss: 'ipo', beta: 0.1 }),
      train: pairs(8),
      validation: pairs(4),
      args: { perDeviceTrainBatchSize: 4, maxSteps: 4, learningRate: 0.05, evalSteps: 2 },
    });
    // IPO's loss at the start is (0 - 1 / (2 beta))^2 = 25: the policy equals the precomputed reference.
    expect(result.losses[0]).toBeCloseTo(25, 3);
    expect(result.evalLosses.map((e) => e.step)).toEqual([2, 4]);
    model.dispose();
  });

  it('reward model: the value head trains beside the model, pairwise loss falls, accuracy in the log', async () => {
    // A bigram model scores an answer by its last token: rejected answers end in 15, chosen ones never.
    const scored = (count: number) =>
      pairs(count + 4)
        .filter((pair) => pair.chosen.inputIds[pair.chosen.inputIds.length - 1] !== 15)
        .slice(0, count)
        .map((pair) => {
          const ids = [...Array.from(pair.chosen.inputIds).slice(0, -1), 15];
          return { chosen: pair.chosen, rejected: { inputIds: ids, labels: ids } };
        });
    const model = toyModel(device);
    const task = rewardTask({ seed: 4 });
    const storage = memoryStorage();
    const result = await train({
      model,
      task,
      train: scored(16),
      validation: scored(8),
      args: {
        perDeviceTrainBatchSize: 8,
        maxSteps: 16,
        learningRate: 0.05,
        evalSteps: 16,
        saveSteps: 16,
        loggingSteps: 4,
      },
      storage,
    });
    expect(result.losses[15]).toBeLessThan(result.losses[0] * 0.5);
    const evaluation = await evaluate(model, task, scored(8), 8);
    expect(evaluation.metrics.eval_accuracy).toBeGreaterThan(0.8);
    const log = new TextDecoder().decode(await storage.readFile('trainer_log.jsonl'));
    expect(log).toContain('"accuracy"');
    expect(log).toContain('"eval_accuracy"');
    const saved = new TextDecoder().decode(
      await storage.readFile('checkpoint-16/trainable_parameters.safetensors'),
    );
    expect(saved).toContain('v_head.summary.weight');
    // value_head.safetensors beside the exported files (output folder and checkpoint), read back
    // by loadValueHead with the trained values; a task started from it scores like the trained one.
    const trained = task.valueHead()!;
    for (const folder of ['', 'checkpoint-16/']) {
      const files = new Map([[VALUE_HEAD_FILE, await storage.readFile(`${folder}${VALUE_HEAD_FILE}`)]]);
      const loaded = await loadValueHead(device, memoryFileSource(files, folder || 'output'), {
        hiddenSize: model.hiddenSize,
      });
      expect(Array.from(await loaded.weight.toArray())).toEqual(Array.from(await trained.weight.toArray()));
      expect(Array.from(await loaded.bias.toArray())).toEqual(Array.from(await trained.bias.toArray()));
      loaded.weight.dispose();
      loaded.bias.dispose();
    }
    const files = new Map([[VALUE_HEAD_FILE, await storage.readFile(VALUE_HEAD_FILE)]]);
    await expect(loadValueHead(device, memoryFileSource(files, 'output'), { hiddenSize: 5 })).rejects.toThrow(
      /expected \[1, 5\] and \[1\]/,
    );
    const restored = rewardTask({
      valueHead: await loadValueHead(device, memoryFileSource(files, 'output')),
    });
    restored.parameters(model);
    const again = await evaluate(model, restored, scored(8), 8);
    expect(again.loss).toBeCloseTo(evaluation.loss, 6);
    expect(() =>
      rewardTask({ valueHead: restored.valueHead()! }).parameters(toyModel(device, { hidden: 4 })),
    ).toThrow(/the model needs \[1, 4\] \+ \[1\]/);
    model.dispose();
  });
});

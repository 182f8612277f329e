import { getPeftModel, loraConfig } from '@webtune/peft';
import { clearTape, createDevice, type Device } from '@webtune/tensors';
import { requireFixtures } from '@webtune/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { memoryStorage } from './checkpoint/training-storage.js';
import type { PreferenceRow } from './data/rows.js';
import type { EvalEndEvent, StepEndEvent, TrainerEvent } from './events.js';
import { TRAINER_LOG_FILE } from './log/trainer-log.js';
import { trainablePeftModel } from './model/trainable-model.js';
import { preferenceTask } from './tasks/preference-task.js';
import { DATASETS, loadStories, preferencePairs, STORIES } from './testing/stories.js';
import { evaluate, train } from './trainer.js';

// DPO (LoRA, sigmoid) on the first 64 pairs of dpo_en_demo.json, the reference being the same
// model with its adapter switched off.
describe.skipIf(!requireFixtures(STORIES, DATASETS))('DPO on stories260K', () => {
  let device: Device;
  let pairs: PreferenceRow[];

  beforeAll(async () => {
    device = await createDevice();
    const { model, tokenizer } = await loadStories(device);
    model.dispose();
    pairs = await preferencePairs(tokenizer, { pairs: 64, cutoffLen: 64 });
  });
  afterAll(() => device?.destroy());
  afterEach(() => clearTape());

  const lora = () => loraConfig({ r: 8, lora_alpha: 16, target_modules: 'all-linear' as never });

  it('sigmoid DPO: rewards/accuracies above 0.8 on the 64 pairs and margins growing', async () => {
    expect(pairs.length).toBe(64);
    const { model } = await loadStories(device);
    const peft = await getPeftModel(model, lora(), { seed: 1 });
    const storage = memoryStorage();
    const events: TrainerEvent[] = [];
    const result = await train({
      model: trainablePeftModel(peft),
      task: preferenceTask({ loss: 'sigmoid', beta: 0.1 }),
      train: pairs,
      validation: pairs,
      args: {
        perDeviceTrainBatchSize: 8,
        perDeviceEvalBatchSize: 32,
        numTrainEpochs: 3,
        learningRate: 5e-3,
        lrSchedulerType: 'constant',
        evalSteps: 8,
        loggingSteps: 4,
        seed: 5,
      },
      storage,
      onEvent: (event) => events.push(event),
    });
    const steps = events.filter((e): e is StepEndEvent => e.type === 'step-end');
    // At the first step the adapter is zero: the policy is its own reference, the loss ln 2.
    expect(steps[0].loss).toBeCloseTo(Math.LN2, 5);
    expect(steps[0].metrics['rewards/margins']).toBeCloseTo(0, 6);
    const evals = events.filter((e): e is EvalEndEvent => e.type === 'eval-end');
    const margins = evals.map((e) => e.metrics['eval_rewards/margins']);
    const accuracies = evals.map((e) => e.metrics['eval_rewards/accuracies']);
    console.log(
      'eval margins',
      margins,
      'accuracies',
      accuracies,
      'losses',
      evals.map((e) => e.evalLoss),
    );
    expect(evals.length).toBe(3);
    for (let i = 1; i < margins.length; i++) expect(margins[i]).toBeGreaterThan(margins[i - 1]);
    expect(accuracies[accuracies.length - 1]).toBeGreaterThan(0.8);
    expect(result.losses[result.losses.length - 1]).toBeLessThan(Math.LN2);
    // trainer_log.jsonl rows carry a loss, and the DPO metrics by LLaMA-Factory's names.
    const rows = new TextDecoder()
      .decode(await storage.readFile(TRAINER_LOG_FILE))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    for (const row of rows) {
      expect(typeof row.loss).toBe('number');
      const prefix = row.eval_loss === undefined ? '' : 'eval_';
      for (const name of ['rewards/chosen', 'rewards/rejected', 'rewards/accuracies', 'rewards/margins']) {
        expect(typeof row[`${prefix}${name}`], `${prefix}${name} at step ${row.current_steps}`).toBe(
          'number',
        );
      }
    }
    model.dispose();
  });

  it('a precomputed reference gives the same statistics as the adapter switched off', async () => {
    const sample = pairs.slice(0, 8);
    const results = [];
    for (const reference of ['adapters-disabled', 'precomputed'] as const) {
      const { model } = await loadStories(device);
      const peft = await getPeftModel(model, lora(), { seed: 1 });
      const trainable = trainablePeftModel(peft);
      const task = preferenceTask({ loss: 'sigmoid', beta: 0.1, reference });
      // One step of training moves the adapter away from the reference, then evaluate.
      await train({
        model: trainable,
        task,
        train: sample,
        validation: sample,
        args: { perDeviceTrainBatchSize: 8, maxSteps: 1, learningRate: 1e-2 },
      });
      results.push(await evaluate(trainable, task, sample, 8));
      model.dispose();
    }
    expect(results[0].metrics['eval_rewards/margins']).not.toBe(0);
    expect(results[1].loss).toBeCloseTo(results[0].loss, 5);
    for (const name of ['eval_rewards/chosen', 'eval_rewards/rejected', 'eval_rewards/margins']) {
      expect(results[1].metrics[name]).toBeCloseTo(results[0].metrics[name], 4);
    }
  });
});

import { describe, expect, it } from 'vitest';
import { resolveTrainingArguments } from './training-arguments.js';

describe('training arguments', () => {
  it('fills defaults and names the key that is wrong', () => {
    const resolved = resolveTrainingArguments({});
    expect(resolved).toMatchObject({
      numTrainEpochs: 3,
      perDeviceTrainBatchSize: 1,
      gradientAccumulationSteps: 1,
      learningRate: 5e-5,
      lrSchedulerType: 'linear',
      maxGradNorm: 1,
      seed: 42,
    });
    expect(() => resolveTrainingArguments({ gradientAccumulationSteps: 0 })).toThrow(
      /gradient_accumulation_steps must be a positive integer, got 0/,
    );
    expect(() => resolveTrainingArguments({ lrSchedulerType: 'reduce_lr_on_plateau' as never })).toThrow(
      /lr_scheduler_type/,
    );
    expect(() => resolveTrainingArguments({ adamBeta2: 1 })).toThrow(/adam_beta2/);
    expect(() => resolveTrainingArguments({ seed: -5 })).toThrow(
      /seed must be an integer in \[0, 2\^32 - 1\]/,
    );
    expect(() => resolveTrainingArguments({ numTrainEpochs: 0 })).toThrow(
      /num_train_epochs must be a number > 0 when max_steps is not set/,
    );
    expect(resolveTrainingArguments({ numTrainEpochs: 0, maxSteps: 5 }).maxSteps).toBe(5);
  });

  it('evaluates and saves by steps or by epoch', () => {
    expect(resolveTrainingArguments({}).evalStrategy).toBe('no');
    expect(resolveTrainingArguments({ evalSteps: 3 }).evalStrategy).toBe('steps');
    expect(resolveTrainingArguments({ evalStrategy: 'steps', loggingSteps: 7 }).evalSteps).toBe(7);
    expect(resolveTrainingArguments({ saveStrategy: 'epoch' }).saveStrategy).toBe('epoch');
    // 'steps' without an interval: Transformers' save_steps default.
    expect(resolveTrainingArguments({ saveStrategy: 'steps' }).saveSteps).toBe(500);
    expect(() => resolveTrainingArguments({ evalStrategy: 'best' as never })).toThrow(/eval_strategy/);
    expect(() =>
      resolveTrainingArguments({ lrSchedulerType: 'cosine_with_min_lr', lrSchedulerKwargs: {} }),
    ).toThrow(/min_lr/);
  });
});

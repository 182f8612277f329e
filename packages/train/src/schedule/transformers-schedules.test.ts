import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { learningRateAt, type ScheduleType, scheduleKwargsProblems } from './learning-rate.js';

// Learning rates of Transformers' get_scheduler, step by step (tools/golden/lr-schedules.py).
const golden = JSON.parse(
  readFileSync(new URL('./__fixtures__/lr-schedules.json', import.meta.url), 'utf8'),
) as {
  learningRate: number;
  totalSteps: number;
  cases: {
    name: string;
    type: ScheduleType;
    warmupSteps: number;
    kwargs: Record<string, unknown>;
    rates: number[];
  }[];
};

describe("Transformers' schedulers", () => {
  it.each(golden.cases.map((item) => [item.name, item] as const))('%s matches get_scheduler', (_, item) => {
    expect(scheduleKwargsProblems(item.type, item.kwargs, golden.learningRate)).toEqual([]);
    const rates = item.rates.map((_, step) =>
      learningRateAt(step, {
        type: item.type,
        learningRate: golden.learningRate,
        totalSteps: golden.totalSteps,
        warmupSteps: item.warmupSteps,
        kwargs: item.kwargs,
      }),
    );
    rates.forEach((rate, step) => {
      expect(rate, `step ${step}`).toBeCloseTo(item.rates[step], 15);
    });
  });

  it('names kwargs a schedule does not take, and the ones it needs', () => {
    expect(scheduleKwargsProblems('linear', { num_cycles: 2 }, 1e-3)).toEqual([
      'lr_scheduler_kwargs.num_cycles is not an argument of linear (it takes none)',
    ]);
    expect(scheduleKwargsProblems('cosine_with_min_lr', {}, 1e-3)).toEqual([
      'cosine_with_min_lr needs one of lr_scheduler_kwargs.min_lr or min_lr_rate',
    ]);
    expect(scheduleKwargsProblems('warmup_stable_decay', { decay_type: 'step' }, 1e-3)).toEqual([
      'lr_scheduler_kwargs.decay_type must be linear, cosine or 1-sqrt, got "step"',
      'warmup_stable_decay needs lr_scheduler_kwargs.num_decay_steps',
    ]);
    expect(scheduleKwargsProblems('polynomial', { lr_end: 1 }, 1e-3)).toEqual([
      'polynomial: lr_end (1) must be below learning_rate (0.001)',
    ]);
  });
});

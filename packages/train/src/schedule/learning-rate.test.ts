import { describe, expect, it } from 'vitest';
import { learningRateAt, type ScheduleOptions, warmupStepsOf } from './learning-rate.js';

// Reference values: Transformers' get_{constant,linear,cosine}_schedule_with_warmup lambdas
// (lr * lambda(step)) written out for 10 steps, 2 of warmup, peak 1.
const base: ScheduleOptions = { type: 'linear', learningRate: 1, totalSteps: 10, warmupSteps: 2 };
const at = (options: Partial<ScheduleOptions>) =>
  Array.from({ length: 11 }, (_, step) => learningRateAt(step, { ...base, ...options }));

describe('learning-rate schedules', () => {
  it('linear: warmup from 0, then down to 0 at the last step', () => {
    expect(at({})).toEqual([0, 0.5, 1, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8, 0]);
  });

  it('cosine: half a cosine after warmup', () => {
    const values = at({ type: 'cosine' });
    expect(values.slice(0, 3)).toEqual([0, 0.5, 1]);
    values.slice(2).forEach((value, i) => {
      expect(value).toBeCloseTo(0.5 * (1 + Math.cos((Math.PI * i) / 8)), 12);
    });
    expect(values[10]).toBeCloseTo(0, 12);
  });

  it('constant ignores warmup; constant_with_warmup keeps it', () => {
    expect(at({ type: 'constant' })).toEqual(new Array(11).fill(1));
    expect(at({ type: 'constant_with_warmup' })).toEqual([0, 0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
  });

  it('warmup by ratio rounds up, warmup_steps wins when set', () => {
    expect(warmupStepsOf({ ...base, warmupSteps: 0, warmupRatio: 0.15 })).toBe(2);
    expect(warmupStepsOf({ ...base, warmupSteps: 3, warmupRatio: 0.5 })).toBe(3);
    expect(warmupStepsOf({ ...base, warmupSteps: undefined })).toBe(0);
    expect(learningRateAt(0, { ...base, warmupSteps: 0 })).toBe(1);
  });
});

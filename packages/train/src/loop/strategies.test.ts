import { describe, expect, it } from 'vitest';
import { resolveTrainingArguments } from '../config/training-arguments.js';
import { shouldEvaluate, shouldSave } from './strategies.js';

const at = (step: number, endsEpoch = false, totalSteps = 10) => ({ step, totalSteps, endsEpoch });
const evaluated = (
  args: Parameters<typeof resolveTrainingArguments>[0],
  boundaries: ReturnType<typeof at>[],
) => {
  const resolved = resolveTrainingArguments(args);
  return boundaries.filter((b) => shouldEvaluate(resolved, b)).map((b) => b.step);
};
const saved = (args: Parameters<typeof resolveTrainingArguments>[0], boundaries: ReturnType<typeof at>[]) => {
  const resolved = resolveTrainingArguments(args);
  return boundaries.filter((b) => shouldSave(resolved, b)).map((b) => b.step);
};

// Ten steps, epochs of four: epochs end after steps 4 and 8; step 10 ends the last, partial one.
const RUN = Array.from({ length: 10 }, (_, i) => at(i + 1, (i + 1) % 4 === 0));

describe('eval and save strategies', () => {
  it("default to 'steps' when an interval is given and to 'no' otherwise", () => {
    expect(resolveTrainingArguments({}).evalStrategy).toBe('no');
    expect(resolveTrainingArguments({}).saveStrategy).toBe('no');
    expect(resolveTrainingArguments({ evalSteps: 3, saveSteps: 4 })).toMatchObject({
      evalStrategy: 'steps',
      saveStrategy: 'steps',
    });
    expect(evaluated({}, RUN)).toEqual([]);
    expect(saved({}, RUN)).toEqual([]);
  });

  it("'steps' evaluates every evalSteps and at the last step, saves every saveSteps", () => {
    expect(evaluated({ evalStrategy: 'steps', evalSteps: 3 }, RUN)).toEqual([3, 6, 9, 10]);
    expect(saved({ saveStrategy: 'steps', saveSteps: 3 }, RUN)).toEqual([3, 6, 9]);
  });

  it("'steps' without an interval falls back as Transformers does (loggingSteps, 500)", () => {
    expect(resolveTrainingArguments({ evalStrategy: 'steps', loggingSteps: 4 }).evalSteps).toBe(4);
    expect(resolveTrainingArguments({ saveStrategy: 'steps' }).saveSteps).toBe(500);
  });

  it("'epoch' acts at every epoch end and at the last step, ignoring the step intervals", () => {
    expect(evaluated({ evalStrategy: 'epoch', evalSteps: 3 }, RUN)).toEqual([4, 8, 10]);
    expect(saved({ saveStrategy: 'epoch', saveSteps: 3 }, RUN)).toEqual([4, 8, 10]);
  });

  it("'no' never acts, even with intervals", () => {
    expect(evaluated({ evalStrategy: 'no', evalSteps: 1 }, RUN)).toEqual([]);
    expect(saved({ saveStrategy: 'no', saveSteps: 1 }, RUN)).toEqual([]);
  });

  it('refuses an unknown strategy, naming the key', () => {
    expect(() => resolveTrainingArguments({ evalStrategy: 'sometimes' as never })).toThrow(
      /eval_strategy must be no \| steps \| epoch, got "sometimes"/,
    );
    expect(() => resolveTrainingArguments({ saveStrategy: 'best' as never })).toThrow(
      /save_strategy must be no \| steps \| epoch, got "best"/,
    );
  });
});

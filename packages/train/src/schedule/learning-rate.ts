/** LLaMA-Factory's (Transformers') `lr_scheduler_type` values this trainer implements. */
export type ScheduleType = 'constant' | 'constant_with_warmup' | 'linear' | 'cosine';

export const SCHEDULE_TYPES: readonly ScheduleType[] = [
  'constant',
  'constant_with_warmup',
  'linear',
  'cosine',
];

export interface ScheduleOptions {
  type: ScheduleType;
  /** Peak learning rate. */
  learningRate: number;
  /** Optimizer steps of the whole run. */
  totalSteps: number;
  /** Warmup steps; when 0 or absent, `warmupRatio` * totalSteps (rounded up) is used. */
  warmupSteps?: number;
  /** Share of totalSteps spent warming up (Transformers' warmup_ratio). */
  warmupRatio?: number;
  /** Cosine cycles over the decay (default 0.5: one half cosine down to 0). */
  cosineCycles?: number;
}

/** Warmup steps as Transformers resolves them: warmup_steps if > 0, else ceil(ratio * total). */
export function warmupStepsOf(options: ScheduleOptions): number {
  if (options.warmupSteps && options.warmupSteps > 0) return options.warmupSteps;
  return Math.ceil((options.warmupRatio ?? 0) * options.totalSteps);
}

/**
 * The learning rate of optimizer step `step` (0 for the first), as Transformers' schedulers give
 * it: a linear warmup from 0 over the warmup steps, then constant, linear decay to 0, or a cosine
 * decay to 0 at totalSteps. A pure function of the step: resuming needs no scheduler state.
 * ('constant' ignores warmup, as Transformers' does.)
 */
export function learningRateAt(step: number, options: ScheduleOptions): number {
  const { type, learningRate, totalSteps } = options;
  if (type === 'constant') return learningRate;
  const warmup = warmupStepsOf(options);
  if (step < warmup) return (learningRate * step) / Math.max(1, warmup);
  if (type === 'constant_with_warmup') return learningRate;
  const progress = (step - warmup) / Math.max(1, totalSteps - warmup);
  if (type === 'linear') return learningRate * Math.max(0, 1 - progress);
  const cycles = options.cosineCycles ?? 0.5;
  return learningRate * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 2 * cycles * progress)));
}

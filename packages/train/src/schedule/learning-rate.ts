/** LLaMA-Factory's (Transformers') `lr_scheduler_type` values this trainer implements. */
export type ScheduleType =
  | 'constant'
  | 'constant_with_warmup'
  | 'linear'
  | 'cosine'
  | 'cosine_with_restarts'
  | 'polynomial'
  | 'inverse_sqrt'
  | 'cosine_with_min_lr'
  | 'warmup_stable_decay';

export const SCHEDULE_TYPES: readonly ScheduleType[] = [
  'constant',
  'constant_with_warmup',
  'linear',
  'cosine',
  'cosine_with_restarts',
  'polynomial',
  'inverse_sqrt',
  'cosine_with_min_lr',
  'warmup_stable_decay',
];

/** The `lr_scheduler_kwargs` each schedule takes (Transformers' argument names). */
export const SCHEDULE_KWARGS: Readonly<Record<ScheduleType, readonly string[]>> = {
  constant: [],
  constant_with_warmup: [],
  linear: [],
  cosine: ['num_cycles'],
  cosine_with_restarts: ['num_cycles'],
  polynomial: ['lr_end', 'power'],
  inverse_sqrt: ['timescale'],
  cosine_with_min_lr: ['num_cycles', 'min_lr', 'min_lr_rate'],
  warmup_stable_decay: [
    'num_decay_steps',
    'num_stable_steps',
    'warmup_type',
    'decay_type',
    'min_lr_ratio',
    'num_cycles',
  ],
};

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
  /** The schedule's own arguments (Transformers' `lr_scheduler_kwargs`); see SCHEDULE_KWARGS. */
  kwargs?: Readonly<Record<string, unknown>> | null;
}

/** Warmup steps as Transformers resolves them: warmup_steps if > 0, else ceil(ratio * total). */
export function warmupStepsOf(options: ScheduleOptions): number {
  if (options.warmupSteps && options.warmupSteps > 0) return options.warmupSteps;
  return Math.ceil((options.warmupRatio ?? 0) * options.totalSteps);
}

/** Problems of a schedule's kwargs (unknown names, wrong types, missing values), one line each. */
export function scheduleKwargsProblems(
  type: ScheduleType,
  kwargs: Readonly<Record<string, unknown>> | null | undefined,
  learningRate: number,
): string[] {
  const problems: string[] = [];
  const known = SCHEDULE_KWARGS[type];
  for (const [name, value] of Object.entries(kwargs ?? {})) {
    if (!known.includes(name)) {
      problems.push(
        `lr_scheduler_kwargs.${name} is not an argument of ${type}${known.length > 0 ? ` (it takes ${known.join(', ')})` : ' (it takes none)'}`,
      );
    } else if (/_type$/.test(name)) {
      if (!['linear', 'cosine', '1-sqrt'].includes(String(value)))
        problems.push(
          `lr_scheduler_kwargs.${name} must be linear, cosine or 1-sqrt, got ${JSON.stringify(value)}`,
        );
    } else if (typeof value !== 'number' || !Number.isFinite(value)) {
      problems.push(`lr_scheduler_kwargs.${name} must be a number, got ${JSON.stringify(value)}`);
    }
  }
  const given = kwargs ?? {};
  if (type === 'cosine_with_min_lr') {
    if ((given.min_lr === undefined) === (given.min_lr_rate === undefined))
      problems.push('cosine_with_min_lr needs one of lr_scheduler_kwargs.min_lr or min_lr_rate');
  }
  if (type === 'warmup_stable_decay' && given.num_decay_steps === undefined)
    problems.push('warmup_stable_decay needs lr_scheduler_kwargs.num_decay_steps');
  if (type === 'polynomial' && !(learningRate > Number(given.lr_end ?? 1e-7)))
    problems.push(
      `polynomial: lr_end (${given.lr_end ?? 1e-7}) must be below learning_rate (${learningRate})`,
    );
  return problems;
}

/** The warmup or decay shape of warmup_stable_decay at `progress` in [0, 1]. */
function shape(kind: string, progress: number, rising: boolean, cycles: number): number {
  if (kind === 'linear') return rising ? progress : 1 - progress;
  if (kind === 'cosine')
    return rising
      ? 0.5 * (1 - Math.cos(Math.PI * progress))
      : 0.5 * (1 + Math.cos(Math.PI * cycles * 2 * progress));
  return rising ? 1 - Math.sqrt(1 - progress) : 1 - Math.sqrt(progress);
}

/**
 * The learning rate of optimizer step `step` (0 for the first), as Transformers' schedulers give
 * it: each is the peak learning rate times a factor of the step, warmup steps and total steps
 * (and the kwargs). A pure function of the step: resuming needs no scheduler state. ('constant'
 * ignores warmup, as Transformers' does.)
 */
export function learningRateAt(step: number, options: ScheduleOptions): number {
  return options.learningRate * factorAt(step, options);
}

function factorAt(step: number, options: ScheduleOptions): number {
  const { type, totalSteps } = options;
  const kwargs = options.kwargs ?? {};
  const number = (name: string, fallback: number) => (kwargs[name] as number | undefined) ?? fallback;
  if (type === 'constant') return 1;
  const warmup = warmupStepsOf(options);
  if (type === 'warmup_stable_decay') {
    const minRatio = number('min_lr_ratio', 0);
    const decay = number('num_decay_steps', 0);
    const stable = number('num_stable_steps', totalSteps - warmup - decay);
    const cycles = number('num_cycles', 0.5);
    if (step < warmup) {
      const factor = shape(String(kwargs.warmup_type ?? 'linear'), step / Math.max(1, warmup), true, cycles);
      return Math.max(0, factor * (1 - minRatio) + minRatio);
    }
    if (step < warmup + stable) return 1;
    if (step < warmup + stable + decay) {
      const progress = (step - warmup - stable) / Math.max(1, decay);
      const factor = shape(String(kwargs.decay_type ?? 'cosine'), progress, false, cycles);
      return Math.max(0, factor * (1 - minRatio) + minRatio);
    }
    return minRatio;
  }
  if (step < warmup) return step / Math.max(1, warmup);
  switch (type) {
    case 'constant_with_warmup':
      return 1;
    case 'inverse_sqrt': {
      const timescale = number('timescale', warmup || 10_000);
      return 1 / Math.sqrt((step + timescale - warmup) / timescale);
    }
    case 'polynomial': {
      const lrEnd = number('lr_end', 1e-7);
      const power = number('power', 1);
      const peak = options.learningRate;
      if (step > totalSteps) return lrEnd / peak;
      const remaining = 1 - (step - warmup) / (totalSteps - warmup);
      return ((peak - lrEnd) * remaining ** power + lrEnd) / peak;
    }
    default:
      break;
  }
  const progress = (step - warmup) / Math.max(1, totalSteps - warmup);
  switch (type) {
    case 'linear':
      return Math.max(0, 1 - progress);
    case 'cosine_with_restarts': {
      if (progress >= 1) return 0;
      const cycles = number('num_cycles', 1);
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * ((cycles * progress) % 1))));
    }
    case 'cosine_with_min_lr': {
      const cycles = number('num_cycles', 0.5);
      const minRate =
        kwargs.min_lr !== undefined
          ? (kwargs.min_lr as number) / options.learningRate
          : number('min_lr_rate', 0);
      const factor = 0.5 * (1 + Math.cos(Math.PI * cycles * 2 * progress));
      return Math.max(0, factor * (1 - minRate) + minRate);
    }
    default: {
      const cycles = number('num_cycles', options.cosineCycles ?? 0.5);
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 2 * cycles * progress)));
    }
  }
}

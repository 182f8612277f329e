import { SCHEDULE_TYPES, type ScheduleType, scheduleKwargsProblems } from '../schedule/learning-rate.js';

/** When to evaluate or save: never, every N steps, or at the end of every epoch (Transformers' IntervalStrategy). */
export type IntervalStrategy = 'no' | 'steps' | 'epoch';

export const INTERVAL_STRATEGIES: readonly IntervalStrategy[] = ['no', 'steps', 'epoch'];

/**
 * The trainer's settings. Each field is LLaMA-Factory's (Transformers') key in camelCase; the
 * planner (`planRun`) makes them from a LLaMA-Factory config with its defaults. Arithmetic worth knowing:
 * rows per optimizer step = perDeviceTrainBatchSize x gradientAccumulationSteps, steps per epoch =
 * ceil(ceil(rows / perDeviceTrainBatchSize) / gradientAccumulationSteps), total steps = maxSteps
 * when > 0, else ceil(numTrainEpochs x steps per epoch).
 */
export interface TrainingArguments {
  /** num_train_epochs (default 3; fractions stop part-way through an epoch). */
  numTrainEpochs?: number;
  /** max_steps: optimizer steps; > 0 overrides numTrainEpochs (default -1). */
  maxSteps?: number;
  /** per_device_train_batch_size: rows per micro-batch (default 1). */
  perDeviceTrainBatchSize?: number;
  /** per_device_eval_batch_size (default: the train micro-batch size). */
  perDeviceEvalBatchSize?: number;
  /** gradient_accumulation_steps: micro-batches per optimizer step (default 1). */
  gradientAccumulationSteps?: number;
  /** learning_rate (default 5e-5). */
  learningRate?: number;
  /** weight_decay (default 0), never applied to norms and biases. */
  weightDecay?: number;
  adamBeta1?: number;
  adamBeta2?: number;
  adamEpsilon?: number;
  /** lr_scheduler_type (default 'linear'). */
  lrSchedulerType?: ScheduleType;
  /** lr_scheduler_kwargs: the schedule's own arguments (num_cycles, power, lr_end, min_lr, ...). */
  lrSchedulerKwargs?: Record<string, unknown> | null;
  /** warmup_ratio (default 0). */
  warmupRatio?: number;
  /** warmup_steps; wins over warmupRatio when > 0 (default 0). */
  warmupSteps?: number;
  /**
   * loraplus_lr_ratio: LoRA+ (lora_B and 1-D parameters learn at this multiple of learningRate);
   * null: one learning rate for all (default).
   */
  loraplusLrRatio?: number | null;
  /** loraplus_lr_embedding: LoRA+'s learning rate of lora_embedding_B (default 1e-6). */
  loraplusLrEmbedding?: number;
  /** max_grad_norm: clip the global gradient norm to this; 0 turns clipping off (default 1). */
  maxGradNorm?: number;
  /** gradient_checkpointing: recompute each decoder layer in backward (default false). */
  gradientCheckpointing?: boolean;
  /**
   * Storage of the layer inputs kept under gradient checkpointing: 'f16' halves them where the
   * adapter has shader-f16 (elsewhere they stay f32); bf16 / fp16 / pure_bf16 ask for it.
   * Default 'f32'.
   */
  checkpointDtype?: 'f32' | 'f16';
  /**
   * Storage of the activations each decoder layer keeps for backward without checkpointing: 'f16'
   * stores those the rule of docs/architecture/precision.md allows in half precision where the
   * adapter has shader-f16 (elsewhere, and under checkpointing, they stay f32); bf16 / fp16 /
   * pure_bf16 ask for it. Compute stays f32. Default 'f32'.
   */
  activationDtype?: 'f32' | 'f16';
  /** seed: data order, dropout masks (default 42). */
  seed?: number;
  /** Shuffle rows each epoch (default true). */
  shuffle?: boolean;
  /** logging_steps: a trainer_log.jsonl row every N steps (default 5; events come every step). */
  loggingSteps?: number;
  /**
   * eval_strategy: evaluate on the validation rows never ('no'), every evalSteps steps and at the
   * last step ('steps'), or at the end of every epoch and at the last step ('epoch'). Default:
   * 'steps' when evalSteps is set, else 'no'.
   */
  evalStrategy?: IntervalStrategy;
  /** eval_steps: the interval of evalStrategy 'steps' (default: loggingSteps, as Transformers). */
  evalSteps?: number | null;
  /**
   * save_strategy: a checkpoint never ('no', besides stop requests), every saveSteps steps
   * ('steps'), or at the end of every epoch ('epoch'). Default: 'steps' when saveSteps is set, else 'no'.
   */
  saveStrategy?: IntervalStrategy;
  /** save_steps: the interval of saveStrategy 'steps' (default 500, as Transformers, when saveStrategy is 'steps'). */
  saveSteps?: number | null;
  /** save_total_limit: keep only the last K checkpoints (default: all). */
  saveTotalLimit?: number | null;
  /** resume_from_checkpoint: true for the newest in the output folder, or a folder name. */
  resumeFromCheckpoint?: boolean | string | null;
  /**
   * model_name_or_path: the base model of the run, written as base_model_name_or_path into the
   * adapter files the trainer exports (default: the adapter config's own value).
   */
  modelNameOrPath?: string | null;
}

export type ResolvedTrainingArguments = Required<TrainingArguments>;

/** Fills defaults and checks every value, naming the key that is wrong. */
export function resolveTrainingArguments(args: TrainingArguments): ResolvedTrainingArguments {
  const microBatch = args.perDeviceTrainBatchSize ?? 1;
  const resolved: ResolvedTrainingArguments = {
    numTrainEpochs: args.numTrainEpochs ?? 3,
    maxSteps: args.maxSteps ?? -1,
    perDeviceTrainBatchSize: microBatch,
    perDeviceEvalBatchSize: args.perDeviceEvalBatchSize ?? microBatch,
    gradientAccumulationSteps: args.gradientAccumulationSteps ?? 1,
    learningRate: args.learningRate ?? 5e-5,
    weightDecay: args.weightDecay ?? 0,
    adamBeta1: args.adamBeta1 ?? 0.9,
    adamBeta2: args.adamBeta2 ?? 0.999,
    adamEpsilon: args.adamEpsilon ?? 1e-8,
    lrSchedulerType: args.lrSchedulerType ?? 'linear',
    lrSchedulerKwargs: args.lrSchedulerKwargs ?? null,
    warmupRatio: args.warmupRatio ?? 0,
    warmupSteps: args.warmupSteps ?? 0,
    maxGradNorm: args.maxGradNorm ?? 1,
    loraplusLrRatio: args.loraplusLrRatio ?? null,
    loraplusLrEmbedding: args.loraplusLrEmbedding ?? 1e-6,
    gradientCheckpointing: args.gradientCheckpointing ?? false,
    checkpointDtype: args.checkpointDtype ?? 'f32',
    activationDtype: args.activationDtype ?? 'f32',
    seed: args.seed ?? 42,
    shuffle: args.shuffle ?? true,
    loggingSteps: args.loggingSteps ?? 5,
    evalStrategy: args.evalStrategy ?? (args.evalSteps != null ? 'steps' : 'no'),
    evalSteps: args.evalSteps ?? null,
    saveStrategy: args.saveStrategy ?? (args.saveSteps != null ? 'steps' : 'no'),
    saveSteps: args.saveSteps ?? null,
    saveTotalLimit: args.saveTotalLimit ?? null,
    resumeFromCheckpoint: args.resumeFromCheckpoint ?? null,
    modelNameOrPath: args.modelNameOrPath ?? null,
  };
  const positiveIntegers = [
    'perDeviceTrainBatchSize',
    'perDeviceEvalBatchSize',
    'gradientAccumulationSteps',
    'loggingSteps',
  ] as const;
  for (const key of positiveIntegers) {
    if (!Number.isInteger(resolved[key]) || resolved[key] < 1) fail(key, 'a positive integer', resolved[key]);
  }
  for (const key of ['evalSteps', 'saveSteps', 'saveTotalLimit'] as const) {
    const value = resolved[key];
    if (value !== null && (!Number.isInteger(value) || value < 1))
      fail(key, 'a positive integer or null', value);
  }
  for (const key of ['evalStrategy', 'saveStrategy'] as const) {
    if (!INTERVAL_STRATEGIES.includes(resolved[key]))
      fail(key, INTERVAL_STRATEGIES.join(' | '), resolved[key]);
  }
  // Transformers' fallbacks: eval_steps defaults to logging_steps, save_steps to 500.
  if (resolved.evalStrategy === 'steps' && resolved.evalSteps === null)
    resolved.evalSteps = resolved.loggingSteps;
  if (resolved.saveStrategy === 'steps' && resolved.saveSteps === null) resolved.saveSteps = 500;
  if (!Number.isInteger(resolved.maxSteps)) fail('maxSteps', 'an integer', resolved.maxSteps);
  if (resolved.maxSteps <= 0 && !(resolved.numTrainEpochs > 0)) {
    fail('numTrainEpochs', 'a number > 0 when maxSteps is not set', resolved.numTrainEpochs);
  }
  if (!(resolved.learningRate >= 0)) fail('learningRate', 'a number >= 0', resolved.learningRate);
  if (!(resolved.weightDecay >= 0)) fail('weightDecay', 'a number >= 0', resolved.weightDecay);
  for (const key of ['adamBeta1', 'adamBeta2'] as const) {
    if (!(resolved[key] >= 0 && resolved[key] < 1)) fail(key, 'a number in [0, 1)', resolved[key]);
  }
  if (!(resolved.adamEpsilon > 0)) fail('adamEpsilon', 'a number > 0', resolved.adamEpsilon);
  if (!SCHEDULE_TYPES.includes(resolved.lrSchedulerType)) {
    fail('lrSchedulerType', SCHEDULE_TYPES.join(' | '), resolved.lrSchedulerType);
  }
  for (const key of ['evalStrategy', 'saveStrategy'] as const) {
    if (!['no', 'steps', 'epoch'].includes(resolved[key]))
      fail(key, "'no' | 'steps' | 'epoch'", resolved[key]);
  }
  if (resolved.saveStrategy === 'steps' && resolved.saveSteps === null)
    fail('saveSteps', "a positive integer when saveStrategy is 'steps'", null);
  const kwargsProblems = scheduleKwargsProblems(
    resolved.lrSchedulerType,
    resolved.lrSchedulerKwargs,
    resolved.learningRate,
  );
  if (kwargsProblems.length > 0)
    fail('lrSchedulerKwargs', kwargsProblems.join('; '), resolved.lrSchedulerKwargs);
  if (!(resolved.warmupRatio >= 0 && resolved.warmupRatio <= 1))
    fail('warmupRatio', 'a number in [0, 1]', resolved.warmupRatio);
  if (!(Number.isInteger(resolved.warmupSteps) && resolved.warmupSteps >= 0)) {
    fail('warmupSteps', 'an integer >= 0', resolved.warmupSteps);
  }
  if (resolved.loraplusLrRatio !== null && !(resolved.loraplusLrRatio > 0))
    fail('loraplusLrRatio', 'a number > 0 or null', resolved.loraplusLrRatio);
  if (!(resolved.loraplusLrEmbedding >= 0))
    fail('loraplusLrEmbedding', 'a number >= 0', resolved.loraplusLrEmbedding);
  if (!(resolved.maxGradNorm >= 0))
    fail('maxGradNorm', 'a number >= 0 (0: no clipping)', resolved.maxGradNorm);
  if (!Number.isInteger(resolved.seed) || resolved.seed < 0 || resolved.seed > 2 ** 32 - 1)
    fail('seed', 'an integer in [0, 2^32 - 1]', resolved.seed);
  if (resolved.modelNameOrPath !== null && typeof resolved.modelNameOrPath !== 'string')
    fail('modelNameOrPath', 'a string or null', resolved.modelNameOrPath);
  return resolved;
}

/** Messages name a key as LLaMA-Factory and Transformers spell it (learning_rate, not learningRate). */
function configKeyOf(key: string): string {
  return key.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

function fail(key: string, expected: string, got: unknown): never {
  const words = expected.replace(/\b(maxSteps|saveStrategy|evalStrategy)\b/g, configKeyOf);
  throw new Error(`training arguments: ${configKeyOf(key)} must be ${words}, got ${JSON.stringify(got)}`);
}

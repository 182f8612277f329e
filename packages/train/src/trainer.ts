/*
 * The training loop, in one file, read top to bottom: plan the steps, restore a checkpoint,
 * then for each optimizer step: schedule the learning rate, run and differentiate the
 * micro-batches, clip, read the loss back (the one sync point), step, zero, log, evaluate,
 * checkpoint. Stages (SFT, DPO, RM) differ only in their task (tasks/); everything else is here.
 */
import type { ModelFileSink } from '@webtune/nn';
import {
  add,
  backward,
  clipByGlobalNorm,
  concat,
  globalNorm,
  gradOf,
  noGrad,
  requiresGrad,
  type Tensor,
  zeroGrad,
} from '@webtune/tensors';
import {
  latestCheckpoint,
  loadCheckpoint,
  removeUnfinishedSaves,
  restoreTensors,
  saveCheckpoint,
  type TrainerState,
} from './checkpoint/checkpoint.js';
import type { TrainingStorage } from './checkpoint/training-storage.js';
import { resolveTrainingArguments, type TrainingArguments } from './config/training-arguments.js';
import { epochOrder, microBatchesOf } from './data/epoch-order.js';
import { type Diagnostic, LossDiagnostics } from './diagnostics/loss-diagnostics.js';
import { firstNonFinite } from './diagnostics/non-finite.js';
import type { MemoryFigures, TrainEndReason, TrainerEvent } from './events.js';
import { formatDuration, round, TrainerLog, type TrainerLogRow } from './log/trainer-log.js';
import type { TrainableModel } from './model/trainable-model.js';
import { AdamW } from './optimizer/adamw.js';
import { learningRateAt } from './schedule/learning-rate.js';
import type { TaskBatch, TrainingTask } from './tasks/training-task.js';

export interface TrainOptions<Row> {
  model: TrainableModel;
  /** The stage: supervisedTask(), preferenceTask(), rewardTask(). */
  task: TrainingTask<Row>;
  train: readonly Row[];
  /** Rows for evaluation every `evalSteps` (LLaMA-Factory's val_size split). */
  validation?: readonly Row[];
  args?: TrainingArguments;
  /** The output folder: checkpoints and trainer_log.jsonl. Null: neither is written. */
  storage?: TrainingStorage | null;
  /** Receives every event as it happens. */
  onEvent?: (event: TrainerEvent) => void;
  /** Stops at the next step boundary, saving a checkpoint to resume from. */
  signal?: AbortSignal;
}

export interface TrainResult {
  reason: TrainEndReason;
  /** Optimizer steps done (the checkpoint step when resumed included). */
  steps: number;
  /** Epochs done: steps / steps per epoch (LLaMA-Factory's `epoch` in all_results.json). */
  epoch: number;
  /** The train loss of every step this call ran, in order. */
  losses: number[];
  /** Eval losses by step. */
  evalLosses: { step: number; loss: number }[];
  diagnostics: Diagnostic[];
  lastCheckpoint: string | null;
}

/** Trains `model` on `train` with `task`; see TrainingArguments for every setting. */
export async function train<Row>(options: TrainOptions<Row>): Promise<TrainResult> {
  const { model, task } = options;
  const args = resolveTrainingArguments(options.args ?? {});
  const storage = options.storage ?? null;
  const device = model.device;
  const rows = options.train;
  const validation = options.validation ?? [];
  const emit = (event: TrainerEvent) => options.onEvent?.(event);
  if (rows.length === 0) throw new Error('train: no training rows');

  // ---- The plan: how many steps, and the data order (a pure function of seed and epoch).
  const microBatchSize = args.perDeviceTrainBatchSize;
  const accumulation = args.gradientAccumulationSteps;
  const microBatchesPerEpoch = Math.ceil(rows.length / microBatchSize);
  const stepsPerEpoch = Math.ceil(microBatchesPerEpoch / accumulation);
  const totalSteps = args.maxSteps > 0 ? args.maxSteps : Math.ceil(args.numTrainEpochs * stepsPerEpoch);
  const plan = { seed: args.seed, trainRows: rows.length, microBatchSize, accumulation, totalSteps };
  const epochBatches = new Map<number, number[][]>();
  const batchesOf = (epoch: number) => {
    if (!epochBatches.has(epoch)) {
      epochBatches.clear(); // one epoch's order at a time
      epochBatches.set(
        epoch,
        microBatchesOf(epochOrder(rows.length, args.seed, epoch, args.shuffle), microBatchSize),
      );
    }
    return epochBatches.get(epoch)!;
  };
  const schedule = {
    type: args.lrSchedulerType,
    learningRate: args.learningRate,
    totalSteps,
    warmupSteps: args.warmupSteps,
    warmupRatio: args.warmupRatio,
    kwargs: args.lrSchedulerKwargs,
  };
  // eval_strategy / save_strategy 'epoch': at the end of each epoch, i.e. every stepsPerEpoch steps.
  const everyOf = (strategy: 'no' | 'steps' | 'epoch', steps: number | null) =>
    strategy === 'epoch' ? stepsPerEpoch : strategy === 'steps' ? steps : null;
  const evalEvery = everyOf(args.evalStrategy, args.evalSteps);
  const saveEvery = everyOf(args.saveStrategy, args.saveSteps);

  // ---- Parameters and optimizer. The task may train parameters of its own (a value head).
  const parameters = [...model.trainableParameters(), ...task.parameters(model)];
  if (parameters.length === 0) throw new Error('train: the model has no trainable parameters');
  for (const [, parameter] of parameters) requiresGrad(parameter);
  // Before any restore: a precomputed DPO reference must see the starting weights.
  await task.prepare?.(model, { train: rows, validation }, microBatchSize);
  const optimizer = new AdamW(device, parameters, {
    beta1: args.adamBeta1,
    beta2: args.adamBeta2,
    eps: args.adamEpsilon,
    weightDecay: args.weightDecay,
  });
  const diagnostics = new LossDiagnostics({ totalSteps });
  const log = new TrainerLog(storage);

  // ---- Resume: parameters, optimizer moments, data position, log, diagnostics.
  let state: TrainerState = {
    format: 'webtune-trainer-state',
    version: 1,
    globalStep: 0,
    epoch: 0,
    position: { epoch: 0, microBatch: 0 },
    plan,
    logRows: 0,
    elapsedMs: 0,
    diagnostics: null,
  };
  let resumedFrom: string | null = null;
  let lastCheckpoint: string | null = null;
  if (storage) await removeUnfinishedSaves(storage);
  if (args.resumeFromCheckpoint) {
    if (!storage) throw new Error('train: resumeFromCheckpoint needs a storage');
    const path =
      typeof args.resumeFromCheckpoint === 'string'
        ? args.resumeFromCheckpoint
        : await latestCheckpoint(storage);
    if (path) {
      const loaded = await loadCheckpoint(storage, path);
      checkSamePlan(loaded.state.plan, plan, path);
      restoreTensors(parameters, loaded.parameters, `resume from ${path}`);
      restoreTensors(optimizer.stateTensors(), loaded.optimizer, `resume from ${path}`);
      optimizer.stepCount = loaded.state.globalStep;
      state = loaded.state;
      diagnostics.restore(state.diagnostics);
      await log.truncate(state.logRows);
      resumedFrom = lastCheckpoint = path;
    }
  }
  if (!resumedFrom) await log.reset();

  emit({
    type: 'train-start',
    totalSteps,
    stepsPerEpoch,
    trainRows: rows.length,
    validationRows: validation.length,
    trainableParameters: parameters.reduce((total, [, t]) => total + t.size, 0),
    resumedFrom,
    firstStep: state.globalStep + 1,
  });

  // Elapsed time counts the runs before a resume too (the log's elapsed_time); the remaining-time
  // estimate divides only this run's own time by this run's own steps.
  const runStarted = performance.now();
  const started = runStarted - state.elapsedMs;
  const elapsed = () => performance.now() - started;
  const losses: number[] = [];
  const evalLosses: { step: number; loss: number }[] = [];
  const raised: Diagnostic[] = [];
  const interval = { loss: 0, steps: 0, tokens: 0, ms: 0, metrics: new Map<string, number>() };
  let lastLoss = Number.NaN;
  let reason: TrainEndReason = 'completed';
  const raise = (found: Diagnostic[]) => {
    for (const diagnostic of found) {
      raised.push(diagnostic);
      emit({ type: 'diagnostic-raised', diagnostic });
    }
  };
  const memory = (): MemoryFigures => {
    const { liveBytes, peakBytes } = device.memory();
    return { liveBytes, peakBytes };
  };
  // The files that make a folder usable on its own: the model's (PEFT's adapter, whose config
  // names the base model of this run) and the task's (a reward model's value head).
  const exportFiles =
    model.exportFiles || task.exportFiles
      ? async (sink: ModelFileSink) => [
          ...((await model.exportFiles?.(sink, {
            baseModelNameOrPath: args.modelNameOrPath ?? undefined,
          })) ?? []),
          ...((await task.exportFiles?.(sink)) ?? []),
        ]
      : undefined;
  const checkpointNow = async () => {
    if (!storage) return;
    const began = performance.now();
    state.elapsedMs = elapsed();
    state.logRows = log.rows;
    state.diagnostics = diagnostics.snapshot();
    const saved = await saveCheckpoint(
      storage,
      {
        state,
        parameters,
        optimizer: optimizer.stateTensors(),
        exportFiles,
      },
      args.saveTotalLimit,
    );
    lastCheckpoint = saved.path;
    emit({
      type: 'checkpoint-saved',
      step: state.globalStep,
      ...saved,
      durationMs: performance.now() - began,
    });
  };

  while (state.globalStep < totalSteps) {
    if (options.signal?.aborted) {
      reason = 'stopped';
      if (lastCheckpoint !== `checkpoint-${state.globalStep}`) await checkpointNow();
      break;
    }
    const stepStarted = performance.now();
    const step = state.globalStep + 1;
    const learningRate = learningRateAt(state.globalStep, schedule);

    // The micro-batches of this step: the next `accumulation` of the epoch (fewer at its end).
    if (state.position.microBatch >= batchesOf(state.position.epoch).length) {
      state.position = { epoch: state.position.epoch + 1, microBatch: 0 };
    }
    const epochBatchList = batchesOf(state.position.epoch);
    const microBatches = epochBatchList.slice(
      state.position.microBatch,
      state.position.microBatch + accumulation,
    );
    const batches: TaskBatch<Row>[] = microBatches.map((ids) => ({ rows: ids.map((i) => rows[i]), ids }));
    // Every micro-batch's loss is divided by the units (trained tokens, pairs) of the whole
    // step, so the accumulated gradient is that of one batch of all of them.
    const units = batches.reduce(
      (total, batch) => total + batch.rows.reduce((s, row) => s + task.unitsOf(row), 0),
      0,
    );
    const normalizer = units > 0 ? units : 1;
    const tokens = batches.reduce(
      (total, batch) => total + batch.rows.reduce((s, row) => s + task.tokensOf(row), 0),
      0,
    );

    // Forward and backward, one micro-batch at a time: each one's activations are freed by its
    // scope once backward has consumed them; gradients accumulate on the parameters.
    let stepLoss: Tensor | null = null;
    const statistics: Tensor[] = [];
    batches.forEach((batch, micro) => {
      model.setTraining?.(true, dropoutSeed(args.seed, state.globalStep, micro));
      device.scope(() => {
        const result = task.forward(model, batch, normalizer, {
          gradientCheckpointing: args.gradientCheckpointing,
        });
        backward(result.loss);
        const total: Tensor = stepLoss ? add(stepLoss, result.loss) : add(result.loss, 0);
        stepLoss?.dispose();
        stepLoss = total.keep();
        if (result.statistics) statistics.push(result.statistics.keep());
      });
    });

    // Clip by the global norm (computed on the device), then read the loss, the norm and the
    // metrics' statistics back in one transfer: the step's only sync point.
    const gradients = new Map<Tensor, Tensor>();
    for (const [, parameter] of parameters) {
      const grad = gradOf(parameter);
      if (grad) gradients.set(parameter, grad);
    }
    const gradientList = [...gradients.values()];
    const readback = device.scope(() => {
      const norm =
        gradientList.length === 0
          ? device.fromArray([0], [], 'f32')
          : args.maxGradNorm > 0
            ? clipByGlobalNorm(gradientList, args.maxGradNorm)
            : globalNorm(gradientList);
      const parts = [
        stepLoss!.reshape([1]),
        norm.reshape([1]),
        ...statistics.map((s) => s.reshape([s.size])),
      ];
      return concat(parts, 0).keep();
    });
    const values = (await readback.toArray()) as Float32Array;
    const sizes = statistics.map((s) => s.size);
    readback.dispose();
    (stepLoss as Tensor | null)?.dispose();
    for (const s of statistics) s.dispose();
    const [loss, gradNorm] = [values[0], values[1]];

    // NaN or infinity: stop before the update, name the tensor, keep the last good checkpoint.
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      const where = !Number.isFinite(loss)
        ? 'loss'
        : ((await firstNonFinite(
            parameters
              .filter(([, p]) => gradients.has(p))
              .map(([name, p]) => [`${name}.grad`, gradients.get(p)!]),
          )) ?? 'gradient norm');
      const diagnostic = diagnostics.nonFinite(step, where, Number.isFinite(loss) ? gradNorm : loss);
      raise([diagnostic]);
      // The log says so too (JSON has no NaN: the row's loss is null).
      await log.append({
        current_steps: step,
        total_steps: totalSteps,
        loss: Number.NaN,
        lr: learningRate,
        epoch: round(state.epoch, 2),
        percentage: round((state.globalStep / totalSteps) * 100, 2),
        elapsed_time: formatDuration(elapsed()),
        remaining_time: formatDuration(0),
        diagnostics: [{ kind: diagnostic.kind, message: diagnostic.message, advice: diagnostic.advice }],
      });
      zeroGrad(parameters.map(([, p]) => p));
      reason = 'non-finite';
      break;
    }

    optimizer.step(gradients, learningRate);
    zeroGrad(parameters.map(([, p]) => p));
    state.globalStep = step;
    state.position = {
      epoch: state.position.epoch,
      microBatch: state.position.microBatch + microBatches.length,
    };
    state.epoch = step / stepsPerEpoch;
    losses.push(loss);
    lastLoss = loss;

    // Metrics of this step from the read-back statistics.
    let metrics: Record<string, number> = {};
    if (task.metrics && statistics.length > 0) {
      metrics = computeMetrics(task, values.subarray(2), sizes, '');
    }
    const stepMs = performance.now() - stepStarted;
    const remainingMs = ((performance.now() - runStarted) / Math.max(1, losses.length)) * (totalSteps - step);
    emit({
      type: 'step-end',
      step,
      totalSteps,
      epoch: state.epoch,
      loss,
      learningRate,
      gradNorm,
      tokens,
      tokensPerSecond: tokens / (stepMs / 1000),
      stepMs,
      elapsedMs: elapsed(),
      remainingMs,
      memory: memory(),
      metrics,
    });
    const found = diagnostics.observeTrain(step, loss);
    raise(found);

    // trainer_log.jsonl: the mean over the steps since the last row, as Transformers logs it.
    interval.loss += loss;
    interval.steps++;
    interval.tokens += tokens;
    interval.ms += stepMs;
    for (const [name, value] of Object.entries(metrics)) {
      interval.metrics.set(name, (interval.metrics.get(name) ?? 0) + value);
    }
    const logRow = (extra: Partial<TrainerLogRow>): TrainerLogRow => ({
      current_steps: step,
      total_steps: totalSteps,
      loss: round(interval.steps > 0 ? interval.loss / interval.steps : lastLoss),
      lr: learningRate,
      epoch: round(state.epoch, 2),
      percentage: round((step / totalSteps) * 100, 2),
      elapsed_time: formatDuration(elapsed()),
      remaining_time: formatDuration(remainingMs),
      ...extra,
    });
    if (step % args.loggingSteps === 0 || step === totalSteps || found.length > 0) {
      const averaged = Object.fromEntries(
        [...interval.metrics].map(([name, total]) => [name, round(total / interval.steps)]),
      );
      await log.append(
        logRow({
          throughput: round(interval.tokens / (interval.ms / 1000), 2),
          total_tokens: interval.tokens,
          grad_norm: round(gradNorm),
          ...averaged,
          ...(found.length > 0
            ? { diagnostics: found.map(({ kind, message, advice }) => ({ kind, message, advice })) }
            : {}),
        }),
      );
      Object.assign(interval, { loss: 0, steps: 0, tokens: 0, ms: 0 });
      interval.metrics.clear();
    }

    // Evaluation every evalSteps steps (and at the last step when evaluation is on).
    if (evalEvery && validation.length > 0 && (step % evalEvery === 0 || step === totalSteps)) {
      const began = performance.now();
      const evaluation = await evaluate(model, task, validation, args.perDeviceEvalBatchSize);
      evalLosses.push({ step, loss: evaluation.loss });
      emit({
        type: 'eval-end',
        step,
        evalLoss: evaluation.loss,
        metrics: evaluation.metrics,
        durationMs: performance.now() - began,
      });
      const evalFound = diagnostics.observeEval(step, evaluation.loss);
      raise(evalFound);
      await log.append(
        logRow({
          loss: round(lastLoss),
          eval_loss: round(evaluation.loss),
          ...roundAll(evaluation.metrics),
          ...(evalFound.length > 0
            ? { diagnostics: evalFound.map(({ kind, message, advice }) => ({ kind, message, advice })) }
            : {}),
        }),
      );
    }

    if (saveEvery && step % saveEvery === 0) await checkpointNow();
  }

  // A completed run writes the model's and the task's files (PEFT's adapter, a value head) into
  // the output folder.
  if (reason === 'completed' && storage && exportFiles) {
    await exportFiles({ writeFile: (name, data) => storage.writeFile(name, data) });
  }
  model.setTraining?.(false, args.seed);
  optimizer.dispose();
  for (const [, parameter] of parameters) requiresGrad(parameter, false);
  emit({
    type: 'train-end',
    reason,
    step: state.globalStep,
    totalSteps,
    loss: lastLoss,
    elapsedMs: elapsed(),
    memory: memory(),
    lastCheckpoint,
  });
  return {
    reason,
    steps: state.globalStep,
    epoch: state.globalStep / stepsPerEpoch,
    losses,
    evalLosses,
    diagnostics: raised,
    lastCheckpoint,
  };
}

/**
 * The loss over every validation row (the same normalisation as training: trained tokens or
 * pairs of the whole set), under noGrad with dropout off, and the stage's eval_ metrics.
 */
export async function evaluate<Row>(
  model: TrainableModel,
  task: TrainingTask<Row>,
  rows: readonly Row[],
  batchSize: number,
): Promise<{ loss: number; metrics: Record<string, number> }> {
  const device = model.device;
  model.setTraining?.(false, 0);
  const units = rows.reduce((total, row) => total + task.unitsOf(row), 0);
  const normalizer = units > 0 ? units : 1;
  let total: Tensor | null = null;
  const statistics: Tensor[] = [];
  for (let start = 0; start < rows.length; start += batchSize) {
    const slice = rows.slice(start, start + batchSize);
    const ids = slice.map((_, i) => -(start + i + 1));
    device.scope(() =>
      noGrad(() => {
        const result = task.forward(model, { rows: slice, ids }, normalizer, {});
        const next: Tensor = total ? add(total, result.loss) : add(result.loss, 0);
        total?.dispose();
        total = next.keep();
        if (result.statistics) statistics.push(result.statistics.keep());
      }),
    );
  }
  const packed = device.scope(() =>
    concat([(total as Tensor | null)!.reshape([1]), ...statistics.map((s) => s.reshape([s.size]))], 0).keep(),
  );
  const values = (await packed.toArray()) as Float32Array;
  const sizes = statistics.map((s) => s.size);
  packed.dispose();
  (total as Tensor | null)?.dispose();
  for (const s of statistics) s.dispose();
  const metrics =
    task.metrics && sizes.length > 0 ? computeMetrics(task, values.subarray(1), sizes, 'eval_') : {};
  return { loss: values[0], metrics };
}

/** Feeds each micro-batch's block of read-back statistics to the task's metrics. */
function computeMetrics<Row>(
  task: TrainingTask<Row>,
  values: Float32Array,
  sizes: readonly number[],
  prefix: string,
): Record<string, number> {
  const metrics = task.metrics!;
  metrics.reset();
  let offset = 0;
  for (const size of sizes) {
    metrics.update(values.subarray(offset, offset + size));
    offset += size;
  }
  const computed = metrics.compute(prefix);
  metrics.reset();
  return computed;
}

/** The dropout seed of one micro-batch: fixed by (seed, step, micro-batch), so resumes repeat it. */
function dropoutSeed(seed: number, step: number, micro: number): number {
  return ((seed * 1_000_003 + step * 7_919 + micro * 104_729) >>> 0) % 2 ** 31;
}

function checkSamePlan(saved: TrainerState['plan'], current: TrainerState['plan'], path: string): void {
  const differences = (Object.keys(current) as (keyof TrainerState['plan'])[])
    .filter((key) => saved[key] !== current[key])
    .map((key) => `${key} ${saved[key]} -> ${current[key]}`);
  if (differences.length > 0) {
    throw new Error(
      `train: ${path} was saved by a run with other settings (${differences.join(', ')}); resuming would not repeat it`,
    );
  }
}

function roundAll(metrics: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(metrics).map(([name, value]) => [name, round(value)]));
}

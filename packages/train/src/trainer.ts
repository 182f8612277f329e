/*
 * The training loop, read top to bottom: plan the steps, restore a checkpoint, then for each
 * optimizer step: schedule the learning rate, run and differentiate the micro-batches, clip, read
 * the loss back (the one sync point), step, zero, log, evaluate, checkpoint. Stages (SFT, DPO, RM)
 * differ only in their task (tasks/); the step arithmetic is in loop/step-plan.ts, micro-batch
 * accumulation (shared with evaluate) in loop/micro-batches.ts, when to evaluate and save in
 * loop/strategies.ts.
 */
import type { ModelFileSink } from '@webtune/nn';
import { globalNorm, gradOf, requiresGrad, type Tensor, zeroGrad } from '@webtune/tensors';
import {
  loadCheckpoint,
  removeUnfinishedSaves,
  restoreTensors,
  saveCheckpoint,
  type TrainerState,
} from './checkpoint/checkpoint.js';
import { findResumeCheckpoint } from './checkpoint/resume.js';
import { runIdentity } from './checkpoint/run-identity.js';
import type { TrainingStorage } from './checkpoint/training-storage.js';
import { resolveTrainingArguments, type TrainingArguments } from './config/training-arguments.js';
import { isRowStream, pullRows, type RowStream } from './data/row-stream.js';
import { type Diagnostic, LossDiagnostics } from './diagnostics/loss-diagnostics.js';
import { firstNonFinite } from './diagnostics/non-finite.js';
import type { MemoryFigures, TrainEndReason, TrainerEvent } from './events.js';
import { type LossCurve, type LossPoint, lossCurveOfLog } from './log/loss-curve.js';
import { formatDuration, round, TrainerLog, type TrainerLogRow } from './log/trainer-log.js';
import { accumulate, computeMetrics, normalizerOf, readBack } from './loop/micro-batches.js';
import { StepPlan } from './loop/step-plan.js';
import { shouldEvaluate, shouldSave } from './loop/strategies.js';
import type { TrainableModel } from './model/trainable-model.js';
import { trainingOptimizer, trainingSchedule } from './optimizer/training-optimizer.js';
import { learningRateAt } from './schedule/learning-rate.js';
import type { TaskBatch, TrainingTask } from './tasks/training-task.js';

export interface TrainOptions<Row> {
  model: TrainableModel;
  /** The stage: supervisedTask(), preferenceTask(), rewardTask(). */
  task: TrainingTask<Row>;
  /**
   * The training rows: a list, or a stream (`streaming: true`) whose rows are pulled step by step
   * and never all held; a stream needs `maxSteps`, and its position is saved in checkpoints.
   */
  train: readonly Row[] | RowStream<Row>;
  /** Rows to evaluate on, as evalStrategy says (LLaMA-Factory's val_size split). */
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
  evalLosses: LossPoint[];
  /**
   * The whole run's curve for a plot: this call's step losses and eval losses, after the points a
   * resumed run's trainer_log.jsonl holds for the steps before it.
   */
  lossCurve: LossCurve;
  diagnostics: Diagnostic[];
  lastCheckpoint: string | null;
}

/** Trains `model` on `train` with `task`; see TrainingArguments for every setting. */
export async function train<Row>(options: TrainOptions<Row>): Promise<TrainResult> {
  const { model, task } = options;
  const args = resolveTrainingArguments(options.args ?? {});
  const storage = options.storage ?? null;
  const device = model.device;
  const stream = isRowStream(options.train) ? options.train : null;
  const rows = stream ? [] : (options.train as readonly Row[]);
  const validation = options.validation ?? [];
  const emit = (event: TrainerEvent) => options.onEvent?.(event);
  if (!stream && rows.length === 0) throw new Error('train: no training rows');
  // LLaMA-Factory's rule: a stream has no length, so the run's length must be given.
  if (stream && !(args.maxSteps > 0))
    throw new Error('train: please specify maxSteps (max_steps) in streaming mode');

  // ---- The plan: how many steps, and the data order (a pure function of seed and epoch; a
  // stream's order is its own).
  const plan = new StepPlan(stream ? -1 : rows.length, args);
  const { totalSteps, stepsPerEpoch } = plan;
  const schedule = trainingSchedule(args, totalSteps);

  // ---- Parameters and optimizer. The task may train parameters of its own (a value head).
  const parameters = [...model.trainableParameters(), ...task.parameters(model)];
  if (parameters.length === 0) throw new Error('train: the model has no trainable parameters');
  for (const [, parameter] of parameters) requiresGrad(parameter);
  // Before any restore: a precomputed DPO reference must see the starting weights.
  await task.prepare?.(model, { train: rows, validation }, plan.microBatchSize);
  const optimizer = trainingOptimizer(device, parameters, args);
  const diagnostics = new LossDiagnostics({ totalSteps });
  const log = new TrainerLog(storage);

  // ---- Resume: parameters, optimizer moments, data position, log, diagnostics.
  let state: TrainerState = {
    format: 'webtune-trainer-state',
    version: 1,
    globalStep: 0,
    epoch: 0,
    position: { epoch: 0, microBatch: 0 },
    plan: plan.fingerprint,
    logRows: 0,
    elapsedMs: 0,
    diagnostics: null,
  };
  let resumedFrom: string | null = null;
  let lastCheckpoint: string | null = null;
  let curve: LossCurve = { train: [], eval: [] };
  // Every checkpoint records the run that saved it: `true` resumes only this run's.
  const identity = await runIdentity(args, plan.fingerprint);
  state.runIdentity = identity;
  if (storage) await removeUnfinishedSaves(storage);
  if (args.resumeFromCheckpoint) {
    if (!storage) throw new Error('train: resumeFromCheckpoint needs a storage');
    // No checkpoint to resume is an error (CheckpointError), never a silent fresh start.
    const path = await findResumeCheckpoint(storage, args.resumeFromCheckpoint, identity);
    const loaded = await loadCheckpoint(storage, path);
    checkSamePlan(loaded.state.plan, plan.fingerprint, path);
    restoreTensors(parameters, loaded.parameters, `resume from ${path}`);
    restoreTensors(optimizer.stateTensors(), loaded.optimizer, `resume from ${path}`);
    if (stream) {
      if (loaded.state.stream === undefined)
        throw new Error(`train: ${path} holds no stream position; it was not saved by a streamed run`);
      await stream.seek(loaded.state.stream);
    }
    optimizer.stepCount = loaded.state.globalStep;
    // From here on this run's identity (a checkpoint asked for by name may be another run's).
    state = { ...loaded.state, runIdentity: identity };
    diagnostics.restore(state.diagnostics);
    curve = lossCurveOfLog(await log.truncate(state.logRows));
    resumedFrom = lastCheckpoint = path;
  }
  if (!resumedFrom) await log.reset();

  emit({
    type: 'train-start',
    totalSteps,
    stepsPerEpoch,
    trainRows: stream ? -1 : rows.length,
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
  const evalLosses: LossPoint[] = [];
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
  // Every trainer_log.jsonl row, built here once: the step's place, then what the row adds.
  const logRow = (
    at: { step: number; done: number; loss: number; learningRate: number; remainingMs: number },
    extra: Partial<TrainerLogRow>,
    found: readonly Diagnostic[] = [],
  ): TrainerLogRow => ({
    current_steps: at.step,
    total_steps: totalSteps,
    loss: round(at.loss),
    lr: at.learningRate,
    epoch: round(state.epoch, 2),
    percentage: round((at.done / totalSteps) * 100, 2),
    elapsed_time: formatDuration(elapsed()),
    remaining_time: formatDuration(at.remainingMs),
    ...extra,
    ...(found.length > 0
      ? { diagnostics: found.map(({ kind, message, advice }) => ({ kind, message, advice })) }
      : {}),
  });
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
    if (stream) state.stream = stream.position();
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

    // The micro-batches of this step. Every micro-batch's loss is divided by the units (trained
    // tokens, pairs) of the whole step, so the accumulated gradient is that of one batch of all.
    const { start, microBatches } = plan.nextStep(state.position);
    state.position = start;
    const batches: TaskBatch<Row>[] = stream
      ? await streamedBatches(stream, microBatches)
      : microBatches.map((ids) => ({ rows: ids.map((i) => rows[i]), ids }));
    const stepRows = batches.flatMap((batch) => batch.rows);
    const tokens = stepRows.reduce((total, row) => total + task.tokensOf(row), 0);

    // Forward and backward, one micro-batch at a time; gradients accumulate on the parameters.
    const accumulated = accumulate(model, task, batches, normalizerOf(task, stepRows), {
      differentiate: true,
      gradientCheckpointing: args.gradientCheckpointing,
      // f16 storage needs shader-f16; without it the layer inputs stay f32.
      checkpointDtype: args.checkpointDtype === 'f16' && model.device.hasF16 ? 'f16' : 'f32',
      activationDtype: args.activationDtype === 'f16' && model.device.hasF16 ? 'f16' : 'f32',
      beforeMicroBatch: (micro) => model.setTraining?.(true, dropoutSeed(args.seed, state.globalStep, micro)),
    });

    // The global norm (computed on the device), read back with the loss and the metrics'
    // statistics in one transfer: the step's only sync point. Clipping's factor
    // min(1, maxNorm / (norm + 1e-6)), as clip_grad_norm_, then scales the gradients inside the
    // optimizer's kernel.
    const gradients = new Map<Tensor, Tensor>();
    for (const [, parameter] of parameters) {
      const grad = gradOf(parameter);
      if (grad) gradients.set(parameter, grad);
    }
    const gradientList = [...gradients.values()];
    const norm = device.scope(() =>
      (gradientList.length === 0 ? device.fromArray([0], [], 'f32') : globalNorm(gradientList)).keep(),
    );
    const readback = await readBack(accumulated, [norm]);
    norm.dispose();
    const [loss, gradNorm] = readback.scalars;

    // NaN or infinity: stop before the update, name the tensor, keep the last good checkpoint.
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      const where = !Number.isFinite(loss)
        ? 'loss'
        : ((await firstNonFinite(
            parameters
              .filter(([, p]) => gradients.has(p))
              .map(([name, p]) => [`${name}.grad`, gradients.get(p)!]),
          )) ?? 'gradient norm');
      const diagnostic = diagnostics.nonFinite(
        step,
        where,
        Number.isFinite(loss) ? gradNorm : loss,
        lastCheckpoint,
      );
      raise([diagnostic]);
      // The log says so too (JSON has no NaN: the row's loss is null).
      await log.append(
        logRow({ step, done: state.globalStep, loss: Number.NaN, learningRate, remainingMs: 0 }, {}, [
          diagnostic,
        ]),
      );
      zeroGrad(parameters.map(([, p]) => p));
      reason = 'non-finite';
      break;
    }

    const gradScale = args.maxGradNorm > 0 ? Math.min(1, args.maxGradNorm / (gradNorm + 1e-6)) : 1;
    optimizer.step(gradients, learningRate, { gradScale });
    zeroGrad(parameters.map(([, p]) => p));
    state.globalStep = step;
    state.position = { epoch: start.epoch, microBatch: start.microBatch + microBatches.length };
    state.epoch = step / stepsPerEpoch;
    losses.push(loss);
    curve.train.push({ step, loss });
    lastLoss = loss;

    const metrics = computeMetrics(task, readback.statistics, readback.sizes, '');
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
    const at = { step, done: step, learningRate, remainingMs };
    if (step % args.loggingSteps === 0 || step === totalSteps || found.length > 0) {
      const averaged = Object.fromEntries(
        [...interval.metrics].map(([name, total]) => [name, round(total / interval.steps)]),
      );
      await log.append(
        logRow(
          { ...at, loss: interval.loss / interval.steps },
          {
            throughput: round(interval.tokens / (interval.ms / 1000), 2),
            total_tokens: interval.tokens,
            grad_norm: round(gradNorm),
            ...averaged,
          },
          found,
        ),
      );
      Object.assign(interval, { loss: 0, steps: 0, tokens: 0, ms: 0 });
      interval.metrics.clear();
    }

    // Evaluation and checkpoints, as evalStrategy and saveStrategy say.
    const boundary = { step, totalSteps, endsEpoch: plan.endsEpoch(state.position) };
    if (validation.length > 0 && shouldEvaluate(args, boundary)) {
      const began = performance.now();
      const evaluation = await evaluate(model, task, validation, args.perDeviceEvalBatchSize);
      evalLosses.push({ step, loss: evaluation.loss });
      curve.eval.push({ step, loss: evaluation.loss });
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
        logRow(
          { ...at, loss: lastLoss },
          { eval_loss: round(evaluation.loss), ...roundAll(evaluation.metrics) },
          evalFound,
        ),
      );
    }
    if (shouldSave(args, boundary)) await checkpointNow();
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
    lossCurve: curve,
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
  model.setTraining?.(false, 0);
  const batches: TaskBatch<Row>[] = [];
  for (let start = 0; start < rows.length; start += batchSize) {
    const slice = rows.slice(start, start + batchSize);
    batches.push({ rows: slice, ids: slice.map((_, i) => -(start + i + 1)) });
  }
  const accumulated = accumulate(model, task, batches, normalizerOf(task, rows), { differentiate: false });
  const readback = await readBack(accumulated);
  return {
    loss: readback.scalars[0],
    metrics: computeMetrics(task, readback.statistics, readback.sizes, 'eval_'),
  };
}

/** A step's micro-batches pulled from a stream, sized as the plan's (ids count the rows pulled). */
async function streamedBatches<Row>(stream: RowStream<Row>, plan: number[][]): Promise<TaskBatch<Row>[]> {
  const batches: TaskBatch<Row>[] = [];
  for (const ids of plan) batches.push({ rows: await pullRows(stream, ids.length), ids });
  return batches;
}

/** The dropout seed of one micro-batch: fixed by (seed, step, micro-batch), so resumes repeat it. */
function dropoutSeed(seed: number, step: number, micro: number): number {
  return ((seed * 1_000_003 + step * 7_919 + micro * 104_729) >>> 0) % 2 ** 31;
}

/** The fingerprint's fields as the settings a user sets (LLaMA-Factory's keys) or sees. */
const PLAN_KEY_NAMES: Record<keyof TrainerState['plan'], string> = {
  seed: 'seed',
  trainRows: 'training rows',
  microBatchSize: 'per_device_train_batch_size',
  accumulation: 'gradient_accumulation_steps',
  totalSteps: 'total steps (max_steps / num_train_epochs)',
};

function checkSamePlan(saved: TrainerState['plan'], current: TrainerState['plan'], path: string): void {
  const differences = (Object.keys(current) as (keyof TrainerState['plan'])[])
    .filter((key) => saved[key] !== current[key])
    .map((key) => `${PLAN_KEY_NAMES[key]} ${saved[key]} -> ${current[key]}`);
  if (differences.length > 0) {
    throw new Error(
      `train: ${path} was saved by a run with other settings (${differences.join(', ')}); resuming would not repeat it`,
    );
  }
}

function roundAll(metrics: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(metrics).map(([name, value]) => [name, round(value)]));
}

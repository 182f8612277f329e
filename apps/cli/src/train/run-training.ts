/**
 * One run from a plan (@webtune/train's planRun) to the files of output_dir: loads the model,
 * prepares data and method as the plan says (prepare-run.ts), runs @webtune/train's loop when
 * do_train and writes the adapter or model, plots, evaluation and predictions. The loop, losses,
 * checkpoints and diagnostics belong to the packages; this file wires them and writes files.
 * Used by `webtune train` and `webtune webui`.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { type DataIssue, formatIssue } from '@webtune/data';
import { describeBaseFormat } from '@webtune/nn';
import { saveModelDirectory } from '@webtune/nn/node';
import type { Device } from '@webtune/tensors';
import {
  baseFormatReason,
  CheckpointError,
  evaluate,
  findResumeCheckpoint,
  type RowStream,
  type RunPlan,
  type TrainEndReason,
  type TrainerEvent,
  train,
} from '@webtune/train';
import { directoryStorage, resumeRequestFor } from '@webtune/train/node';
import { ChatEngine } from '../chat-engine.js';
import { initializeModelFromConfig, type LoadedModel, loadModel, readModelConfig } from '../model-loading.js';
import { bold, dim, green, ProgressBar, printable, table, UsageError, yellow } from '../ui.js';
import { memoryBudget, refuseIfTooLarge, trainingMemoryPlan } from './base-precision.js';
import { configToYaml } from './config.js';
import { lossCurveSvg } from './loss-svg.js';
import { isMatch, type PredictionCase, predict, predictionCases } from './predict.js';
import { type PreparedRun, prepareRun } from './prepare-run.js';
import { runPpo } from './run-ppo.js';

/** Refuses to mix a new run into an old one's output_dir unless told to. */
export async function prepareOutputDir(outputDir: string, plan: RunPlan): Promise<void> {
  if (plan.config.resume_from_checkpoint && plan.actions.train) {
    // Before anything is written: a resume with nothing to resume is refused, never a fresh start.
    try {
      const request = resumeRequestFor(outputDir, plan.config.resume_from_checkpoint);
      if (request !== null) await findResumeCheckpoint(directoryStorage(outputDir), request, null);
    } catch (error) {
      if (error instanceof CheckpointError) throw new UsageError(error.message);
      throw error;
    }
    return;
  }
  if (!existsSync(outputDir) || readdirSync(outputDir).length === 0) return;
  if (!plan.actions.train) return;
  if (!plan.config.overwrite_output_dir) {
    throw new UsageError(
      `output_dir "${outputDir}" exists and is not empty; set overwrite_output_dir: true to replace it, or resume_from_checkpoint: true to continue`,
    );
  }
  // overwrite_output_dir: old checkpoints and logs would be mistaken for this run's.
  for (const name of await readdir(outputDir)) {
    if (
      name.startsWith('checkpoint-') ||
      name.startsWith('.checkpoint-') ||
      name === 'trainer_log.jsonl' ||
      name === 'base_model'
    ) {
      await rm(join(outputDir, name), { recursive: true, force: true });
    }
  }
}

/** How a run ended, for the caller to report. */
export interface TrainingOutcome {
  reason: TrainEndReason;
  steps: number;
  outputDir: string;
  lastCheckpoint: string | null;
  /** The message of a non-finite stop. */
  problem?: string;
}

export interface RunTrainingOptions {
  device: Device;
  /** What the config came from, for messages (a file path, or `webui`). */
  source: string;
  /** Receives the run's text lines (what the terminal shows beside the dashboard). */
  log: (line: string) => void;
  onEvent?: (event: TrainerEvent) => void;
  /** Stops at the next step boundary with a checkpoint. */
  signal?: AbortSignal;
}

/**
 * One run from a plan (@webtune/train's planRun): the model loaded, the data and method set up
 * (prepareRun), the trainer run when do_train, then the files of output_dir. Checks output_dir
 * first.
 */
export async function runTraining(plan: RunPlan, options: RunTrainingOptions): Promise<TrainingOutcome> {
  const outputDir = resolve(plan.config.output_dir);
  await prepareOutputDir(outputDir, plan);
  const { device, log } = options;
  const seed = plan.config.seed;
  const modelName = plan.config.model_name_or_path;
  let loaded: LoadedModel;
  if (plan.config.train_from_scratch) {
    loaded = await initializeModelFromConfig(device, modelName, seed);
    log(
      `model: ${modelName} (${loaded.model.config.architecture}, ${(loaded.model.parameterCount() / 1e6).toFixed(2)}M parameters, random weights from seed ${seed})`,
    );
  } else {
    // Precision and the memory plan, before any weight is read (base-precision.ts).
    const baseFormat = plan.baseFormat;
    const config = await readModelConfig(modelName);
    if (config) {
      const memory = trainingMemoryPlan(plan, config, {
        maxBufferSize: device.gpu.limits.maxBufferSize,
        maxStorageBufferBindingSize: device.maxBindingBytes,
        budgetBytes: memoryBudget(device.info.adapterClass),
        matmulOuterSegments: device.tuning.matmulOuterSegments,
        hasF16: device.hasF16,
      });
      refuseIfTooLarge(memory);
    }
    loaded = await loadModel(device, modelName, { baseFormat });
    log(`base: ${describeBaseFormat(baseFormat)}, from ${baseFormatReason(plan.config)}`);
    log(
      `model: ${modelName} (${loaded.model.config.architecture}, ${(loaded.model.parameterCount() / 1e6).toFixed(2)}M parameters)`,
    );
  }
  try {
    return await trainLoaded(loaded, plan, options, outputDir);
  } finally {
    loaded.model.dispose();
  }
}

/** The rest of a run, once the model is on the device (its caller frees it). */
async function trainLoaded(
  loaded: LoadedModel,
  plan: RunPlan,
  options: RunTrainingOptions,
  outputDir: string,
): Promise<TrainingOutcome> {
  const { log } = options;
  const modelName = plan.config.model_name_or_path;
  const { model, tokenizer } = loaded;
  if (plan.data.usesTemplate && !plan.data.template && !tokenizer.chatTemplate) {
    log(
      yellow(
        'note: the tokenizer has no chat_template and no template is set: using "empty", as LLaMA-Factory',
      ),
    );
  }
  // Streaming: rows rejected as training reads them, each named (the first 20), then counted.
  let rejectedRows = 0;
  const onIssue = (issue: DataIssue) => {
    rejectedRows++;
    if (rejectedRows <= 20) log(yellow(`warning: row rejected: ${formatIssue(issue)}`));
    else if (rejectedRows % 1000 === 0) log(yellow(`warning: ${rejectedRows} rows rejected so far`));
  };
  const run = await prepareRun(loaded, plan, onIssue);
  if (!plan.data.streaming) printDataSummary(log, run.report);
  else {
    log(
      `data: streaming ${plan.data.datasets.join(', ')} (buffer_size ${plan.data.bufferSize}, ${plan.data.mixStrategy}); rows are read and tokenized as training asks for them`,
    );
  }
  const { peft, trainable } = run;
  if (peft) log(peft.formatSummary());
  else if (plan.method.type === 'freeze') log(`freeze: ${run.trainableNames.length} parameter tensors train`);
  if (plan.config.print_param_status) {
    const training = new Set(run.trainableNames);
    for (const [name, tensor] of model.namedParameters()) {
      log(`${name} [${tensor.shape.join(', ')}] ${training.has(name) ? green('trains') : dim('frozen')}`);
    }
  }

  // ---- Predictions before training (do_predict).
  let cases: PredictionCase[] = [];
  let before: { answers: string[]; correct: number } | null = null;
  const engine = run.prompts ? new ChatEngine({ ...loaded, peft }, run.prompts) : null;
  const predictOptions = { ...plan.generation, fitContext: true };
  if (plan.actions.predict && engine && run.evalDatasets) {
    cases = await predictionCases({ ...run.evalDatasets, maxSamples: plan.data.maxSamples });
    const bar = new ProgressBar(plan.actions.train ? 'answering before training' : 'answering');
    peft?.eval();
    before = await predict(engine, cases, predictOptions, (done, total) => bar.update(done, total));
    bar.done();
    log(`${plan.actions.train ? 'before training: ' : ''}${before.correct}/${cases.length} answers match`);
  }
  await mkdir(outputDir, { recursive: true });
  await writeFile(
    join(outputDir, 'training_args.yaml'),
    `# resolved by webtune from ${options.source}\n${configToYaml(plan)}`,
  );
  if (!plan.actions.train) return await withoutTraining(plan, run, { outputDir, log, cases, before });
  if (plan.task.type === 'ppo') return await runPpo(loaded, plan, run, { outputDir, log });

  // ---- Training.
  const args = plan.trainingArguments;
  if (args.evalStrategy !== 'no' && run.validation.length === 0) {
    log(
      yellow(
        `note: eval_strategy ${args.evalStrategy} without validation rows (set val_size or eval_dataset): no evaluation`,
      ),
    );
  }
  const started = performance.now();
  const result = await train({
    model: trainable,
    task: run.task,
    train: run.train as unknown[] | RowStream<unknown>,
    validation: run.validation as unknown[],
    args: { ...args, resumeFromCheckpoint: resumeRequestFor(outputDir, plan.config.resume_from_checkpoint) },
    storage: directoryStorage(outputDir),
    signal: options.signal,
    onEvent: (event: TrainerEvent) => options.onEvent?.(event),
  });
  const runtime = (performance.now() - started) / 1000;

  // ---- Outputs.
  await writeFile(
    join(outputDir, 'training_loss.svg'),
    lossCurveSvg({ ...result.lossCurve, title: `training loss: ${modelName}` }),
  );
  if (result.reason === 'completed') {
    if (peft) {
      for (const [name, bytes] of Object.entries(loaded.tokenizerFiles))
        await writeFile(join(outputDir, name), bytes);
    } else {
      await saveModelDirectory(model, outputDir, {
        generationConfig: loaded.generationConfig,
        extraFiles: loaded.tokenizerFiles,
      });
    }
  }
  const losses = result.losses;
  const results: Record<string, unknown> = {
    epoch: Number(result.epoch.toFixed(4)),
    train_loss: losses.length > 0 ? losses.reduce((a, b) => a + b, 0) / losses.length : null,
    final_loss: losses.at(-1) ?? null,
    train_runtime: Number(runtime.toFixed(3)),
    train_steps: result.steps,
    train_steps_per_second: Number((losses.length / runtime).toFixed(3)),
    eval_loss: result.evalLosses.at(-1)?.loss ?? null,
    end_reason: result.reason,
    peak_memory_bytes: model.device.memory().peakBytes,
  };
  if (plan.actions.evaluate && result.reason === 'completed' && run.validation.length > 0) {
    const evaluated = await evaluate(trainable, run.task, run.validation, args.perDeviceEvalBatchSize ?? 8);
    results.eval_loss = evaluated.loss;
    log(`eval_loss ${evaluated.loss.toFixed(4)}`);
  }

  // ---- Predictions after training.
  if (before && engine && result.reason === 'completed') {
    const bar = new ProgressBar('answering after training');
    peft?.eval();
    const after = await predict(engine, cases, predictOptions, (done, total) => bar.update(done, total));
    bar.done();
    await writePredictions(outputDir, cases, after.answers, before.answers);
    Object.assign(results, {
      predict_samples: cases.length,
      predict_exact_match_before: before.correct / Math.max(1, cases.length),
      predict_exact_match: after.correct / Math.max(1, cases.length),
    });
    printPredictions(log, cases, before.answers, after.answers);
    const percent = (n: number) => `${((100 * n) / Math.max(1, cases.length)).toFixed(0)}%`;
    log(
      bold(
        `answers matching eval_dataset: ${before.correct}/${cases.length} (${percent(before.correct)}) before -> ${after.correct}/${cases.length} (${percent(after.correct)}) after training`,
      ),
    );
  }
  await writeFile(join(outputDir, 'all_results.json'), `${JSON.stringify(results, null, 2)}\n`);

  if (plan.data.streaming) {
    // What the stream read for this run (rows read again to find a resume's place not counted).
    for (const dataset of run.report.datasets)
      log(
        `data: ${dataset.name} (${dataset.formatting}): ${dataset.rowsRead} rows read, ${dataset.rowsRejected} rejected`,
      );
    if (rejectedRows > 0) log(yellow(`warning: ${rejectedRows} streamed row(s) rejected in all`));
  }
  if (losses.length > 0) {
    log(
      `loss ${losses[0].toFixed(4)} -> ${losses[losses.length - 1].toFixed(4)} over ${losses.length} steps in ${runtime.toFixed(1)}s`,
    );
  }
  const outcome = {
    reason: result.reason,
    steps: result.steps,
    outputDir,
    lastCheckpoint: result.lastCheckpoint,
  };
  if (result.reason === 'non-finite') {
    const diagnostic = result.diagnostics.find((d) => d.kind === 'non-finite');
    return { ...outcome, problem: diagnostic?.message };
  }
  if (result.reason === 'stopped') return outcome;
  log(green(`done: ${outputDir}`));
  const adapterHint = peft ? `--model ${plan.baseModel} --adapter ${outputDir}` : `--model ${outputDir}`;
  // The chat must render prompts as training did: name the template the run used.
  const templateHint =
    plan.data.usesTemplate && plan.data.template ? ` --template ${plan.data.template}` : '';
  log(dim(`try it:  webtune chat ${adapterHint}${templateHint}${peft ? ' --compare' : ''}`));
  log(dim(`files:   ${(await readdir(outputDir)).sort().join(', ')}`));
  return outcome;
}

/** do_train: false: evaluation (do_eval) and predictions (do_predict) of the model as loaded. */
async function withoutTraining(
  plan: RunPlan,
  run: PreparedRun,
  context: {
    outputDir: string;
    log: (line: string) => void;
    cases: PredictionCase[];
    before: { answers: string[]; correct: number } | null;
  },
): Promise<TrainingOutcome> {
  const { outputDir, log, cases, before } = context;
  const results: Record<string, unknown> = {};
  if (plan.actions.evaluate) {
    if (run.validation.length === 0) {
      log(yellow('note: do_eval without validation rows (set val_size or eval_dataset): no evaluation'));
    } else {
      const evaluated = await evaluate(
        run.trainable,
        run.task,
        run.validation,
        plan.trainingArguments.perDeviceEvalBatchSize ?? 8,
      );
      results.eval_loss = evaluated.loss;
      Object.assign(results, evaluated.metrics);
      log(`eval_loss ${evaluated.loss.toFixed(4)} on ${run.validation.length} validation rows`);
    }
  }
  if (before) {
    await writePredictions(outputDir, cases, before.answers, null);
    results.predict_samples = cases.length;
    results.predict_exact_match = before.correct / Math.max(1, cases.length);
  }
  if (!plan.actions.evaluate && !before)
    log(yellow('note: do_train is false and nothing else was asked: no run'));
  await writeFile(join(outputDir, 'all_results.json'), `${JSON.stringify(results, null, 2)}\n`);
  log(green(`done (no training, do_train: false): ${outputDir}`));
  return { reason: 'completed', steps: 0, outputDir, lastCheckpoint: null };
}

async function writePredictions(
  outputDir: string,
  cases: readonly PredictionCase[],
  answers: readonly string[],
  before: readonly string[] | null,
): Promise<void> {
  const lines = cases.map((item, i) =>
    JSON.stringify({
      prompt: item.messages.map((m) => m.content).join('\n'),
      label: item.label,
      predict: answers[i],
      ...(before ? { predict_before: before[i] } : {}),
    }),
  );
  await writeFile(join(outputDir, 'generated_predictions.jsonl'), `${lines.join('\n')}\n`);
}

function printDataSummary(log: (line: string) => void, report: PreparedRun['report']): void {
  for (const dataset of report.datasets) {
    log(
      `data: ${dataset.name} (${dataset.formatting}): ${dataset.rowsKept} rows kept, ${dataset.rowsRejected} rejected, ${dataset.rowsSelected} used`,
    );
  }
  if (report.split) log(`split: ${report.split.train} train, ${report.split.validation} validation`);
  if (report.tokens) {
    const t = report.tokens;
    log(
      `tokens per example: p50 ${t.p50}, max ${t.max}; ${t.truncated} of ${t.examples} cut at cutoff_len ${t.cutoffLen}`,
    );
  }
  if (report.rejected.length > 0) {
    log(
      yellow(
        `warning: ${report.rejected.length} row(s) rejected (see \`webtune data validate\`); the first: ${formatIssue(report.rejected[0])}`,
      ),
    );
  }
}

function printPredictions(
  log: (line: string) => void,
  cases: readonly PredictionCase[],
  before: readonly string[],
  after: readonly string[],
): void {
  const shown = Math.min(cases.length, 8);
  const cell = (text: string) => {
    // Control characters and undecodable bytes (an untrained model's output) as dots.
    const clean = printable(text);
    return clean.length > 28 ? `${clean.slice(0, 27)}…` : clean;
  };
  const rows = [['question', 'expected', 'before', 'after']];
  for (let i = 0; i < shown; i++) {
    const question = cases[i].messages[cases[i].messages.length - 1].content;
    const mark = (answer: string) => `${isMatch(answer, cases[i].label) ? '✓' : '✗'} ${cell(answer)}`;
    rows.push([cell(question), cell(cases[i].label), mark(before[i]), mark(after[i])]);
  }
  log(table(rows));
  if (cases.length > shown) log(dim(`... ${cases.length - shown} more in generated_predictions.jsonl`));
}

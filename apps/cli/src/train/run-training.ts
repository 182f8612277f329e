/**
 * One training run, from a resolved LLaMA-Factory config to the files of output_dir: loads the
 * model and data, sets up the method and stage, runs @webtune/train's loop and writes the
 * adapter or model, plots and predictions. The loop, losses, checkpoints and diagnostics belong
 * to the packages; this file wires them. Used by `webtune train` and `webtune webui`.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { EncodedExample, Stage } from '@webtune/data';
import { formatIssue } from '@webtune/data';
import { prepareDatasetFromDirectory } from '@webtune/data/node';
import { describeBaseFormat } from '@webtune/nn';
import { directorySource, saveModelDirectory } from '@webtune/nn/node';
import {
  freezeTrainableNames,
  getPeftModel,
  type LoraInit,
  loadAdapter,
  loraConfig,
  type PeftModel,
} from '@webtune/peft';
import type { Device } from '@webtune/tensors';
import {
  CheckpointError,
  findResumeCheckpoint,
  preferenceTask,
  rewardTask,
  SCHEDULE_TYPES,
  type ScheduleType,
  supervisedTask,
  type TrainableModel,
  type TrainEndReason,
  type TrainerEvent,
  type TrainingArguments,
  type TrainingTask,
  train,
  trainableCausalLM,
  trainablePeftModel,
} from '@webtune/train';
import { directoryStorage, resumeRequestFor } from '@webtune/train/node';
import { ChatEngine } from '../chat-engine.js';
import { resolveDatasets } from '../datasets.js';
import { initializeModelFromConfig, type LoadedModel, loadModel, readModelConfig } from '../model-loading.js';
import { promptEncoderFor } from '../prompting.js';
import { bold, dim, green, ProgressBar, printable, table, UsageError, yellow } from '../ui.js';
import { baseFormatOf, memoryBudget, refuseIfTooLarge, trainingMemoryPlan } from './base-precision.js';
import { configToYaml, listOf, type ResolvedConfig } from './config.js';
import { lossCurveSvg } from './loss-svg.js';
import { isMatch, type PredictionCase, predict, predictionCases } from './predict.js';

type Values = Record<string, unknown>;

/** Settings that are fine alone but not together. */
export function checkCombinations(v: Values): void {
  baseFormatOf(v); // quantization_bit / bf16 / fp16 against the method (base-precision.ts)
  if (v.adapter_name_or_path && v.finetuning_type !== 'lora') {
    throw new UsageError(
      `adapter_name_or_path needs finetuning_type lora (got ${v.finetuning_type}); merge it first with \`webtune export\``,
    );
  }
  if (v.adapter_name_or_path && listOf(v.adapter_name_or_path).length > 1) {
    throw new UsageError(
      'adapter_name_or_path: one adapter only; merge the others first with `webtune export`',
    );
  }
  if (v.adapter_name_or_path && v.train_from_scratch)
    throw new UsageError('adapter_name_or_path and train_from_scratch exclude each other');
  if (v.packing === true && v.stage !== 'pt') {
    throw new UsageError(
      'packing: true is supported for stage pt only (SFT packing needs block-diagonal attention)',
    );
  }
  if (!SCHEDULE_TYPES.includes(v.lr_scheduler_type as ScheduleType)) {
    throw new UsageError(
      `lr_scheduler_type must be one of ${SCHEDULE_TYPES.join(', ')}, got "${v.lr_scheduler_type}"`,
    );
  }
  if (v.do_predict && v.stage !== 'sft') throw new UsageError('do_predict is for stage sft');
  if (v.do_predict && !v.eval_dataset)
    throw new UsageError('do_predict needs eval_dataset (the prompts to answer)');
  if (v.pissa_init && v.finetuning_type !== 'lora')
    throw new UsageError('pissa_init needs finetuning_type lora');
}

/** Refuses to mix a new run into an old one's output_dir unless told to. */
export async function prepareOutputDir(outputDir: string, v: Values): Promise<void> {
  if (v.resume_from_checkpoint) {
    // Before anything is written: a resume with nothing to resume is refused, never a fresh start.
    try {
      const request = resumeRequestFor(outputDir, v.resume_from_checkpoint);
      if (request !== null) await findResumeCheckpoint(directoryStorage(outputDir), request, null);
    } catch (error) {
      if (error instanceof CheckpointError) throw new UsageError(error.message);
      throw error;
    }
    return;
  }
  if (!existsSync(outputDir) || readdirSync(outputDir).length === 0) return;
  if (!v.overwrite_output_dir) {
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
 * One training run from a resolved config: model, data, method and stage through the packages,
 * @webtune/train's loop, then the files of output_dir. Checks the config and output_dir first.
 */
export async function runTraining(
  resolved: ResolvedConfig,
  options: RunTrainingOptions,
): Promise<TrainingOutcome> {
  const v = resolved.values;
  checkCombinations(v);
  const outputDir = resolve(String(v.output_dir));
  await prepareOutputDir(outputDir, v);
  const { device, log } = options;
  const seed = v.seed as number;
  const modelName = String(v.model_name_or_path);

  // ---- Model (and an adapter to continue).
  let loaded: LoadedModel;
  if (v.train_from_scratch) {
    loaded = await initializeModelFromConfig(device, modelName, seed);
    log(
      `model: ${modelName} (${loaded.model.config.architecture}, ${(loaded.model.parameterCount() / 1e6).toFixed(2)}M parameters, random weights from seed ${seed})`,
    );
  } else {
    // Precision and the memory plan, before any weight is read (base-precision.ts).
    const baseFormat = baseFormatOf(v);
    const config = await readModelConfig(modelName);
    if (config) {
      const plan = trainingMemoryPlan(v, config, {
        maxBufferSize: device.gpu.limits.maxBufferSize,
        maxStorageBufferBindingSize: device.maxBindingBytes,
        budgetBytes: memoryBudget(device.info.adapterClass),
      });
      refuseIfTooLarge(plan);
    }
    loaded = await loadModel(device, modelName, { baseFormat });
    if (baseFormat !== 'f32') log(`base: ${describeBaseFormat(baseFormat)}`);
    log(
      `model: ${modelName} (${loaded.model.config.architecture}, ${(loaded.model.parameterCount() / 1e6).toFixed(2)}M parameters)`,
    );
  }
  try {
    return await trainLoaded(loaded, resolved, options, outputDir);
  } finally {
    loaded.model.dispose();
  }
}

/** The rest of a run, once the model is on the device (its caller frees it). */
async function trainLoaded(
  loaded: LoadedModel,
  resolved: ResolvedConfig,
  options: RunTrainingOptions,
  outputDir: string,
): Promise<TrainingOutcome> {
  const v = resolved.values;
  const { log } = options;
  const configPath = options.source;
  const stage = v.stage as Stage;
  const method = v.finetuning_type as 'lora' | 'freeze' | 'full';
  const seed = v.seed as number;
  const modelName = String(v.model_name_or_path);
  const { model, tokenizer } = loaded;
  const prompts =
    stage === 'pt'
      ? null
      : promptEncoderFor(tokenizer, {
          template: (v.template as string | null) ?? undefined,
          enableThinking: v.enable_thinking as boolean | undefined,
          defaultSystem: (v.default_system as string | null) ?? undefined,
          toolFormat: (v.tool_format as string | null) ?? undefined,
        });
  const template = prompts?.template ?? null;
  if (template && !v.template && !tokenizer.chatTemplate) {
    log(
      yellow(
        'note: the tokenizer has no chat_template and no template is set: using "empty", as LLaMA-Factory',
      ),
    );
  }

  // ---- Data.
  const datasetDir = (v.dataset_dir as string) ?? 'data';
  const dataOptions = { datasetDir: existsSync(datasetDir) ? datasetDir : undefined };
  const trainData = resolveDatasets(listOf(v.dataset).join(','), dataOptions);
  const common = {
    stage,
    tokenizer,
    template: template ?? undefined,
    cutoffLen: v.cutoff_len as number,
    maxSamples: (v.max_samples as number | null) ?? undefined,
    seed,
    trainOnPrompt: v.train_on_prompt as boolean,
    maskHistory: v.mask_history as boolean,
    enableThinking: v.enable_thinking as boolean,
    packing: stage === 'pt' ? ((v.packing as boolean | null) ?? true) : undefined,
  };
  const prepared = await prepareDatasetFromDirectory({
    ...common,
    ...trainData,
    valSize: v.eval_dataset ? undefined : (v.val_size as number) || undefined,
    mixStrategy: v.mix_strategy as 'concat',
    interleaveProbs: v.interleave_probs ? listOf(v.interleave_probs).map(Number) : undefined,
  });
  printDataSummary(log, prepared.report);
  let validation = prepared.validation;
  const evalDatasets = v.eval_dataset ? resolveDatasets(listOf(v.eval_dataset).join(','), dataOptions) : null;
  if (evalDatasets && (v.eval_strategy !== 'no' || v.do_eval)) {
    validation = (await prepareDatasetFromDirectory({ ...common, ...evalDatasets })).train;
  }

  // ---- Method.
  let peft: PeftModel | null = null;
  let trainable: TrainableModel;
  if (method === 'lora') {
    if (v.train_from_scratch) {
      // The adapter is useless without its base: keep the drawn weights beside it.
      await saveModelDirectory(model, join(outputDir, 'base_model'), {
        generationConfig: loaded.generationConfig,
        extraFiles: loaded.tokenizerFiles,
      });
    }
    if (v.adapter_name_or_path) {
      const source = directorySource(resolve(String(v.adapter_name_or_path)));
      try {
        peft = await loadAdapter(model, source);
      } finally {
        await source.close?.();
      }
    } else {
      const target = String(v.lora_target);
      const init: LoraInit = v.pissa_init
        ? (v.pissa_iter as number) < 0
          ? 'pissa'
          : `pissa_niter_${v.pissa_iter as number}`
        : true;
      peft = await getPeftModel(
        model,
        loraConfig({
          r: v.lora_rank as number,
          lora_alpha: v.lora_alpha as number,
          lora_dropout: v.lora_dropout as number,
          target_modules: target === 'all' ? 'all-linear' : listOf(target),
          modules_to_save: v.additional_target ? listOf(v.additional_target) : null,
          use_rslora: v.use_rslora as boolean,
          use_dora: v.use_dora as boolean,
          init_lora_weights: init,
          base_model_name_or_path: v.train_from_scratch ? join(outputDir, 'base_model') : modelName,
        }),
        { seed },
      );
    }
    trainable = trainablePeftModel(peft);
    log(peft.formatSummary());
  } else if (method === 'freeze') {
    const names = freezeTrainableNames(model, {
      trainableLayers: v.freeze_trainable_layers as number,
      trainableModules:
        String(v.freeze_trainable_modules) === 'all' ? 'all' : listOf(v.freeze_trainable_modules),
      extraModules: listOf(v.freeze_extra_modules),
    });
    trainable = trainableCausalLM(model, { trainable: names });
    log(`freeze: ${names.length} parameter tensors train`);
  } else {
    trainable = trainableCausalLM(model);
  }
  if (v.print_param_status) {
    const training = new Set(trainable.trainableParameters().map(([name]) => name));
    for (const [name, tensor] of model.namedParameters()) {
      log(`${name} [${tensor.shape.join(', ')}] ${training.has(name) ? green('trains') : dim('frozen')}`);
    }
  }

  // ---- Stage.
  let task: TrainingTask<unknown>;
  let rewardHead: ReturnType<typeof rewardTask> | null = null;
  if (stage === 'sft' || stage === 'pt') {
    task = supervisedTask({
      stage,
      collate: { padTokenId: tokenizer.padTokenId ?? 0 },
    }) as TrainingTask<unknown>;
  } else if (stage === 'dpo') {
    task = preferenceTask({
      loss: v.pref_loss as 'sigmoid',
      beta: v.pref_beta as number,
      labelSmoothing: v.dpo_label_smoothing as number,
      simpoGamma: v.simpo_gamma as number,
      ftx: v.pref_ftx as number,
      collate: { padTokenId: tokenizer.padTokenId ?? 0 },
    }) as TrainingTask<unknown>;
  } else {
    rewardHead = rewardTask({ seed, collate: { padTokenId: tokenizer.padTokenId ?? 0 } });
    task = rewardHead as TrainingTask<unknown>;
  }

  // ---- Predictions before training (do_predict).
  let cases: PredictionCase[] = [];
  let before: { answers: string[]; correct: number } | null = null;
  const engine = prompts ? new ChatEngine({ ...loaded, peft }, prompts) : null;
  const predictOptions = {
    maxNewTokens: v.max_new_tokens as number,
    temperature: v.do_sample ? (v.temperature as number) : 0,
    topP: v.do_sample ? (v.top_p as number) : undefined,
    topK: v.do_sample ? (v.top_k as number) : undefined,
    repetitionPenalty: v.repetition_penalty as number,
    seed,
    fitContext: true,
  };
  if (v.do_predict && engine && evalDatasets) {
    cases = await predictionCases({
      ...evalDatasets,
      maxSamples: (v.max_samples as number | null) ?? undefined,
    });
    const bar = new ProgressBar('answering before training');
    peft?.eval();
    before = await predict(engine, cases, predictOptions, (done, total) => bar.update(done, total));
    bar.done();
    log(`before training: ${before.correct}/${cases.length} answers match`);
  }

  // ---- Training.
  const rows = prepared.train as EncodedExample[];
  const microBatch = v.per_device_train_batch_size as number;
  const stepsPerEpoch = Math.ceil(
    Math.ceil(rows.length / microBatch) / (v.gradient_accumulation_steps as number),
  );
  const evalStrategy = v.eval_strategy as string;
  const saveStrategy = v.save_strategy as string;
  const args: TrainingArguments = {
    numTrainEpochs: v.num_train_epochs as number,
    maxSteps: v.max_steps as number,
    perDeviceTrainBatchSize: microBatch,
    perDeviceEvalBatchSize: v.per_device_eval_batch_size as number,
    gradientAccumulationSteps: v.gradient_accumulation_steps as number,
    learningRate: v.learning_rate as number,
    weightDecay: v.weight_decay as number,
    adamBeta1: v.adam_beta1 as number,
    adamBeta2: v.adam_beta2 as number,
    adamEpsilon: v.adam_epsilon as number,
    lrSchedulerType: v.lr_scheduler_type as ScheduleType,
    warmupRatio: v.warmup_ratio as number,
    warmupSteps: v.warmup_steps as number,
    maxGradNorm: v.max_grad_norm as number,
    gradientCheckpointing: (v.gradient_checkpointing as boolean | null) ?? !v.disable_gradient_checkpointing,
    seed,
    shuffle: !v.disable_shuffling,
    loggingSteps: v.logging_steps as number,
    evalSteps:
      evalStrategy === 'steps'
        ? ((v.eval_steps as number | null) ?? (v.logging_steps as number))
        : evalStrategy === 'epoch'
          ? stepsPerEpoch
          : null,
    saveSteps:
      saveStrategy === 'steps' ? (v.save_steps as number) : saveStrategy === 'epoch' ? stepsPerEpoch : null,
    saveTotalLimit: v.save_total_limit as number | null,
    resumeFromCheckpoint: resumeRequestFor(outputDir, v.resume_from_checkpoint),
    // The trainer writes the adapter (and a reward model's value head) into output_dir and every
    // checkpoint; this is the base it records in adapter_config.json.
    modelNameOrPath: v.train_from_scratch ? join(outputDir, 'base_model') : modelName,
  };
  if (evalStrategy !== 'no' && validation.length === 0) {
    log(
      yellow(
        `note: eval_strategy ${evalStrategy} without validation rows (set val_size or eval_dataset): no evaluation`,
      ),
    );
  }
  await mkdir(outputDir, { recursive: true });
  await writeFile(
    join(outputDir, 'training_args.yaml'),
    `# resolved by webtune from ${configPath}\n${configToYaml(resolved)}`,
  );

  const started = performance.now();
  const result = await train({
    model: trainable,
    task,
    train: rows as unknown[],
    validation: validation as unknown[],
    args,
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
    epoch: Number((result.steps / stepsPerEpoch).toFixed(4)),
    train_loss: losses.length > 0 ? losses.reduce((a, b) => a + b, 0) / losses.length : null,
    final_loss: losses.at(-1) ?? null,
    train_runtime: Number(runtime.toFixed(3)),
    train_steps: result.steps,
    train_steps_per_second: Number((losses.length / runtime).toFixed(3)),
    eval_loss: result.evalLosses.at(-1)?.loss ?? null,
    end_reason: result.reason,
    peak_memory_bytes: model.device.memory().peakBytes,
  };

  // ---- Predictions after training.
  if (before && engine && result.reason === 'completed') {
    const bar = new ProgressBar('answering after training');
    peft?.eval();
    const after = await predict(engine, cases, predictOptions, (done, total) => bar.update(done, total));
    bar.done();
    const lines = cases.map((item, i) =>
      JSON.stringify({
        prompt: item.messages.map((m) => m.content).join('\n'),
        label: item.label,
        predict: after.answers[i],
        predict_before: before.answers[i],
      }),
    );
    await writeFile(join(outputDir, 'generated_predictions.jsonl'), `${lines.join('\n')}\n`);
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

  if (losses.length > 0) {
    log(
      `loss ${losses[0].toFixed(4)} -> ${losses[losses.length - 1].toFixed(4)} over ${losses.length} steps in ${runtime.toFixed(1)}s`,
    );
  }
  if (result.reason === 'non-finite') {
    const diagnostic = result.diagnostics.find((d) => d.kind === 'non-finite');
    return {
      reason: result.reason,
      steps: result.steps,
      outputDir,
      lastCheckpoint: result.lastCheckpoint,
      problem: diagnostic?.message,
    };
  }
  if (result.reason === 'stopped') {
    return { reason: result.reason, steps: result.steps, outputDir, lastCheckpoint: result.lastCheckpoint };
  }
  log(green(`done: ${outputDir}`));
  const adapterHint = peft
    ? `--model ${v.train_from_scratch ? join(outputDir, 'base_model') : modelName} --adapter ${outputDir}`
    : `--model ${outputDir}`;
  log(dim(`try it:  webtune chat ${adapterHint}${peft ? ' --compare' : ''}`));
  log(dim(`files:   ${(await readdir(outputDir)).sort().join(', ')}`));
  return { reason: result.reason, steps: result.steps, outputDir, lastCheckpoint: result.lastCheckpoint };
}

function printDataSummary(
  log: (line: string) => void,
  report: Awaited<ReturnType<typeof prepareDatasetFromDirectory>>['report'],
): void {
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

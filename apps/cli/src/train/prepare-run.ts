/**
 * A planned run made concrete on this machine: the datasets read from disk as the plan says, the
 * plan's method applied to the loaded model, and the stage's task. Everything decided here comes
 * from the plan (@webtune/train's planRun); this file only knows where files live.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { ChatTemplate, DataIssue, EncodedExample, PromptEncoder } from '@webtune/data';
import { prepareDatasetFromDirectory, streamDatasetFromDirectory } from '@webtune/data/node';
import { directorySource, saveModelDirectory } from '@webtune/nn/node';
import type { PeftModel } from '@webtune/peft';
import type { Tokenizer } from '@webtune/tokenizers';
import {
  applyMethod,
  createTask,
  encodingOptionsOf,
  promptOptionsOf,
  type RowStream,
  type RunPlan,
  rowKindsOf,
  type TrainableModel,
  type TrainingTask,
} from '@webtune/train';
import { type ResolvedDatasets, resolveDatasets } from '../datasets.js';
import { downloadHubDataset } from '../hub-datasets.js';
import type { LoadedModel } from '../model-loading.js';
import { promptEncoderFor } from '../prompting.js';

/** The plan's data, read and encoded. */
export interface PreparedRunData {
  /** The one prompt encoder of the run (train data, predictions, the chat engine); null for pt. */
  prompts: PromptEncoder | null;
  template: ChatTemplate | null;
  /**
   * Rows of the kinds the plan's task trains on; under `streaming: true` a stream of them, read and
   * tokenized as the trainer asks (only the held-out validation rows are in memory).
   */
  train: EncodedExample[] | RowStream<EncodedExample>;
  validation: EncodedExample[];
  evalDatasets: ResolvedDatasets | null;
  report: Awaited<ReturnType<typeof prepareDatasetFromDirectory>>['report'];
}

/** What the trainer gets, and what the run's other steps (predictions, outputs) need. */
export interface PreparedRun extends PreparedRunData {
  trainable: TrainableModel;
  peft: PeftModel | null;
  trainableNames: string[];
  task: TrainingTask<unknown>;
}

/**
 * Reads and encodes the plan's datasets (no device needed). Under streaming, `onIssue` gets each
 * rejected row as training meets it.
 */
export async function prepareRunData(
  plan: RunPlan,
  tokenizer: Tokenizer,
  onIssue?: (issue: DataIssue) => void,
): Promise<PreparedRunData> {
  const data = plan.data;
  const prompts = data.usesTemplate ? promptEncoderFor(tokenizer, promptOptionsOf(data)) : null;
  const template = prompts?.template ?? null;
  const dataOptions = { datasetDir: existsSync(data.datasetDir) ? data.datasetDir : undefined };
  const common = {
    ...encodingOptionsOf(data),
    tokenizer,
    template: template ?? undefined,
    hubDataset: downloadHubDataset,
  };
  const evalDatasets =
    data.evalDatasets.length > 0 ? resolveDatasets(data.evalDatasets.join(','), dataOptions) : null;
  if (data.streaming) {
    // max_samples is refused with streaming (resolve-config), as in LLaMA-Factory.
    const { maxSamples: _refused, ...streamed } = common;
    const stream = await streamDatasetFromDirectory({
      ...streamed,
      ...resolveDatasets(data.datasets.join(','), dataOptions),
      packing: data.stage === 'pt' ? data.packing : undefined,
      valSize: data.valSize,
      mixStrategy: data.mixStrategy,
      interleaveProbs: data.interleaveProbs,
      bufferSize: data.bufferSize,
      onIssue,
    });
    const validation =
      evalDatasets && data.readEvalDatasets
        ? (await prepareDatasetFromDirectory({ ...common, ...evalDatasets })).train
        : await stream.validation();
    return {
      prompts,
      template,
      train: stream,
      validation,
      evalDatasets,
      report: { stage: data.stage, datasets: stream.datasets, rejected: [], warnings: [], preview: [] },
    };
  }
  const prepared = await prepareDatasetFromDirectory({
    ...common,
    ...resolveDatasets(data.datasets.join(','), dataOptions),
    valSize: data.valSize,
    mixStrategy: data.mixStrategy,
    interleaveProbs: data.interleaveProbs,
  });
  let validation = prepared.validation;
  if (evalDatasets && data.readEvalDatasets) {
    validation = (await prepareDatasetFromDirectory({ ...common, ...evalDatasets })).train;
  }
  const kinds = rowKindsOf(plan.task);
  return {
    prompts,
    template,
    train: prepared.train.filter((row) => kinds.includes(row.kind)),
    validation: validation.filter((row) => kinds.includes(row.kind)),
    evalDatasets,
    report: prepared.report,
  };
}

/** Reads the plan's data and applies its method to `loaded` (the caller frees the model). */
export async function prepareRun(
  loaded: LoadedModel,
  plan: RunPlan,
  onIssue?: (issue: DataIssue) => void,
): Promise<PreparedRun> {
  const { model, tokenizer } = loaded;
  const data = await prepareRunData(plan, tokenizer, onIssue);
  if (plan.baseModelDirectory && plan.actions.train) {
    // A LoRA adapter is useless without its base: keep the drawn weights beside it.
    await mkdir(plan.baseModelDirectory, { recursive: true });
    await saveModelDirectory(model, plan.baseModelDirectory, {
      generationConfig: loaded.generationConfig,
      extraFiles: loaded.tokenizerFiles,
    });
  }
  const applied = await applyMethod(model, plan.method, {
    seed: plan.config.seed,
    openAdapter: async (path) => directorySource(resolve(path)),
  });
  return {
    ...data,
    trainable: applied.trainable,
    peft: applied.peft,
    trainableNames: applied.trainableNames,
    task: createTask(plan.task, {
      padTokenId: tokenizer.padTokenId ?? 0,
      seed: plan.config.seed,
      logitsChunkRows: plan.logitsChunkRows,
    }),
  };
}

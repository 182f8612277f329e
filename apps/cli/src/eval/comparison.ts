/**
 * What `webtune eval ab` and `webtune eval judge` share: the base model (adapter off) and the
 * tuned one (adapter on) answer the same prompts, and voted or judged pairs export as a sharegpt
 * preference dataset for `stage: dpo`.
 */
import { existsSync, statSync } from 'node:fs';
import {
  adapterVariants,
  type ComparisonSet,
  collectAnswers,
  type PairOutcome,
  preferenceRows,
} from '@webtune/eval';
import { writePreferenceDataset } from '@webtune/eval/node';
import { numberOption, type OptionSpec, optional, required } from '../args.js';
import { loadModel, openDevice } from '../model-loading.js';
import { promptEncoderFor } from '../prompting.js';
import { ProgressBar, UsageError } from '../ui.js';
import { type ComparisonPrompt, readPromptsFile } from './prompts-file.js';

type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** Names of the two sides, as reports and saved files show them. */
export const SIDES: [string, string] = ['base', 'tuned'];

/** Options of both commands. */
export const COMPARISON_OPTIONS: OptionSpec = {
  model: { type: 'string' },
  adapter: { type: 'string' },
  prompts: { type: 'string' },
  'max-new-tokens': { type: 'string' },
  'max-samples': { type: 'string' },
  'batch-size': { type: 'string' },
  template: { type: 'string' },
  'export-dataset': { type: 'string' },
  'dataset-name': { type: 'string' },
};

/** Help lines of COMPARISON_OPTIONS. */
export const COMPARISON_HELP = `  --model DIR             the base model folder, hub id or .gguf file
  --adapter DIR           the tuned adapter: base = adapter off, tuned = adapter on (one copy)
  --prompts FILE          one prompt a line (.txt), or .json / .jsonl of strings, {"prompt"},
                          {"instruction", "input"} or {"messages"} ending with a user message
  --max-new-tokens N      longest answer (default 256)
  --max-samples N         first N prompts only
  --batch-size N          prompts generated together (default 8)
  --template NAME         chat template (default: the tokenizer's own, else "default")
  --export-dataset DIR    write the decided pairs (ties left out) as a sharegpt preference
                          dataset with its dataset_info.json entry, for stage: dpo
  --dataset-name NAME     the dataset's name there (default ab_preferences / judge_preferences)`;

/** What the command line asked to compare, checked before any model loads. */
export interface ComparisonRequest {
  model: string;
  adapter: string;
  prompts: ComparisonPrompt[];
  maxNewTokens: number;
  batchSize: number;
  template?: string;
  exportDataset?: string;
  datasetName: string;
}

/** Reads and checks the shared options (the prompts file included). */
export async function comparisonRequest(values: Values, defaultName: string): Promise<ComparisonRequest> {
  const model = required(values, 'model');
  const adapter = optional(values, 'adapter');
  if (!adapter) {
    throw new UsageError('--adapter is required: base (adapter off) is compared with tuned (adapter on)');
  }
  const promptsPath = required(values, 'prompts');
  const maxNewTokens = numberOption(values, 'max-new-tokens', { integer: true, min: 1 }) ?? 256;
  const maxSamples = numberOption(values, 'max-samples', { integer: true, min: 1 });
  const batchSize = numberOption(values, 'batch-size', { integer: true, min: 1 }) ?? 8;
  const datasetName = optional(values, 'dataset-name') ?? defaultName;
  if (!/^[\w.-]+$/.test(datasetName)) {
    throw new UsageError(`--dataset-name should hold only letters, digits, _ . -, got "${datasetName}"`);
  }
  const exportDataset = optional(values, 'export-dataset');
  if (exportDataset && existsSync(exportDataset) && !statSync(exportDataset).isDirectory()) {
    throw new UsageError(`--export-dataset "${exportDataset}" is a file, not a folder`, 1);
  }
  const prompts = (await readPromptsFile(promptsPath)).slice(0, maxSamples);
  return {
    model,
    adapter,
    prompts,
    maxNewTokens,
    batchSize,
    template: optional(values, 'template'),
    exportDataset,
    datasetName,
  };
}

/**
 * Loads the model with the adapter, lets base and tuned answer every prompt (greedy, through the
 * chat template, stopping at the end of the turn) and frees the device again.
 */
export async function collectComparison(request: ComparisonRequest, quiet: boolean): Promise<ComparisonSet> {
  const device = await openDevice();
  try {
    const loaded = await loadModel(device, request.model, { adapter: request.adapter, quiet });
    if (!loaded.peft) throw new UsageError(`--adapter "${request.adapter}" did not load`, 1);
    const prompts = promptEncoderFor(loaded.tokenizer, { template: request.template });
    const bar = quiet ? null : new ProgressBar('answering');
    try {
      return await collectAnswers(adapterVariants(loaded.peft, SIDES), loaded.tokenizer, request.prompts, {
        prompts,
        stopStrings: prompts.stopStrings(),
        maxNewTokens: request.maxNewTokens,
        batchSize: request.batchSize,
        onProgress: (progress) => bar?.update(progress.done, progress.total, 'answers'),
      });
    } finally {
      bar?.done();
      loaded.model.dispose();
    }
  } finally {
    device.destroy();
  }
}

/** A pair as reports and saved files show it: the prompt text and both answers by side name. */
export function pairJson(set: ComparisonSet, id: number) {
  const pair = set.pairs[id];
  return {
    id,
    prompt: pair.prompt,
    answers: { [set.models[0]]: pair.answers[0], [set.models[1]]: pair.answers[1] },
  };
}

/** The winner's side name, `tie`, or null for a pair without a verdict. */
export function winnerName(set: ComparisonSet, winner: 0 | 1 | null | undefined): string | null {
  if (winner === undefined) return null;
  return winner === null ? 'tie' : set.models[winner];
}

/**
 * Writes the decided pairs as a preference dataset (`NAME.json` and the `dataset_info.json` entry)
 * and says so; returns the rows written. Nothing is written when every pair is a tie.
 */
export async function exportPreferences(
  directory: string,
  name: string,
  set: ComparisonSet,
  outcomes: readonly PairOutcome[],
  log: (line: string) => void,
): Promise<number> {
  const rows = preferenceRows(set, outcomes);
  if (rows.length === 0) {
    log('nothing exported: no pair has a winner (ties carry no preference)');
    return 0;
  }
  await writePreferenceDataset(directory, name, rows);
  log(
    `exported ${rows.length} preference pair${rows.length === 1 ? '' : 's'} to ${directory} as dataset "${name}" ` +
      `(train with: stage: dpo, dataset: ${name}, dataset_dir: ${directory})`,
  );
  return rows.length;
}

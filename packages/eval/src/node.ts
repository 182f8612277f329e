// Node-only parts of @webtune/eval: task folders, model folders and result files on disk.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { directoryFileResolver } from '@webtune/data/node';
import type { CausalLM } from '@webtune/nn';
import { directorySource, loadModelDirectory } from '@webtune/nn/node';
import { loadAdapter, type PeftModel } from '@webtune/peft';
import { createDevice, type Device } from '@webtune/tensors';
import type { Tokenizer } from '@webtune/tokenizers';
import { EvaluationError } from './errors.js';
import { evaluateMcq, type McqOptions } from './mcq/evaluate-mcq.js';
import { formatMcqMarkdown, type McqResult, mcqResultToJson } from './mcq/mcq-result.js';
import { type LoadMcqTaskOptions, loadMcqTask, type McqTask } from './mcq/task.js';
import { type PreferenceRow, preferenceDatasetInfo } from './pairwise/preference-export.js';
import { type PredictionRecord, parsePredictionsJsonl, predictionsToJsonl } from './predict/predict.js';

/** Loads a task folder from disk (see loadMcqTask). */
export async function loadMcqTaskDirectory(
  directory: string,
  options: LoadMcqTaskOptions = {},
): Promise<McqTask> {
  const root = resolve(directory);
  return loadMcqTask(directoryFileResolver(root), root, { name: basename(root), ...options });
}

/** Writes `results.json` (with per-question records) and `results.md` into `directory`; returns the paths. */
export async function saveMcqResult(result: McqResult, directory: string): Promise<string[]> {
  await mkdir(directory, { recursive: true });
  const json = join(directory, 'results.json');
  const markdown = join(directory, 'results.md');
  await writeFile(json, mcqResultToJson(result));
  await writeFile(markdown, formatMcqMarkdown(result));
  return [json, markdown];
}

/** Writes predictions as JSON Lines (`generated_predictions.jsonl`). */
export async function writePredictions(path: string, records: readonly PredictionRecord[]): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, predictionsToJsonl(records));
}

/** Reads a predictions file (ours or LLaMA-Factory's); errors name the line. */
export async function readPredictions(path: string): Promise<PredictionRecord[]> {
  return parsePredictionsJsonl(await readFile(path, 'utf8'), path);
}

/**
 * Writes preference rows as `<name>.json` in a dataset folder and adds (or replaces) the entry
 * for it in the folder's `dataset_info.json`, so `dataset: <name>` with `stage: dpo` finds it.
 * Returns the paths written.
 */
export async function writePreferenceDataset(
  directory: string,
  name: string,
  rows: readonly PreferenceRow[],
): Promise<string[]> {
  if (!/^[\w.-]+$/.test(name))
    throw new EvaluationError(`dataset name "${name}" should hold only letters, digits, _ . -`);
  await mkdir(directory, { recursive: true });
  const file = join(directory, `${name}.json`);
  await writeFile(file, `${JSON.stringify(rows, null, 2)}\n`);
  const infoPath = join(directory, 'dataset_info.json');
  let info: Record<string, unknown> = {};
  try {
    info = JSON.parse(await readFile(infoPath, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new EvaluationError(`cannot update it: ${(error as Error).message}`, { file: infoPath });
    }
  }
  await writeFile(infoPath, `${JSON.stringify({ ...info, ...preferenceDatasetInfo(name) }, null, 2)}\n`);
  return [file, infoPath];
}

/** A model folder, and optionally a PEFT adapter folder on top of it. */
export interface EvalModelFiles {
  /** Hugging Face model folder. */
  model: string;
  /** PEFT adapter folder (adapter_config.json + adapter_model.safetensors). */
  adapter?: string;
  /** Device to load onto (default: a new one). */
  device?: Device;
}

/** A loaded model for evaluation; `peft` is set when an adapter was loaded. */
export interface LoadedEvalModel {
  device: Device;
  model: CausalLM;
  tokenizer: Tokenizer;
  peft?: PeftModel;
}

/** Loads a model folder (and adapter) for evaluation. Throws `EvaluationError` when the folder has no tokenizer. */
export async function loadEvalModel(files: EvalModelFiles): Promise<LoadedEvalModel> {
  const device = files.device ?? (await createDevice());
  const { model, tokenizer } = await loadModelDirectory(device, files.model);
  if (!tokenizer)
    throw new EvaluationError(`${files.model} has no tokenizer files (tokenizer.json): evaluation needs one`);
  if (!files.adapter) return { device, model, tokenizer: tokenizer as Tokenizer };
  const peft = await loadAdapter(model, directorySource(files.adapter));
  return { device, model: peft.model, tokenizer: tokenizer as Tokenizer, peft };
}

/** What `webtune eval mcq` asks for. */
export interface McqRunOptions extends McqOptions, EvalModelFiles {
  /** Task folder. */
  task: string;
  split?: 'dev' | 'val' | 'test';
  subjects?: readonly string[];
  /** Folder for results.json and results.md (nothing is written without it). */
  outputDir?: string;
}

/** Loads the model (and adapter) and the task, evaluates, and saves the results when asked. */
export async function runMcqEvaluation(options: McqRunOptions): Promise<McqResult> {
  const task = await loadMcqTaskDirectory(options.task, {
    split: options.split ?? 'test',
    subjects: options.subjects,
  });
  const loaded = await loadEvalModel(options);
  try {
    const result = await evaluateMcq(loaded.model, loaded.tokenizer, task, options);
    if (options.outputDir) await saveMcqResult(result, options.outputDir);
    return result;
  } finally {
    if (!options.device) {
      loaded.model.dispose();
      loaded.device.destroy();
    }
  }
}

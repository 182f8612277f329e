/**
 * `webtune eval forgetting`: base (adapter off) and tuned (adapter on) on general benchmarks and
 * on the domain set, side by side, with a verdict and, when general skill dropped past the
 * threshold, the advice to mix general data and the config lines that do it.
 */
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import {
  adapterVariants,
  evaluateForgetting,
  type ForgettingRun,
  formatForgettingReport,
  type McqTask,
} from '@webtune/eval';
import { loadMcqTaskDirectory } from '@webtune/eval/node';
import { numberOption, optional, parseCommandLine, required } from '../args.js';
import { loadModel, openDevice, requireDirectory } from '../model-loading.js';
import { ProgressBar, UsageError } from '../ui.js';
import { MCQ_OPTIONS, mcqChoicesFrom } from './mcq-options.js';

type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** A repeatable string option as a list. */
function list(values: Values, name: string): string[] {
  const value = values[name];
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).filter((item): item is string => typeof item === 'string');
}

export async function forgettingCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(argv, {
    model: { type: 'string' },
    adapter: { type: 'string' },
    'general-task': { type: 'string', multiple: true },
    'domain-task': { type: 'string', multiple: true },
    'domain-file': { type: 'string', multiple: true },
    ...MCQ_OPTIONS,
    'forgetting-threshold': { type: 'string' },
    'gain-threshold': { type: 'string' },
    'domain-dataset': { type: 'string' },
    'general-dataset': { type: 'string' },
    'general-share': { type: 'string' },
    json: { type: 'boolean' },
  });
  const modelName = required(values, 'model');
  const adapter = optional(values, 'adapter');
  if (!adapter) {
    throw new UsageError('--adapter is required: base (adapter off) is compared with tuned (adapter on)');
  }
  const generalDirs = list(values, 'general-task');
  if (generalDirs.length === 0) {
    throw new UsageError('--general-task is required: a benchmark folder (MMLU, C-Eval, CMMLU layout)');
  }
  const domainDirs = list(values, 'domain-task');
  const domainFiles = list(values, 'domain-file');
  if (domainDirs.length === 0 && domainFiles.length === 0) {
    throw new UsageError(
      'name the domain set: --domain-task DIR (multiple choice) or --domain-file TEXT (perplexity)',
    );
  }
  const { split, ...choices } = mcqChoicesFrom(values);
  const forgettingThreshold = numberOption(values, 'forgetting-threshold', { min: 0 });
  const gainThreshold = numberOption(values, 'gain-threshold', { min: 0 });
  const generalShare = numberOption(values, 'general-share', { min: 0.01, max: 0.99 });
  const json = Boolean(values.json);

  const loadTasks = (directories: string[], what: string): Promise<McqTask[]> =>
    Promise.all(
      directories.map((directory) => loadMcqTaskDirectory(requireDirectory(directory, what), { split })),
    );
  const general = await loadTasks(generalDirs, 'general task folder');
  const domainTasks = await loadTasks(domainDirs, 'domain task folder');
  const texts: string[] = [];
  for (const file of domainFiles) {
    if (!existsSync(file)) throw new UsageError(`--domain-file "${file}" does not exist`, 1);
    if (!statSync(file).isFile()) throw new UsageError(`--domain-file "${file}" is not a file`, 1);
    const text = await readFile(file, 'utf8');
    if (text.trim().length === 0) throw new UsageError(`--domain-file "${file}" is empty`, 1);
    texts.push(text);
  }

  const device = await openDevice();
  try {
    const loaded = await loadModel(device, modelName, { adapter, quiet: json });
    if (!loaded.peft) throw new UsageError(`--adapter "${adapter}" did not load`, 1);
    const bar = json ? null : new ProgressBar('scoring');
    const run: ForgettingRun = {
      general,
      domainTasks,
      ...(texts.length > 0
        ? { domainTexts: { name: domainFiles.map((file) => basename(file)).join(','), texts } }
        : {}),
      mcq: {
        ...choices,
        onProgress: (progress) => bar?.update(progress.done, progress.total, 'questions'),
      },
      forgettingThreshold,
      gainThreshold,
      domainDataset: optional(values, 'domain-dataset'),
      generalDataset: optional(values, 'general-dataset'),
      generalShare,
    };
    let report: Awaited<ReturnType<typeof evaluateForgetting>>['report'];
    try {
      ({ report } = await evaluateForgetting(adapterVariants(loaded.peft), loaded.tokenizer, run));
    } finally {
      bar?.done();
      loaded.model.dispose();
    }
    if (json) console.log(JSON.stringify(report));
    else process.stdout.write(formatForgettingReport(report));
    return 0;
  } finally {
    device.destroy();
  }
}

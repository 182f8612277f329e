/**
 * `webtune chat|eval CONFIG [key=value ...]`, as `llamafactory-cli chat|eval` take them
 * (`webtune export CONFIG` reads its keys in export.ts): the config is read with the same key table as `webtune train` (every problem reported,
 * notes for keys without effect) and turned into the command's own options.
 */
import {
  ConfigError,
  type ConfigKey,
  generationOf,
  type LlamaFactoryConfig,
  resolveConfig,
} from '@webtune/train';
import { isConfigPath, parseOverrides, readConfigFile, usageErrorOf } from '../train/config.js';
import { UsageError, yellow } from '../ui.js';

export type ConfigCommand = 'chat' | 'eval';

const REQUIRED: Record<ConfigCommand, readonly ConfigKey[]> = {
  chat: ['model_name_or_path'],
  eval: ['model_name_or_path', 'task'],
};

/** The command's arguments: those of a config file when the first argument is one, else `argv` as is. */
export function argvFromConfig(command: ConfigCommand, argv: string[]): string[] {
  if (!isConfigPath(argv[0])) return argv;
  const [path, ...rest] = argv;
  let config: LlamaFactoryConfig;
  try {
    const resolved = resolveConfig(
      { ...readConfigFile(path), ...parseOverrides(rest) },
      { required: REQUIRED[command] },
    );
    for (const note of resolved.notes) process.stderr.write(`${yellow(`note: ${note}`)}\n`);
    config = resolved.config;
  } catch (error) {
    if (error instanceof ConfigError) throw usageErrorOf(error, path);
    throw error;
  }
  return optionsOf(command, config);
}

/** A LLaMA-Factory config as the options of `webtune chat|eval`. */
export function optionsOf(command: ConfigCommand, config: LlamaFactoryConfig): string[] {
  const options = ['--model', config.model_name_or_path];
  const adapters = config.adapter_name_or_path?.split(',').filter(Boolean) ?? [];
  if (adapters.length > 1)
    throw new UsageError(
      'adapter_name_or_path: one adapter only; merge the others first with `webtune export`',
    );
  if (adapters.length === 1) options.push('--adapter', adapters[0]);
  if (command === 'chat') {
    if (config.template) options.push('--template', config.template);
    const generation = generationOf(config);
    options.push(
      '--max-new-tokens',
      String(generation.maxNewTokens),
      '--temperature',
      String(generation.temperature),
    );
    if (generation.topP !== undefined) options.push('--top-p', String(generation.topP));
    if (generation.topK !== undefined) options.push('--top-k', String(generation.topK));
    options.push(
      '--repetition-penalty',
      String(generation.repetitionPenalty),
      '--seed',
      String(generation.seed),
    );
    return options;
  }
  // eval: LLaMA-Factory's `task` is the benchmark folder's name and the split (mmlu_test).
  const task = config.task ?? '';
  const split = task.lastIndexOf('_');
  if (split <= 0) throw new UsageError(`task must look like mmlu_test (benchmark_split), got "${task}"`);
  options.unshift('mcq');
  options.push(
    '--task',
    `${config.task_dir.replace(/\/+$/, '')}/${task.slice(0, split)}`,
    '--split',
    task.slice(split + 1),
    '--n-shot',
    String(config.n_shot),
    '--lang',
    config.lang,
  );
  if (config.template) options.push('--template', config.template);
  if (config.save_dir) options.push('--save', config.save_dir);
  return options;
}

/**
 * Reading a LLaMA-Factory config (parsed YAML or JSON, after command-line overrides): every key
 * checked against the key tables, values converted to their types, defaults filled in, and every
 * problem of the config collected and reported together.
 */
import { SCHEDULE_TYPES, type ScheduleType, scheduleKwargsProblems } from '../schedule/learning-rate.js';
import { baseFormatOf } from './base-format.js';
import { CONFIG_KEYS, type ConfigKey, type LlamaFactoryConfig, REQUIRED_KEYS } from './config-keys.js';
import type { KeySpec } from './key-spec.js';
import { nearestKey } from './nearest-key.js';

/** A config as parsed from YAML or JSON, before checks. */
export type RawConfig = Record<string, unknown>;

/** One problem of a config, with the key it is about (null for a problem of the whole). */
export interface ConfigIssue {
  key: string | null;
  message: string;
}

/** A config with problems; `issues` lists all of them, the message has one line each. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(readonly issues: readonly ConfigIssue[]) {
    super(issues.map((issue) => issue.message).join('\n'));
  }
}

/** A checked config: every known key with its value or default, and notes on ignored keys. */
export interface ResolvedConfig {
  config: LlamaFactoryConfig;
  /** Keys given in the file or on the command line (the rest are defaults). */
  given: ReadonlySet<string>;
  /** One line per ignored key that was set: what it would do and why it has no effect here. */
  notes: string[];
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(JSON.stringify(value) ?? value);
}

const numberOf = (value: unknown) =>
  typeof value === 'number'
    ? value
    : typeof value === 'string' && value.trim() !== ''
      ? Number(value)
      : Number.NaN;

const splitList = (text: string) =>
  text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);

/** Converts `value` to the key's type; a string saying what was expected when it cannot. */
function coerce(spec: KeySpec, value: unknown): { value: unknown } | { expected: string } {
  if (value === null) return { value: null };
  switch (spec.type) {
    case 'string':
      return typeof value === 'string' || typeof value === 'number'
        ? { value: String(value) }
        : { expected: 'a string' };
    case 'number': {
      const number = numberOf(value);
      return Number.isFinite(number) ? { value: number } : { expected: 'a number' };
    }
    case 'integer': {
      const number = numberOf(value);
      return Number.isInteger(number) ? { value: number } : { expected: 'an integer' };
    }
    case 'boolean':
      if (typeof value === 'boolean') return { value };
      if (value === 'true' || value === 'false') return { value: value === 'true' };
      return { expected: 'true or false' };
    case 'list':
      if (typeof value === 'string') return { value: splitList(value) };
      if (Array.isArray(value) && value.every((item) => typeof item === 'string'))
        return { value: value.map((item) => item.trim()).filter(Boolean) };
      return { expected: 'a string or a list of strings' };
    case 'mapping': {
      let mapping = value;
      if (typeof value === 'string') {
        try {
          mapping = JSON.parse(value);
        } catch {
          return { expected: 'a mapping (or its JSON text)' };
        }
      }
      return mapping && typeof mapping === 'object' && !Array.isArray(mapping)
        ? { value: mapping }
        : { expected: 'a mapping (or its JSON text)' };
    }
    case 'string-or-boolean':
      if (typeof value === 'boolean') return { value };
      if (value === 'true' || value === 'false') return { value: value === 'true' };
      if (typeof value === 'string') return { value };
      return { expected: 'true, false or a checkpoint folder' };
    case 'number-or-list': {
      const items = typeof value === 'string' ? splitList(value) : Array.isArray(value) ? value : [value];
      const numbers = items.map(numberOf);
      return numbers.every(Number.isFinite)
        ? { value: numbers }
        : { expected: 'numbers separated by commas' };
    }
  }
}

/** Whether an unsupported key's value asks for nothing (its default, null, false, 0 or empty). */
function isNeutral(spec: KeySpec, value: unknown): boolean {
  return (
    value === null ||
    value === false ||
    value === '' ||
    value === spec.default ||
    (Array.isArray(value) && value.length === 0) ||
    (value === 0 && spec.default === null)
  );
}

function supportedChoices(spec: KeySpec): string {
  return (spec.choices ?? []).filter((choice) => !spec.unsupportedChoices?.includes(choice)).join(', ');
}

/**
 * Checks a config and fills defaults. Unknown keys get the nearest known key; unsupported
 * features and values are problems saying so; ignored keys become notes. Throws one ConfigError
 * listing every problem. `required`: the keys a command needs (default: a training run's, whose
 * combinations are checked too; chat, export and eval name their own).
 */
export function resolveConfig(
  raw: RawConfig,
  options: { required?: readonly ConfigKey[] } = {},
): ResolvedConfig {
  const values: Record<string, unknown> = {};
  const given = new Set<string>();
  const notes: string[] = [];
  const issues: ConfigIssue[] = [];
  const problem = (key: string | null, message: string) => issues.push({ key, message });
  for (const [key, value] of Object.entries(raw)) {
    const spec = Object.hasOwn(CONFIG_KEYS, key) ? CONFIG_KEYS[key] : undefined;
    if (!spec) {
      const near = nearestKey(key);
      problem(key, `unknown config key "${key}"${near ? `; did you mean "${near}"?` : ''}`);
      continue;
    }
    const coerced = coerce(spec, value);
    if ('expected' in coerced) {
      problem(key, `${key} must be ${coerced.expected}, got ${describe(value)}`);
      continue;
    }
    const read = coerced.value;
    if (spec.status === 'unsupported' && !isNeutral(spec, read)) {
      problem(
        key,
        `${key}: ${describe(value)} is a LLaMA-Factory setting webtune does not support (${spec.note}); remove it`,
      );
      continue;
    }
    if (spec.choices && typeof read === 'string') {
      if (!spec.choices.includes(read)) {
        problem(key, `${key} must be one of ${supportedChoices(spec)}, got ${describe(value)}`);
        continue;
      }
      if (spec.unsupportedChoices?.includes(read)) {
        problem(
          key,
          `${key}: ${describe(value)} is known to LLaMA-Factory but not supported by webtune; supported: ${supportedChoices(spec)}`,
        );
        continue;
      }
    }
    if (spec.status === 'ignored' && read !== spec.default && read !== null) {
      notes.push(`${key}: ${describe(read)} has no effect (${spec.note})`);
    }
    values[key] = read;
    given.add(key);
  }
  for (const key of options.required ?? REQUIRED_KEYS) {
    if (issues.some((issue) => issue.key === key)) continue;
    const value = values[key];
    if (value === undefined || value === null || value === '' || (Array.isArray(value) && value.length === 0))
      problem(key, `the config needs ${key} (${CONFIG_KEYS[key].note})`);
  }
  for (const [key, spec] of Object.entries(CONFIG_KEYS)) {
    if (!(key in values)) values[key] = defaultOf(spec);
  }
  // LLaMA-Factory's own derived defaults.
  if (values.lora_alpha === null) values.lora_alpha = 2 * (values.lora_rank as number);
  if (given.has('evaluation_strategy') && !given.has('eval_strategy'))
    values.eval_strategy = values.evaluation_strategy;
  values.evaluation_strategy = null;
  const config = values as LlamaFactoryConfig;
  checkRanges(config, problem);
  if (options.required === undefined) checkCombinations(config, problem);
  if (issues.length > 0) throw new ConfigError(issues);
  return { config, given, notes };
}

function defaultOf(spec: KeySpec): unknown {
  const value = spec.default ?? null;
  if (value === null) return null;
  if (spec.type === 'list' && typeof value === 'string') return splitList(value);
  return value;
}

type Problem = (key: string | null, message: string) => void;

function checkRanges(config: LlamaFactoryConfig, problem: Problem): void {
  const atLeastOne = [
    'lora_rank',
    'cutoff_len',
    'per_device_train_batch_size',
    'per_device_eval_batch_size',
    'gradient_accumulation_steps',
    'logging_steps',
    'save_steps',
    'max_new_tokens',
    'max_samples',
    'eval_steps',
    'save_total_limit',
    'adapter_size',
  ] as const;
  for (const key of atLeastOne) {
    const value = config[key];
    if (typeof value === 'number' && value < 1) problem(key, `${key} must be at least 1, got ${value}`);
  }
  if (config.logits_chunk_rows != null && !(config.logits_chunk_rows >= 0))
    problem(
      'logits_chunk_rows',
      `logits_chunk_rows must be 0 (all logits at once) or a number of rows per chunk, got ${config.logits_chunk_rows}`,
    );
  if (!(config.learning_rate >= 0))
    problem('learning_rate', `learning_rate must be at least 0, got ${config.learning_rate}`);
  if (!(config.lora_dropout >= 0 && config.lora_dropout < 1))
    problem('lora_dropout', `lora_dropout must be in [0, 1), got ${config.lora_dropout}`);
  if (!(config.val_size >= 0)) problem('val_size', `val_size must be at least 0, got ${config.val_size}`);
  // Transformers' set_seed (numpy) takes 0 .. 2^32 - 1.
  if (!(Number.isInteger(config.seed) && config.seed >= 0 && config.seed <= 2 ** 32 - 1))
    problem('seed', `seed must be an integer in [0, 4294967295], got ${config.seed}`);
  if (!(config.warmup_ratio >= 0 && config.warmup_ratio <= 1))
    problem('warmup_ratio', `warmup_ratio must be in [0, 1], got ${config.warmup_ratio}`);
  for (const key of ['adam_beta1', 'adam_beta2'] as const) {
    if (!(config[key] >= 0 && config[key] < 1)) problem(key, `${key} must be in [0, 1), got ${config[key]}`);
  }
  if (config.max_steps <= 0 && !(config.num_train_epochs > 0))
    problem('max_steps', 'set max_steps or a num_train_epochs above 0');
}

/** LLaMA-Factory's rules for `streaming: true`, and what webtune cannot stream. */
function checkStreaming(config: LlamaFactoryConfig, problem: Problem): void {
  if (!(config.max_steps > 0))
    problem(
      'max_steps',
      'please specify max_steps in streaming mode (a stream has no length to count epochs by)',
    );
  if (config.val_size > 0 && config.val_size < 1)
    problem(
      'val_size',
      `streaming mode should have an integer val_size (rows held out), got ${config.val_size}`,
    );
  if (config.max_samples != null) problem('max_samples', 'max_samples is incompatible with streaming');
  if (!(config.buffer_size >= 1))
    problem('buffer_size', `buffer_size must be at least 1, got ${config.buffer_size}`);
  if (config.stage === 'sft' && (config.packing === true || config.neat_packing === true))
    problem(
      config.neat_packing === true ? 'neat_packing' : 'packing',
      'sft packing chooses its packs among all examples (greedy knapsack) and cannot run under streaming; set streaming: false',
    );
  if (config.stage === 'ppo')
    problem('streaming', 'stage ppo reads its prompts into memory; set streaming: false');
  const referenceFree = config.stage === 'dpo' && ['orpo', 'simpo'].includes(String(config.pref_loss));
  if (
    (config.stage === 'dpo' || config.stage === 'kto') &&
    config.finetuning_type !== 'lora' &&
    !referenceFree
  )
    problem(
      'streaming',
      `stage ${config.stage} with finetuning_type ${config.finetuning_type} computes the reference log-probabilities of every row before training, which a stream cannot give; use finetuning_type lora (the reference is the adapter off) or streaming: false`,
    );
}

/** Settings that are fine alone but not together. */
function checkCombinations(config: LlamaFactoryConfig, problem: Problem): void {
  const adapters = config.adapter_name_or_path ? config.adapter_name_or_path.split(',') : [];
  if (adapters.length > 0 && config.finetuning_type !== 'lora') {
    problem(
      'adapter_name_or_path',
      `adapter_name_or_path needs finetuning_type lora (got ${config.finetuning_type}); merge it first with \`webtune export\``,
    );
  }
  if (adapters.length > 1)
    problem(
      'adapter_name_or_path',
      'adapter_name_or_path: one adapter only; merge the others first with `webtune export`',
    );
  if (adapters.length > 0 && config.train_from_scratch)
    problem('train_from_scratch', 'adapter_name_or_path and train_from_scratch exclude each other');
  if (config.packing === true && config.stage !== 'pt' && config.stage !== 'sft') {
    problem('packing', `packing: true is for stages pt and sft (got stage ${config.stage})`);
  }
  if (config.neat_packing === true && config.stage !== 'sft') {
    problem(
      'neat_packing',
      `neat_packing is for stage sft only, as in LLaMA-Factory (got stage ${config.stage})`,
    );
  }
  if (SCHEDULE_TYPES.includes(config.lr_scheduler_type as ScheduleType)) {
    const type = config.lr_scheduler_type as ScheduleType;
    for (const message of scheduleKwargsProblems(type, config.lr_scheduler_kwargs, config.learning_rate))
      problem('lr_scheduler_kwargs', message);
  }
  if (config.do_predict && config.stage !== 'sft') problem('do_predict', 'do_predict is for stage sft');
  if (config.do_predict && !config.eval_dataset)
    problem('do_predict', 'do_predict needs eval_dataset (the prompts to answer)');
  if (config.stage === 'ppo') {
    if (!config.reward_model)
      problem('reward_model', 'stage ppo needs reward_model: the output_dir of a stage rm run');
    else if (config.reward_model_type === 'api' && !/^https?:\/\//.test(config.reward_model))
      problem(
        'reward_model',
        `reward_model_type api needs reward_model to be the reward server's http(s) URL, got "${config.reward_model}"`,
      );
    if (config.finetuning_type !== 'lora')
      problem(
        'finetuning_type',
        'stage ppo trains a LoRA adapter here (the reference is the model with its adapter off)',
      );
    if (config.do_eval) problem('do_eval', 'stage ppo has no evaluation');
    if (!(config.ppo_epochs >= 1)) problem('ppo_epochs', `ppo_epochs must be >= 1, got ${config.ppo_epochs}`);
    if (!(config.ppo_buffer_size >= 1))
      problem('ppo_buffer_size', `ppo_buffer_size must be >= 1, got ${config.ppo_buffer_size}`);
  }
  if (config.streaming) checkStreaming(config, problem);
  if (config.use_dft_loss && config.stage !== 'sft')
    problem('use_dft_loss', `use_dft_loss is for stage sft (got ${config.stage})`);
  if (config.loraplus_lr_ratio != null && !(config.loraplus_lr_ratio > 0))
    problem('loraplus_lr_ratio', `loraplus_lr_ratio must be > 0, got ${config.loraplus_lr_ratio}`);
  if (config.pissa_init && config.finetuning_type !== 'lora')
    problem('pissa_init', 'pissa_init needs finetuning_type lora');
  // Without the conversion the adapter only fits the residual base this run computes, which is
  // never saved: with the original base it scores like noise. Refused rather than saved wrong.
  if (config.pissa_init && config.finetuning_type === 'lora' && !config.pissa_convert && config.do_train)
    problem(
      'pissa_convert',
      'pissa_init without pissa_convert: true would save an adapter for the residual base weights PiSSA makes, which no saved model has; set pissa_convert: true (a plain LoRA adapter of rank 2r for the original base, as PEFT converts it)',
    );
  if (config.pissa_convert && !config.pissa_init)
    problem('pissa_convert', 'pissa_convert needs pissa_init: true');
  for (const message of baseFormatOf(config).problems) problem('quantization_bit', message);
  if (config.use_dora && config.finetuning_type !== 'lora')
    problem('use_dora', 'use_dora needs finetuning_type lora');
}

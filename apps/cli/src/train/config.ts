/**
 * Reading a training config: YAML or JSON with LLaMA-Factory's keys, `--key value` overrides,
 * checks with one-line errors (unknown keys with the nearest known one, unsupported features,
 * wrong types), and the resolved config with every default filled in.
 */
import { existsSync, readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { UsageError } from '../ui.js';
import { CONFIG_KEYS, type KeySpec, nearestKey, REQUIRED_KEYS } from './config-keys.js';

export type RawConfig = Record<string, unknown>;

/** A checked config: every known key with its value or default, and notes on ignored keys. */
export interface ResolvedConfig {
  values: Record<string, unknown>;
  /** Keys given in the file or on the command line (the rest are defaults). */
  given: Set<string>;
  /** One line per ignored key that was set: what it would do and why it has no effect here. */
  notes: string[];
}

/** Parses a config file (.yaml / .yml / .json; other names are tried as YAML, which includes JSON). */
export function readConfigFile(path: string): RawConfig {
  if (!existsSync(path)) throw new UsageError(`config file "${path}" does not exist`);
  const text = readFileSync(path, 'utf8');
  let parsed: unknown;
  try {
    parsed = extname(path).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new UsageError(
      `${path} is not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'}: ${(error as Error).message}`,
    );
  }
  if (parsed === null || parsed === undefined) throw new UsageError(`${path} is empty`);
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new UsageError(`${path} must hold a mapping of keys to values (LLaMA-Factory's format)`);
  }
  return parsed as RawConfig;
}

/**
 * `--key value` / `--key=value` pairs after the config path. Values are read as YAML scalars
 * (`1e-4` a number, `true` a boolean); a key followed by another `--key` or nothing is `true`.
 */
export function parseOverrides(argv: readonly string[]): RawConfig {
  const overrides: RawConfig = {};
  for (let i = 0; i < argv.length; i++) {
    const argument = argv[i];
    if (!argument.startsWith('--') || argument.length === 2) {
      throw new UsageError(`unexpected argument "${argument}"; overrides look like --learning_rate 1e-4`);
    }
    const body = argument.slice(2);
    const equals = body.indexOf('=');
    let key: string;
    let text: string | undefined;
    if (equals >= 0) {
      key = body.slice(0, equals);
      text = body.slice(equals + 1);
    } else {
      key = body;
      const next = argv[i + 1];
      if (next !== undefined && !next.startsWith('--')) {
        text = next;
        i++;
      }
    }
    overrides[key.replace(/-/g, '_')] = text === undefined ? true : scalar(text);
  }
  return overrides;
}

function scalar(text: string): unknown {
  try {
    const value = parseYaml(text);
    return value === null && text.trim() !== 'null' && text.trim() !== '~' ? text : value;
  } catch {
    return text;
  }
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(JSON.stringify(value) ?? value);
}

/** Converts `value` to the key's type, or throws naming the key. */
function coerce(key: string, spec: KeySpec, value: unknown): unknown {
  if (value === null) return null;
  const wrong = (expected: string): never => {
    throw new UsageError(`${key} must be ${expected}, got ${describe(value)}`);
  };
  const asNumber = (v: unknown) =>
    typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
  switch (spec.type) {
    case 'string':
      return typeof value === 'string' || typeof value === 'number' ? String(value) : wrong('a string');
    case 'number': {
      const number = asNumber(value);
      return Number.isFinite(number) ? number : wrong('a number');
    }
    case 'integer': {
      const number = asNumber(value);
      return Number.isInteger(number) ? number : wrong('an integer');
    }
    case 'boolean':
      if (typeof value === 'boolean') return value;
      if (value === 'true' || value === 'false') return value === 'true';
      return wrong('true or false');
    case 'list':
      if (typeof value === 'string') return value;
      if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return value.join(',');
      return wrong('a string or a list of strings');
    case 'string-or-boolean':
      if (typeof value === 'boolean' || typeof value === 'string') return value;
      return wrong('true, false or a checkpoint folder');
    case 'number-or-list':
      if (typeof value === 'number') return String(value);
      if (typeof value === 'string') return value;
      if (Array.isArray(value) && value.every((item) => typeof item === 'number')) return value.join(',');
      return wrong('numbers separated by commas');
  }
}

/** Whether an unsupported key's value asks for nothing (its default, null, false, 0 or empty). */
function isNeutral(spec: KeySpec, value: unknown): boolean {
  return (
    value === null ||
    value === false ||
    value === '' ||
    value === spec.default ||
    (value === 0 && spec.default === null)
  );
}

/**
 * Checks a config (after overrides) and fills defaults. Unknown keys are errors with the nearest
 * known key; unsupported features and values are errors saying so; ignored keys become notes.
 */
export function resolveConfig(raw: RawConfig): ResolvedConfig {
  const values: Record<string, unknown> = {};
  const given = new Set<string>();
  const notes: string[] = [];
  for (const [key, value] of Object.entries(raw)) {
    const spec = Object.hasOwn(CONFIG_KEYS, key) ? CONFIG_KEYS[key] : undefined;
    if (!spec) {
      const near = nearestKey(key);
      throw new UsageError(
        `unknown config key "${key}"${near ? `; did you mean "${near}"?` : ''} (see \`webtune train --help\`)`,
      );
    }
    const coerced = coerce(key, spec, value);
    if (spec.status === 'unsupported' && !isNeutral(spec, coerced)) {
      throw new UsageError(
        `${key}: ${describe(value)} is a LLaMA-Factory setting webtune does not support (${spec.note}); remove it`,
      );
    }
    if (spec.choices && typeof coerced === 'string') {
      if (!spec.choices.includes(coerced)) {
        throw new UsageError(
          `${key} must be one of ${spec.choices.filter((c) => !spec.unsupportedChoices?.includes(c)).join(', ')}, got ${describe(value)}`,
        );
      }
      if (spec.unsupportedChoices?.includes(coerced)) {
        throw new UsageError(
          `${key}: ${describe(value)} is known to LLaMA-Factory but not supported by webtune; supported: ${spec.choices.filter((c) => !spec.unsupportedChoices?.includes(c)).join(', ')}`,
        );
      }
    }
    if (spec.status === 'ignored' && coerced !== spec.default && coerced !== null) {
      notes.push(`${key}: ${describe(coerced)} has no effect (${spec.note})`);
    }
    values[key] = coerced;
    given.add(key);
  }
  for (const key of REQUIRED_KEYS) {
    if (values[key] === undefined || values[key] === null || values[key] === '') {
      throw new UsageError(`the config needs ${key} (${CONFIG_KEYS[key].note})`);
    }
  }
  for (const [key, spec] of Object.entries(CONFIG_KEYS)) {
    if (!(key in values) && spec.status === 'supported') values[key] = spec.default ?? null;
  }
  if (values.lora_alpha === null) values.lora_alpha = 2 * (values.lora_rank as number);
  if (given.has('evaluation_strategy') && !given.has('eval_strategy'))
    values.eval_strategy = values.evaluation_strategy;
  delete values.evaluation_strategy;
  checkRanges(values);
  return { values, given, notes };
}

function checkRanges(values: Record<string, unknown>): void {
  const positive = [
    'lora_rank',
    'cutoff_len',
    'per_device_train_batch_size',
    'gradient_accumulation_steps',
    'logging_steps',
    'save_steps',
    'per_device_eval_batch_size',
    'max_new_tokens',
  ];
  for (const key of positive) {
    const value = values[key];
    if (typeof value === 'number' && value < 1)
      throw new UsageError(`${key} must be at least 1, got ${value}`);
  }
  for (const key of ['max_samples', 'eval_steps', 'save_total_limit'] as const) {
    const value = values[key];
    if (typeof value === 'number' && value < 1)
      throw new UsageError(`${key} must be at least 1, got ${value}`);
  }
  const learningRate = values.learning_rate as number;
  if (!(learningRate >= 0)) throw new UsageError(`learning_rate must be at least 0, got ${learningRate}`);
  const dropout = values.lora_dropout as number;
  if (!(dropout >= 0 && dropout < 1)) throw new UsageError(`lora_dropout must be in [0, 1), got ${dropout}`);
  const valSize = values.val_size as number;
  if (!(valSize >= 0)) throw new UsageError(`val_size must be at least 0, got ${valSize}`);
  const seed = values.seed as number;
  // Transformers' set_seed (numpy) takes 0 .. 2^32 - 1.
  if (!(seed >= 0 && seed <= 2 ** 32 - 1))
    throw new UsageError(`seed must be an integer in [0, 4294967295], got ${seed}`);
  if ((values.max_steps as number) <= 0 && !((values.num_train_epochs as number) > 0)) {
    throw new UsageError('set max_steps or a num_train_epochs above 0');
  }
}

/** The resolved config as YAML, grouped by section, given keys first within each. */
export function configToYaml(resolved: ResolvedConfig): string {
  const sections = new Map<string, Record<string, unknown>>();
  for (const [key, spec] of Object.entries(CONFIG_KEYS)) {
    if (!(key in resolved.values)) continue;
    const value = resolved.values[key];
    if (!resolved.given.has(key) && spec.status !== 'supported') continue;
    const section = sections.get(spec.section) ?? {};
    section[key] = value;
    sections.set(spec.section, section);
  }
  const parts: string[] = [];
  for (const [section, entries] of sections) {
    parts.push(`### ${section}\n${stringifyYaml(entries, { lineWidth: 0 }).trimEnd()}`);
  }
  return `${parts.join('\n\n')}\n`;
}

/** Comma-separated names as a list (`"a, b"` -> ['a', 'b']). */
export function listOf(value: unknown): string[] {
  if (value === null || value === undefined) return [];
  return String(value)
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

/** Command-line parsing shared by the commands: node:util parseArgs plus checked numbers. */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { UsageError } from './ui.js';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** Parsed options and positionals; unknown options are an error (exit 2). */
export interface ParsedCommandLine {
  values: Values;
  positionals: string[];
}

/**
 * Parses `argv` strictly. `positionals` is how many positional arguments the command takes
 * ([min, max]); a wrong count is a UsageError naming what was expected.
 */
export function parseCommandLine(
  argv: string[],
  options: OptionSpec,
  positionals: { min: number; max: number; what?: string } = { min: 0, max: 0 },
): ParsedCommandLine {
  const parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: positionals.max > 0 });
  const count = parsed.positionals.length;
  if (count < positionals.min) throw new UsageError(`missing ${positionals.what ?? 'argument'}`);
  if (count > positionals.max) {
    throw new UsageError(`unexpected argument "${parsed.positionals[positionals.max]}"`);
  }
  return { values: parsed.values as Values, positionals: parsed.positionals };
}

/** A string option that must be given. */
export function required(values: Values, name: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value.length === 0) throw new UsageError(`--${name} is required`);
  return value;
}

/** A string option, or undefined. */
export function optional(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

/** A number option, checked: finite, and within [min, max] when given; `integer` rejects fractions. */
export function numberOption(
  values: Values,
  name: string,
  check: { min?: number; max?: number; integer?: boolean } = {},
): number | undefined {
  const text = values[name];
  if (text === undefined) return undefined;
  if (typeof text !== 'string') throw new UsageError(`--${name} needs a value`);
  const value = Number(text);
  const kind = check.integer ? 'an integer' : 'a number';
  if (text.trim() === '' || !Number.isFinite(value) || (check.integer && !Number.isInteger(value))) {
    throw new UsageError(`--${name} must be ${kind}, got "${text}"`);
  }
  if (check.min !== undefined && value < check.min) {
    throw new UsageError(`--${name} must be at least ${check.min}, got ${value}`);
  }
  if (check.max !== undefined && value > check.max) {
    throw new UsageError(`--${name} must be at most ${check.max}, got ${value}`);
  }
  return value;
}

/** Sampling options shared by generate, chat and bench generate. */
export const SAMPLING_OPTIONS: OptionSpec = {
  'max-new-tokens': { type: 'string' },
  temperature: { type: 'string' },
  'top-p': { type: 'string' },
  'top-k': { type: 'string' },
  'repetition-penalty': { type: 'string' },
  seed: { type: 'string' },
};

/** The sampling options of the command line, as @webtune/nn's GenerateOptions fields. */
export function samplingFrom(values: Values, defaults: { maxNewTokens: number }) {
  return {
    maxNewTokens: numberOption(values, 'max-new-tokens', { integer: true, min: 0 }) ?? defaults.maxNewTokens,
    temperature: numberOption(values, 'temperature', { min: 0 }) ?? 0,
    topP: numberOption(values, 'top-p', { min: 0, max: 1 }),
    topK: numberOption(values, 'top-k', { integer: true, min: 0 }),
    repetitionPenalty: numberOption(values, 'repetition-penalty', { min: 0 }),
    seed: numberOption(values, 'seed', { integer: true, min: 0 }),
  };
}

/** Help text of the sampling options. */
export const SAMPLING_HELP = `  --max-new-tokens N       most tokens to generate
  --temperature T          0 is greedy (default); above 0 samples
  --top-p P, --top-k K     nucleus / top-k sampling
  --repetition-penalty R   above 1 discourages repeats
  --seed N                 sampling seed (same seed, same text)`;

/** `--quantization-bit 8|4`: run inference on a frozen Q8_0 / Q4_0 base (see train/base-precision.ts). */
export const QUANTIZATION_OPTIONS: OptionSpec = { 'quantization-bit': { type: 'string' } };
export const QUANTIZATION_HELP =
  '  --quantization-bit N     8 or 4: hold the base in Q8_0 / Q4_0 blocks (less memory)';

/** The base format `--quantization-bit` asks for ('f32' when absent). */
export function baseFormatFrom(values: Values): 'f32' | 'q8_0' | 'q4_0' {
  const given = optional(values, 'quantization-bit');
  if (given === undefined) return 'f32';
  if (given === '8') return 'q8_0';
  if (given === '4') return 'q4_0';
  throw new UsageError(`--quantization-bit must be 8 or 4, got "${given}"`);
}

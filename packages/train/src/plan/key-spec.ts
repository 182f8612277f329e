/**
 * How webtune reads one key of a LLaMA-Factory config: its type, whether webtune uses it, its
 * default and, for a key it does not use, why. Each key of the tables is one line made with the
 * helpers below, so changing what a key does here is a one-line change.
 */

export type KeyType =
  | 'string'
  | 'number'
  | 'integer'
  | 'boolean'
  /** Comma-separated names or a YAML list of strings; read as a list. */
  | 'list'
  /** A mapping (`lr_scheduler_kwargs`) or a JSON text of one. */
  | 'mapping'
  | 'string-or-boolean'
  /** Comma-separated numbers or a YAML list of numbers; read as a list. */
  | 'number-or-list';

export type KeyStatus =
  /** Read and used. */
  | 'supported'
  /** Accepted and without effect here (the note says why); configs that set it still run. */
  | 'ignored'
  /** Known, but the feature does not exist in webtune: an error unless the value is neutral. */
  | 'unsupported';

/** Which of LLaMA-Factory's argument groups a key belongs to (sections of training_args.yaml). */
export type KeySection = 'model' | 'method' | 'dataset' | 'output' | 'train' | 'eval' | 'predict';

export interface KeySpec {
  section: KeySection;
  type: KeyType;
  status: KeyStatus;
  /** The value used when the key is absent (LLaMA-Factory's default unless noted); undefined: required. */
  default?: unknown;
  /** Allowed values (strings). */
  choices?: readonly string[];
  /** Values of `choices` that are known but not supported. */
  unsupportedChoices?: readonly string[];
  /** Why a key is ignored or unsupported, or what it means. */
  note?: string;
}

/** A key spec that remembers its type and default for the typed config. */
export type TypedKeySpec<T extends KeyType, D> = KeySpec & { type: T; default: D };

export function supported<T extends KeyType, D>(
  section: KeySection,
  type: T,
  defaultValue: D,
  extra: Omit<Partial<KeySpec>, 'type' | 'default'> = {},
): TypedKeySpec<T, D> {
  return { ...extra, section, type, status: 'supported', default: defaultValue };
}

export function ignored<T extends KeyType, D>(
  section: KeySection,
  type: T,
  note: string,
  defaultValue: D,
): TypedKeySpec<T, D> {
  return { section, type, status: 'ignored', note, default: defaultValue };
}

export function unsupported<T extends KeyType, D>(
  section: KeySection,
  type: T,
  note: string,
  defaultValue: D,
): TypedKeySpec<T, D> {
  return { section, type, status: 'unsupported', note, default: defaultValue };
}

/** The TypeScript type of a key's value after reading. */
export type ValueOfType<T extends KeyType> = T extends 'string'
  ? string
  : T extends 'number' | 'integer'
    ? number
    : T extends 'boolean'
      ? boolean
      : T extends 'list'
        ? string[]
        : T extends 'mapping'
          ? Record<string, unknown>
          : T extends 'string-or-boolean'
            ? string | boolean
            : number[];

/** A key's resolved value: null only where its default is null. */
export type ValueOfKey<S> =
  S extends TypedKeySpec<infer T, infer D>
    ? null extends D
      ? ValueOfType<T> | null
      : ValueOfType<T>
    : never;

// Reasons shared by many keys.
export const PRECISION = 'webtune trains in float32 on WebGPU';
export const SINGLE_DEVICE = 'webtune trains on one WebGPU device';
export const NO_REPORTERS =
  'webtune writes trainer_log.jsonl and training_loss.svg; there are no external reporters';
export const PERFORMANCE = 'a performance switch of PyTorch back ends; webtune has its own kernels';
export const TEXT_ONLY = 'webtune trains text-only models';
export const HUB = 'webtune does not push to a hub; copy output_dir or use `webtune export`';
export const OTHER_BACKEND = 'an inference or training back end other than webtune';
export const PROFILER = 'the PyTorch profiler; use `webtune bench` for timings';
export const ONLY_ADAMW = 'webtune implements AdamW only';

/**
 * Every key of a LLaMA-Factory config (its ModelArguments, DataArguments, FinetuningArguments,
 * GeneratingArguments and the Transformers TrainingArguments keys its examples and web UI write)
 * as webtune reads it, and the typed config those keys make.
 */
import { DATA_KEYS } from './data-keys.js';
import { FINETUNING_KEYS } from './finetuning-keys.js';
import type { KeySpec, ValueOfKey } from './key-spec.js';
import { MODEL_KEYS } from './model-keys.js';
import { GENERATING_KEYS, TRAINING_KEYS } from './training-keys.js';

const ALL_KEYS = {
  ...MODEL_KEYS,
  ...FINETUNING_KEYS,
  ...DATA_KEYS,
  ...TRAINING_KEYS,
  ...GENERATING_KEYS,
};

/** Every key webtune knows, by LLaMA-Factory's name. */
export const CONFIG_KEYS: Readonly<Record<string, KeySpec>> = ALL_KEYS;

/** A LLaMA-Factory config after reading: every known key with its value or default. */
export type LlamaFactoryConfig = {
  -readonly [K in keyof typeof ALL_KEYS]: ValueOfKey<(typeof ALL_KEYS)[K]>;
};

export type ConfigKey = keyof LlamaFactoryConfig;

/** Keys LLaMA-Factory reads that a run cannot go without. */
export const REQUIRED_KEYS = ['model_name_or_path', 'dataset', 'output_dir'] as const;

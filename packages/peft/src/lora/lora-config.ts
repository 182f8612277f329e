import { PeftError } from '../errors.js';
import type { ModuleSelector } from '../target-modules.js';

/**
 * How LoRA matrices start. `true`: A Kaiming-uniform (a = sqrt(5), bound 1/sqrt(in)), B zero, so
 * training starts at the base model; `'gaussian'`: A ~ N(0, 1/r), B zero; `'pissa'`: A and B from
 * the top r singular triplets of the weight (exact SVD on the host), the base weight replaced by
 * the residual; `'pissa_niter_<n>'`: the same from a randomized SVD with n power iterations;
 * `false`: A and B random normal (PEFT uses this for tests: the adapter is not a no-op).
 */
export type LoraInit = boolean | 'gaussian' | 'pissa' | `pissa_niter_${number}`;

/**
 * A LoRA adapter's configuration with Hugging Face PEFT's key names (adapter_config.json), so it
 * serialises one to one. Build one with `loraConfig()`, read one with `parseLoraConfig()`.
 */
export interface LoraConfig {
  peft_type: 'LORA';
  /** `CAUSAL_LM` for the models of @webtune/nn. */
  task_type: string | null;
  /** The base model's name or path, written for PEFT to find the base (not read here). */
  base_model_name_or_path: string | null;
  /** PEFT version that wrote the file, when known. */
  revision: string | null;
  /** Rank of the update B A (default 8). */
  r: number;
  /** Scale numerator: the update is (lora_alpha / r) B A (default 8, like PEFT; LLaMA-Factory uses 2 r). */
  lora_alpha: number;
  /** Dropout on the adapter's input during training (0 disables it). */
  lora_dropout: number;
  /**
   * Modules to adapt: a regular expression matching the whole name, a list of names or suffixes,
   * or `all-linear` / `all` for every linear layer but the output head. Null picks PEFT's default
   * for the architecture (q_proj and v_proj for the Llama family).
   */
  target_modules: ModuleSelector | null;
  /** Modules never adapted, in the same two forms. */
  exclude_modules: ModuleSelector | null;
  /** Only adapt layers with these indices (applies to a list of targets). */
  layers_to_transform: number | number[] | null;
  /** Name of the layer list for layers_to_transform (default: the first `.<name>.<index>.` in the path). */
  layers_pattern: string | string[] | null;
  /** Rank per module, overriding r: keys are regular expressions matched against the name's end. */
  rank_pattern: Record<string, number>;
  /** Alpha per module, overriding lora_alpha, matched like rank_pattern. */
  alpha_pattern: Record<string, number>;
  /** Which biases train. Only `none` is supported (the Llama family's linears rarely have biases). */
  bias: 'none';
  /** Weights stored [in, out] (GPT-2's Conv1D). Always false for the models here. */
  fan_in_fan_out: false;
  /** Modules trained whole and saved in the adapter file (e.g. `lm_head`, `embed_tokens`). */
  modules_to_save: string[] | null;
  init_lora_weights: LoraInit;
  /** Rank-stabilised scale lora_alpha / sqrt(r) instead of lora_alpha / r. */
  use_rslora: boolean;
  /** DoRA: a trained magnitude per output row times the normalised direction W + s B A. */
  use_dora: boolean;
  /** PEFT writes true when saving; it does not change how the adapter loads here. */
  inference_mode: boolean;
}

/** PEFT's defaults (peft.LoraConfig), with `task_type` CAUSAL_LM. */
export const LORA_DEFAULTS: LoraConfig = {
  peft_type: 'LORA',
  task_type: 'CAUSAL_LM',
  base_model_name_or_path: null,
  revision: null,
  r: 8,
  lora_alpha: 8,
  lora_dropout: 0,
  target_modules: null,
  exclude_modules: null,
  layers_to_transform: null,
  layers_pattern: null,
  rank_pattern: {},
  alpha_pattern: {},
  bias: 'none',
  fan_in_fan_out: false,
  modules_to_save: null,
  init_lora_weights: true,
  use_rslora: false,
  use_dora: false,
  inference_mode: false,
};

/** PEFT's default targets per model_type when target_modules is null. */
export const DEFAULT_LORA_TARGETS: Record<string, string[]> = {
  llama: ['q_proj', 'v_proj'],
  mistral: ['q_proj', 'v_proj'],
  qwen2: ['q_proj', 'v_proj'],
  qwen3: ['q_proj', 'v_proj'],
  gemma2: ['q_proj', 'v_proj'],
  gemma3_text: ['q_proj', 'v_proj'],
};

/** A LoRA config from PEFT's defaults and the given fields, validated. */
export function loraConfig(fields: Partial<Omit<LoraConfig, 'peft_type'>> = {}): LoraConfig {
  const config: LoraConfig = {
    ...LORA_DEFAULTS,
    rank_pattern: {},
    alpha_pattern: {},
    ...stripUndefined(fields),
    peft_type: 'LORA',
  };
  validateLoraConfig(config);
  return config;
}

/**
 * Reads a LoRA adapter_config.json (text or object). Keys this package does not know are
 * ignored (newer PEFT versions add some); keys it knows are checked, and features it does not
 * implement (bias other than none, fan_in_fan_out, lora_bias, layer_replication,
 * target_parameters) are refused with an error naming the key.
 */
export function parseLoraConfig(
  source: string | Record<string, unknown>,
  fileName = 'adapter_config.json',
): LoraConfig {
  const json = typeof source === 'string' ? parseJson(source, fileName) : source;
  const peftType = json.peft_type ?? 'LORA';
  if (peftType !== 'LORA') {
    throw new PeftError(`${fileName}: peft_type is ${JSON.stringify(peftType)}, not LORA`);
  }
  const refuse = (key: string, ok: (value: unknown) => boolean, why: string) => {
    if (key in json && json[key] != null && !ok(json[key])) {
      throw new PeftError(`${fileName}: ${key} = ${JSON.stringify(json[key])} is not supported (${why})`);
    }
  };
  refuse('lora_bias', (v) => v === false, 'trainable biases on lora_B');
  refuse('layer_replication', (v) => Array.isArray(v) && v.length === 0, 'layer replication');
  refuse('target_parameters', (v) => Array.isArray(v) && v.length === 0, 'adapters on bare parameters');
  refuse('use_qalora', (v) => v === false, 'QA-LoRA');
  const fields: Partial<LoraConfig> = {};
  const known = Object.keys(LORA_DEFAULTS) as (keyof LoraConfig)[];
  for (const key of known) {
    if (key in json && json[key] !== undefined) {
      (fields as Record<string, unknown>)[key] =
        json[key] === null && key !== 'task_type' ? defaultOf(key) : json[key];
    }
  }
  // PEFT writes sets (all-linear resolved) as lists; older files may hold a single string.
  try {
    return loraConfig({ ...fields, peft_type: undefined } as Partial<LoraConfig>);
  } catch (error) {
    if (error instanceof PeftError) throw new PeftError(`${fileName}: ${error.message}`);
    throw error;
  }
}

/**
 * The config as adapter_config.json content (PEFT's keys). `exclude_modules` is left out when
 * unset: PEFT before 0.14 does not know the key.
 */
export function loraConfigToJson(config: LoraConfig): Record<string, unknown> {
  const json: Record<string, unknown> = {
    ...config,
    target_modules: Array.isArray(config.target_modules) ? [...config.target_modules] : config.target_modules,
  };
  if (config.exclude_modules == null) delete json.exclude_modules;
  return json;
}

/** The scale of a module's update: alpha / r, or alpha / sqrt(r) with rsLoRA. */
export function loraScaling(r: number, alpha: number, useRslora: boolean): number {
  return useRslora ? alpha / Math.sqrt(r) : alpha / r;
}

/** Checks ranges and types; throws a PeftError naming the field. */
export function validateLoraConfig(config: LoraConfig): void {
  const positiveInteger = (value: unknown, name: string) => {
    if (!Number.isInteger(value) || (value as number) <= 0) {
      throw new PeftError(`LoRA config: ${name} must be a positive integer, got ${JSON.stringify(value)}`);
    }
  };
  const finite = (value: unknown, name: string) => {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new PeftError(`LoRA config: ${name} must be a finite number, got ${JSON.stringify(value)}`);
    }
  };
  positiveInteger(config.r, 'r');
  finite(config.lora_alpha, 'lora_alpha');
  finite(config.lora_dropout, 'lora_dropout');
  if (config.lora_dropout < 0 || config.lora_dropout >= 1) {
    throw new PeftError(`LoRA config: lora_dropout must be in [0, 1), got ${config.lora_dropout}`);
  }
  for (const [key, value] of Object.entries(config.rank_pattern))
    positiveInteger(value, `rank_pattern["${key}"]`);
  for (const [key, value] of Object.entries(config.alpha_pattern)) finite(value, `alpha_pattern["${key}"]`);
  checkSelector(config.target_modules, 'target_modules');
  checkSelector(config.exclude_modules, 'exclude_modules');
  const layers = config.layers_to_transform;
  if (
    layers != null &&
    !(Number.isInteger(layers) || (Array.isArray(layers) && layers.every(Number.isInteger)))
  ) {
    throw new PeftError(`LoRA config: layers_to_transform must be an integer or a list of integers`);
  }
  if (layers != null && typeof config.target_modules === 'string' && !isShorthand(config.target_modules)) {
    throw new PeftError(
      'LoRA config: layers_to_transform only applies to a list of target_modules, not to a regular expression (PEFT refuses it too)',
    );
  }
  if (
    config.modules_to_save != null &&
    !(Array.isArray(config.modules_to_save) && config.modules_to_save.every(isString))
  ) {
    throw new PeftError('LoRA config: modules_to_save must be a list of module names');
  }
  if (config.bias !== 'none') {
    throw new PeftError(`LoRA config: bias "${String(config.bias)}" is not supported (only "none")`);
  }
  if (config.fan_in_fan_out !== false) {
    throw new PeftError(
      'LoRA config: fan_in_fan_out is for GPT-2 Conv1D weights; the models here store [out, in]',
    );
  }
  const init = config.init_lora_weights;
  if (
    !(
      typeof init === 'boolean' ||
      init === 'gaussian' ||
      init === 'pissa' ||
      /^pissa_niter_\d+$/.test(String(init))
    )
  ) {
    throw new PeftError(
      `LoRA config: init_lora_weights ${JSON.stringify(init)} is not supported (true, false, "gaussian", "pissa", "pissa_niter_<n>")`,
    );
  }
  if (config.use_dora && typeof init === 'string' && init.startsWith('pissa')) {
    // PEFT allows it, but DoRA's magnitude then starts from the residual weight's norms; keep the
    // combination out until someone needs it and a test pins its meaning.
    throw new PeftError('LoRA config: use_dora with PiSSA initialisation is not supported');
  }
}

function checkSelector(selector: unknown, name: string): void {
  if (selector == null || typeof selector === 'string') return;
  if (!Array.isArray(selector) || !selector.every(isString)) {
    throw new PeftError(`LoRA config: ${name} must be a string (a regular expression) or a list of names`);
  }
}

function isShorthand(value: string): boolean {
  return value.toLowerCase() === 'all-linear' || value === 'all';
}

const isString = (value: unknown): value is string => typeof value === 'string';

function defaultOf(key: keyof LoraConfig): unknown {
  const value = LORA_DEFAULTS[key];
  return typeof value === 'object' && value !== null ? structuredClone(value) : value;
}

function stripUndefined<T extends object>(fields: T): Partial<T> {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)) as Partial<T>;
}

function parseJson(text: string, fileName: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new PeftError(`${fileName} is not valid JSON: ${String(error)}`);
  }
  if (!json || typeof json !== 'object' || Array.isArray(json))
    throw new PeftError(`${fileName} must hold a JSON object`);
  return json as Record<string, unknown>;
}

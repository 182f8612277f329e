import { PeftError } from '../errors.js';
import { ACTIVATIONS, type Activation } from '../functional.js';
import type { ModuleSelector } from '../target-modules.js';

/**
 * A bottleneck adapter (Houlsby et al., 2019; the "Series Adapter" of LLM-Adapters): after a
 * block, y <- y + scaling * up(act(down(drop(y)))), with a down-projection to `bottleneck_size`
 * and an up-projection back, both with biases. The up-projection starts at zero, so training
 * starts from the base model. Keys follow LLM-Adapters' BottleneckConfig. Hugging Face PEFT has
 * no bottleneck adapter: these files load here, not in PEFT.
 */
export interface BottleneckConfig {
  peft_type: 'BOTTLENECK';
  task_type: string | null;
  base_model_name_or_path: string | null;
  /** Width of the bottleneck (default 64). */
  bottleneck_size: number;
  /** Nonlinearity between the projections (default relu). */
  non_linearity: Activation;
  /** Dropout on the adapter's input during training. */
  adapter_dropout: number;
  /** Multiplies the adapter's output (default 1). */
  scaling: number;
  /**
   * Blocks the adapter follows: `self_attn` (after attention), `mlp` (after the MLP), or both
   * (the default); same matching rules as LoRA's target_modules.
   */
  target_modules: ModuleSelector;
  exclude_modules: ModuleSelector | null;
  layers_to_transform: number | number[] | null;
  layers_pattern: string | string[] | null;
  modules_to_save: string[] | null;
  /** true: down Kaiming-uniform, up zero (output unchanged at the start); false: both random. */
  init_weights: boolean;
  inference_mode: boolean;
}

export const BOTTLENECK_DEFAULTS: BottleneckConfig = {
  peft_type: 'BOTTLENECK',
  task_type: 'CAUSAL_LM',
  base_model_name_or_path: null,
  bottleneck_size: 64,
  non_linearity: 'relu',
  adapter_dropout: 0,
  scaling: 1,
  target_modules: ['self_attn', 'mlp'],
  exclude_modules: null,
  layers_to_transform: null,
  layers_pattern: null,
  modules_to_save: null,
  init_weights: true,
  inference_mode: false,
};

/** A bottleneck adapter config from the defaults and the given fields, validated. */
export function bottleneckConfig(
  fields: Partial<Omit<BottleneckConfig, 'peft_type'>> = {},
): BottleneckConfig {
  const defined = Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
  const config: BottleneckConfig = { ...BOTTLENECK_DEFAULTS, ...defined, peft_type: 'BOTTLENECK' };
  validateBottleneckConfig(config);
  return config;
}

/** Reads a bottleneck adapter_config.json; unknown keys are ignored. */
export function parseBottleneckConfig(
  source: string | Record<string, unknown>,
  fileName = 'adapter_config.json',
): BottleneckConfig {
  const json = typeof source === 'string' ? (JSON.parse(source) as Record<string, unknown>) : source;
  if (json.peft_type !== 'BOTTLENECK') throw new PeftError(`${fileName}: peft_type is not BOTTLENECK`);
  const fields: Record<string, unknown> = {};
  for (const key of Object.keys(BOTTLENECK_DEFAULTS)) {
    if (key in json && json[key] !== null && key !== 'peft_type') fields[key] = json[key];
  }
  // LLM-Adapters names the width adapter_size in some versions.
  if (!('bottleneck_size' in fields) && typeof json.adapter_size === 'number')
    fields.bottleneck_size = json.adapter_size;
  try {
    return bottleneckConfig(fields as Partial<BottleneckConfig>);
  } catch (error) {
    if (error instanceof PeftError) throw new PeftError(`${fileName}: ${error.message}`);
    throw error;
  }
}

export function validateBottleneckConfig(config: BottleneckConfig): void {
  if (!Number.isInteger(config.bottleneck_size) || config.bottleneck_size <= 0) {
    throw new PeftError(
      `bottleneck adapter: bottleneck_size must be a positive integer, got ${config.bottleneck_size}`,
    );
  }
  if (!(config.non_linearity in ACTIVATIONS)) {
    throw new PeftError(
      `bottleneck adapter: non_linearity "${config.non_linearity}" is not one of ${Object.keys(ACTIVATIONS).join(', ')}`,
    );
  }
  if (!(config.adapter_dropout >= 0 && config.adapter_dropout < 1)) {
    throw new PeftError(
      `bottleneck adapter: adapter_dropout must be in [0, 1), got ${config.adapter_dropout}`,
    );
  }
  if (typeof config.scaling !== 'number' || !Number.isFinite(config.scaling)) {
    throw new PeftError(`bottleneck adapter: scaling must be a finite number, got ${config.scaling}`);
  }
}

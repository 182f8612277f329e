import type { CausalLM, ModelFileSink, ModelFileSource } from '@webtune/nn';
import {
  type FloatDtype,
  fromFloat32,
  readSafetensors,
  toFloat32,
  writeSafetensors,
} from '@webtune/safetensors';
import type { Tensor } from '@webtune/tensors';
import { parseBottleneckConfig } from '../adapter/adapter-config.js';
import { PeftError } from '../errors.js';
import { type LoraConfig, loraConfigToJson, parseLoraConfig } from '../lora/lora-config.js';
import { PEFT_PREFIX, type PeftConfig, PeftModel } from '../peft-model.js';

/*
 * Hugging Face PEFT's adapter folder: adapter_config.json and adapter_model.safetensors
 * (`__metadata__` {"format": "pt"}), tensors named `base_model.model.<module>.lora_A.weight`
 * [r, in], `...lora_B.weight` [out, r], `...lora_magnitude_vector` [out] for DoRA, and
 * modules_to_save under the module's own names; the adapter name is not in the file.
 */

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';

export interface SaveAdapterOptions {
  /** Which adapter (default: the active one). */
  adapterName?: string;
  /** dtype on disk (default F32). */
  dtype?: 'F32' | 'F16' | 'BF16';
  /** Written as base_model_name_or_path (PEFT uses it to find the base model). */
  baseModelNameOrPath?: string;
  /**
   * For a PiSSA adapter: save a plain LoRA adapter of rank 2r that applies to the original
   * (pre-PiSSA) base weights, as PEFT's `path_initial_model_for_weight_conversion` does:
   * A' = [A; A0], B' = [B, -B0], lora_alpha doubled. Without it the file needs the residual
   * base model this session created.
   */
  convertPissaToLora?: boolean;
}

/** Writes an adapter as PEFT does; returns the file names written. */
export async function saveAdapter(
  peft: PeftModel,
  sink: ModelFileSink,
  options: SaveAdapterOptions = {},
): Promise<string[]> {
  const name = options.adapterName ?? peft.activeAdapter;
  if (name === null) throw new PeftError('saveAdapter: no adapter is active; pass adapterName');
  let config: PeftConfig = structuredClone(peft.config(name));
  const dtype = options.dtype ?? 'F32';
  if (!['F32', 'F16', 'BF16'].includes(dtype))
    throw new PeftError(`saveAdapter: dtype must be F32, F16 or BF16, got ${dtype}`);
  const state = peft.adapterStateDict(name);
  const values = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [key, tensor] of state) {
    values.set(key, { shape: [...tensor.shape], data: (await readFloat32(tensor)).slice() });
  }
  if (options.convertPissaToLora) {
    if (config.peft_type !== 'LORA' || !String(config.init_lora_weights).startsWith('pissa')) {
      throw new PeftError(
        `saveAdapter: adapter "${name}" was not initialised with PiSSA; nothing to convert`,
      );
    }
    const initial = peft.pissaInitialFactors(name);
    if (!initial)
      throw new PeftError(
        `saveAdapter: the initial PiSSA factors of "${name}" are not known in this session`,
      );
    config = convertPissaConfig(config);
    for (const [path, factors] of initial) convertPissaTensors(values, `${PEFT_PREFIX}${path}.`, factors);
  }
  const tensors = [...values].map(([key, value]) => ({
    name: key,
    dtype,
    shape: value.shape,
    data: fromFloat32(value.data, dtype as FloatDtype),
  }));
  const json: Record<string, unknown> =
    config.peft_type === 'LORA'
      ? loraConfigToJson(config)
      : { ...(config as unknown as Record<string, unknown>) };
  json.inference_mode = true;
  if (options.baseModelNameOrPath !== undefined) json.base_model_name_or_path = options.baseModelNameOrPath;
  await sink.writeFile(ADAPTER_CONFIG_FILE, `${JSON.stringify(json, null, 2)}\n`);
  await sink.writeFile(ADAPTER_WEIGHTS_FILE, writeSafetensors(tensors, { format: 'pt' }));
  return [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE];
}

export interface LoadAdapterOptions {
  /** Name of the loaded adapter (default `default`). */
  adapterName?: string;
  /** Make it the active adapter (default true). */
  activate?: boolean;
}

/**
 * Loads a PEFT adapter folder into `target`: a CausalLM (a new PeftModel wraps it) or a
 * PeftModel (one more named adapter). Unknown config keys are ignored. Tensors are checked
 * against what the config implies for this model before anything changes: a tensor that is
 * missing, one that matches no adapted module, or one of the wrong shape is an error naming it.
 * What it opened from `source` is released (`source.close()`) before it returns or throws.
 */
export async function loadAdapter(
  target: CausalLM | PeftModel,
  source: ModelFileSource,
  options: LoadAdapterOptions = {},
): Promise<PeftModel> {
  const name = options.adapterName ?? 'default';
  const config = await readAdapterConfig(source);
  if (!(await source.exists(ADAPTER_WEIGHTS_FILE))) {
    const hasBin = await source.exists('adapter_model.bin');
    throw new PeftError(
      `${source.location} has no ${ADAPTER_WEIGHTS_FILE}` +
        (hasBin
          ? ' (only adapter_model.bin, a pickle, which is not read: re-save with safe_serialization=True)'
          : ''),
    );
  }
  const peft = target instanceof PeftModel ? target : new PeftModel(target);
  const model = peft.model;
  const tensors = new Map<string, Tensor>();
  let added = false;
  try {
    const file = await readSafetensors(await source.open(ADAPTER_WEIGHTS_FILE), {
      fileName: ADAPTER_WEIGHTS_FILE,
    });
    for (const info of file.tensors) {
      if (!['F32', 'F16', 'BF16', 'F64'].includes(info.dtype)) {
        throw new PeftError(
          `${ADAPTER_WEIGHTS_FILE}: ${info.name} is ${info.dtype}; adapter tensors must be floating point`,
        );
      }
      // DoRA magnitudes: PEFT writes `lora_magnitude_vector`; accept the `.weight` form of its in-memory name too.
      const key = info.name.replace(/\.lora_magnitude_vector\.weight$/, '.lora_magnitude_vector');
      if (!key.startsWith(PEFT_PREFIX)) {
        throw new PeftError(
          `${ADAPTER_WEIGHTS_FILE}: tensor ${info.name} does not start with "${PEFT_PREFIX}" (not a PEFT adapter file?)`,
        );
      }
      if (tensors.has(key)) throw new PeftError(`${ADAPTER_WEIGHTS_FILE}: ${key} appears twice`);
      const entry = await file.read(info.name);
      tensors.set(key, model.device.fromArray(toFloat32(entry), entry.shape, 'f32').keep());
    }
    await peft.addAdapter(name, config, { tensors });
    added = true;
  } catch (error) {
    // Tensors the model did not take are freed (addAdapter checks everything before it changes the
    // model; a name already taken keeps its own tensors).
    if (!added) for (const tensor of tensors.values()) tensor.dispose();
    if (error instanceof PeftError) throw new PeftError(`${source.location}: ${error.message}`);
    throw error;
  } finally {
    // The weights file was opened for random access (a file handle in Node): release it.
    await source.close?.();
  }
  if (options.activate ?? true) peft.setAdapter(name);
  return peft;
}

/** Reads and parses adapter_config.json (LoRA, or this package's bottleneck adapters). */
export async function readAdapterConfig(source: ModelFileSource): Promise<PeftConfig> {
  if (!(await source.exists(ADAPTER_CONFIG_FILE))) {
    throw new PeftError(`${source.location} has no ${ADAPTER_CONFIG_FILE}: not a PEFT adapter folder`);
  }
  const text = await source.readText(ADAPTER_CONFIG_FILE);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch (error) {
    throw new PeftError(`${ADAPTER_CONFIG_FILE} is not valid JSON: ${String(error)}`);
  }
  const type = json.peft_type ?? 'LORA';
  if (type === 'LORA') return parseLoraConfig(json);
  if (type === 'BOTTLENECK') return parseBottleneckConfig(json);
  throw new PeftError(
    `${ADAPTER_CONFIG_FILE}: peft_type ${JSON.stringify(type)} is not supported (LORA, BOTTLENECK)`,
  );
}

async function readFloat32(tensor: Tensor): Promise<Float32Array> {
  const values = await tensor.toArray();
  return values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
}

function convertPissaConfig(config: LoraConfig): LoraConfig {
  const double = (record: Record<string, number>) =>
    Object.fromEntries(Object.entries(record).map(([key, value]) => [key, 2 * value]));
  return {
    ...config,
    init_lora_weights: true,
    r: 2 * config.r,
    lora_alpha: config.use_rslora ? config.lora_alpha * Math.SQRT2 : 2 * config.lora_alpha,
    rank_pattern: double(config.rank_pattern),
    alpha_pattern: double(config.alpha_pattern),
  };
}

/** A' = [A; A0] (rows), B' = [B, -B0] (columns): s' B' A' = s (B A - B0 A0). */
function convertPissaTensors(
  values: Map<string, { shape: number[]; data: Float32Array }>,
  prefix: string,
  initial: { a: Float32Array; b: Float32Array },
): void {
  const a = values.get(`${prefix}lora_A.weight`);
  const b = values.get(`${prefix}lora_B.weight`);
  if (!a || !b) throw new PeftError(`PiSSA conversion: ${prefix}lora_A / lora_B are missing`);
  const [r, inFeatures] = a.shape;
  const outFeatures = b.shape[0];
  const stackedA = new Float32Array(2 * r * inFeatures);
  stackedA.set(a.data, 0);
  stackedA.set(initial.a, r * inFeatures);
  const stackedB = new Float32Array(outFeatures * 2 * r);
  for (let i = 0; i < outFeatures; i++) {
    for (let j = 0; j < r; j++) {
      stackedB[i * 2 * r + j] = b.data[i * r + j];
      stackedB[i * 2 * r + r + j] = -initial.b[i * r + j];
    }
  }
  values.set(`${prefix}lora_A.weight`, { shape: [2 * r, inFeatures], data: stackedA });
  values.set(`${prefix}lora_B.weight`, { shape: [outFeatures, 2 * r], data: stackedB });
}

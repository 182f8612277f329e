import type { CausalLM, ModelFileSink, ModelFileSource } from '@webtune/nn';
import {
  type FloatDtype,
  fromFloat32,
  readSafetensors,
  toFloat32,
  writeSafetensors,
} from '@webtune/safetensors';
import type { Tensor } from '@webtune/tensors';
import { PeftError } from '../errors.js';
import type { MethodConfig } from '../methods/peft-method.js';
import { DEFAULT_METHODS, type PeftMethodRegistry } from '../methods/registry.js';
import { PEFT_PREFIX, type PeftConfig, PeftModel } from '../peft-model.js';

/*
 * Hugging Face PEFT's adapter folder: adapter_config.json and adapter_model.safetensors
 * (`__metadata__` {"format": "pt"}), tensors named `base_model.model.<module>.<key>` with the
 * keys and shapes the adapter's method declares (lora/lora-method.ts, adapter/bottleneck-method.ts),
 * and modules_to_save under the module's own names; the adapter name is not in the file. Config
 * parsing and writing dispatch to the method of the config's peft_type.
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
  let config: MethodConfig = structuredClone(peft.config(name));
  const method = peft.methodOf(name);
  const dtype = options.dtype ?? 'F32';
  if (!['F32', 'F16', 'BF16'].includes(dtype))
    throw new PeftError(`saveAdapter: dtype must be F32, F16 or BF16, got ${dtype}`);
  const state = peft.adapterStateDict(name);
  const values = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [key, tensor] of state) {
    values.set(key, { shape: [...tensor.shape], data: (await readFloat32(tensor)).slice() });
  }
  if (options.convertPissaToLora) {
    if (!method.convertForSaving) {
      throw new PeftError(
        `saveAdapter: adapter "${name}" was not initialised with PiSSA; nothing to convert`,
      );
    }
    try {
      config = method.convertForSaving(config, values, peft.initialState(name), PEFT_PREFIX);
    } catch (error) {
      if (error instanceof PeftError) throw new PeftError(`saveAdapter: adapter "${name}": ${error.message}`);
      throw error;
    }
  }
  const tensors = [...values].map(([key, value]) => ({
    name: key,
    dtype,
    shape: value.shape,
    data: fromFloat32(value.data, dtype as FloatDtype),
  }));
  const json = method.configToJson(config);
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
  /** The methods to read with when `target` is a CausalLM (default: the built-in ones). */
  methods?: PeftMethodRegistry;
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
  const peft = target instanceof PeftModel ? target : new PeftModel(target, { methods: options.methods });
  const config = await readAdapterConfig(source, peft.methods);
  const method = peft.methods.method(config.peft_type);
  if (!(await source.exists(ADAPTER_WEIGHTS_FILE))) {
    const hasBin = await source.exists('adapter_model.bin');
    throw new PeftError(
      `${source.location} has no ${ADAPTER_WEIGHTS_FILE}` +
        (hasBin
          ? ' (only adapter_model.bin, a pickle, which is not read: re-save with safe_serialization=True)'
          : ''),
    );
  }
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
      const key = method.tensorFileName?.(info.name) ?? info.name;
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

/** Reads and parses adapter_config.json with the method of its peft_type (LoRA when absent). */
export async function readAdapterConfig(
  source: ModelFileSource,
  methods: PeftMethodRegistry = DEFAULT_METHODS,
): Promise<PeftConfig> {
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
  return methods.parseConfig(json, ADAPTER_CONFIG_FILE) as PeftConfig;
}

async function readFloat32(tensor: Tensor): Promise<Float32Array> {
  const values = await tensor.toArray();
  return values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
}

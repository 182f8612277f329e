import { Linear, type Module } from '@webtune/nn';
import type { Device } from '@webtune/tensors';
import type { AdapterRuntime } from '../adapter-runtime.js';
import { PeftError } from '../errors.js';
import * as F from '../functional.js';
import { findTargets, isAllLinear, linearSuffixes, patternKey, targetSelection } from '../target-modules.js';
import { InitRandom, initialFactors, initNeedsWeight } from './init.js';
import { DEFAULT_LORA_TARGETS, type LoraConfig, loraScaling } from './lora-config.js';
import { LoraLinear, type LoraSettings, type LoraTensors } from './lora-linear.js';

/** One module a LoRA adapter goes into, with its rank and scale after rank_pattern / alpha_pattern. */
export interface LoraTarget {
  /** Hugging Face module name (`model.layers.0.self_attn.q_proj`): what files and patterns use. */
  name: string;
  /** Where the module sits now (differs from `name` inside another adapter's wrapper). */
  path: string;
  inFeatures: number;
  outFeatures: number;
  settings: LoraSettings;
}

/**
 * The config with its shorthands resolved against a model: target_modules null becomes PEFT's
 * default for the model type, `all-linear` / `all` the suffixes of every linear layer but the
 * head. This is what gets saved, as PEFT saves the resolved set.
 */
export function resolveLoraConfig(model: Module, config: LoraConfig, modelType?: string): LoraConfig {
  let targets = config.target_modules;
  if (targets == null) {
    const defaults = modelType ? DEFAULT_LORA_TARGETS[modelType] : undefined;
    if (!defaults) {
      throw new PeftError(
        `LoRA config: target_modules is not set and there is no default for model type "${modelType ?? 'unknown'}"; name the modules (e.g. ["q_proj", "v_proj"] or "all-linear")`,
      );
    }
    targets = [...defaults];
  } else if (isAllLinear(targets)) {
    targets = linearSuffixes(model);
  }
  return { ...config, target_modules: targets };
}

/**
 * The modules a (resolved) LoRA config adapts in `model`, with each one's rank and scale. Needs
 * no device: it reads module types and shapes only (what memory estimates use).
 */
export function planLora(model: Module, config: LoraConfig): LoraTarget[] {
  const found = findTargets(
    model,
    targetSelection(config),
    (module) => module instanceof Linear || module instanceof LoraLinear,
  );
  return found.map(({ name, path, module: match }) => {
    const module = match as Linear | LoraLinear;
    const rankKey = patternKey(Object.keys(config.rank_pattern), name);
    const alphaKey = patternKey(Object.keys(config.alpha_pattern), name);
    const r = rankKey === null ? config.r : config.rank_pattern[rankKey];
    const alpha = alphaKey === null ? config.lora_alpha : config.alpha_pattern[alphaKey];
    return {
      name,
      path,
      inFeatures: module.inFeatures,
      outFeatures: module.outFeatures,
      settings: {
        r,
        alpha,
        scaling: loraScaling(r, alpha, config.use_rslora),
        dropout: config.lora_dropout,
        useDora: config.use_dora,
      },
    };
  });
}

export interface InjectLoraOptions {
  /** Seed of the host generator that draws A (and B) for this adapter. */
  seed: number;
  /**
   * Supplies a target's tensors instead of initialising them (loading a file). Tensors returned
   * here belong to the layer afterwards.
   */
  tensorsFor?: (target: LoraTarget) => LoraTensors;
}

/**
 * Puts a LoRA adapter called `adapterName` into every module `targets` lists: a Linear is
 * replaced by a LoraLinear wrapping it (`model.setSubmodule`), a LoraLinear gets one more
 * adapter. A and B are drawn on the host from a seeded generator in target order and uploaded
 * one module at a time; PiSSA reads each base weight back, decomposes it, and replaces it by its
 * residual. DoRA's magnitude starts at the row norms of W + s B A (that is ||W|| when B = 0).
 */
export async function injectLora(
  model: Module,
  device: Device,
  adapterName: string,
  config: LoraConfig,
  targets: readonly LoraTarget[],
  runtime: AdapterRuntime,
  options: InjectLoraOptions,
): Promise<LoraLinear[]> {
  const random = new InitRandom(options.seed);
  const layers: LoraLinear[] = [];
  for (const target of targets) {
    const existing = model.getSubmodule(target.path);
    let layer: LoraLinear;
    if (existing instanceof LoraLinear) layer = existing;
    else if (existing instanceof Linear) {
      layer = new LoraLinear(existing, runtime, target.path);
      model.setSubmodule(target.path, layer);
    } else {
      throw new PeftError(`LoRA: ${target.name} is a ${existing.constructor.name}, not a Linear`);
    }
    if (layer.hasAdapter(adapterName)) {
      throw new PeftError(`LoRA: ${target.name} already has an adapter called "${adapterName}"`);
    }
    const tensors = options.tensorsFor
      ? options.tensorsFor(target)
      : await initialTensors(layer, device, config, target, random);
    try {
      layer.addAdapter(adapterName, target.settings, tensors);
    } catch (error) {
      tensors.a.dispose();
      tensors.b.dispose();
      tensors.magnitude?.dispose();
      throw error;
    }
    layers.push(layer);
  }
  return layers;
}

async function initialTensors(
  layer: LoraLinear,
  device: Device,
  config: LoraConfig,
  target: LoraTarget,
  random: InitRandom,
): Promise<LoraTensors> {
  const { r, scaling, useDora } = target.settings;
  const shape = { r, inFeatures: target.inFeatures, outFeatures: target.outFeatures, scaling };
  const init = config.init_lora_weights;
  let weightValues: Float32Array | undefined;
  if (initNeedsWeight(init)) {
    if (layer.merged.length > 0)
      throw new PeftError(`PiSSA: ${target.name} has merged adapters; unmerge first`);
    weightValues = (await layer.baseLayer.parameter('weight').toArray()) as Float32Array;
  }
  const factors = initialFactors(init, shape, random, weightValues);
  const a = device.fromArray(factors.a, [r, target.inFeatures], 'f32').keep();
  const b = device.fromArray(factors.b, [target.outFeatures, r], 'f32').keep();
  if (factors.residual) {
    const base = layer.baseLayer;
    const weight = base.parameter('weight');
    const residual = device.fromArray(factors.residual, weight.shape, weight.dtype).keep();
    base.setParameter('weight', residual)?.dispose();
  }
  let magnitude: LoraTensors['magnitude'] = null;
  if (useDora) {
    // ||W + s B A|| per row; a packed base is decoded to f32 for it (see LoraLinear.weightNorm).
    magnitude = F.detached(a, () => {
      const update = F.scale(F.matmul(b, a), scaling);
      return F.rowNorm(F.add(layer.baseWeightF32(), update));
    }).keep();
  }
  return { a, b, magnitude };
}

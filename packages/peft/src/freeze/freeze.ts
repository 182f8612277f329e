import type { Module } from '@webtune/nn';
import type { Tensor } from '@webtune/tensors';
import { PeftError } from '../errors.js';
import { markTrainable } from '../trainable.js';

/**
 * Partial fine-tuning as LLaMA-Factory's `finetuning_type: freeze` chooses it: train the last N
 * decoder layers (or the first |N| with N < 0), optionally only some modules inside them, plus
 * named modules outside the layers; everything else stays frozen.
 */
export interface FreezeOptions {
  /** freeze_trainable_layers: N > 0 trains the last N layers, N < 0 the first |N| (default 2). */
  trainableLayers?: number;
  /** freeze_trainable_modules: modules inside each trained layer (`self_attn`, `mlp`, ...) or 'all' (default). */
  trainableModules?: readonly string[] | 'all';
  /** freeze_extra_modules: modules outside the layers that train too (`embed_tokens`, `norm`, `lm_head`). */
  extraModules?: readonly string[];
}

const LAYER = /^(.*?\.layers)\.(\d+)\.(.+)$/;

/**
 * Names of the parameters that train under `options`, in model order. Module names are checked:
 * one that is not a child of a decoder layer (or, for extra modules, a module outside the layers)
 * is an error listing the valid names.
 */
export function freezeTrainableNames(model: Module, options: FreezeOptions = {}): string[] {
  return selectFreezeTrainable(
    [...model.namedParameters()].map(([name]) => name),
    options,
  );
}

/** freezeTrainableNames over a list of parameter names (no model needed). */
export function selectFreezeTrainable(parameters: readonly string[], options: FreezeOptions = {}): string[] {
  const layerIndices = new Set<number>();
  const layerModules = new Set<string>();
  const outsideModules = new Set<string>();
  for (const name of parameters) {
    const match = name.match(LAYER);
    if (match) {
      layerIndices.add(Number(match[2]));
      layerModules.add(match[3].split('.')[0]);
    } else {
      const parts = name.split('.');
      if (parts.length >= 2) outsideModules.add(parts[parts.length - 2]);
    }
  }
  const layerCount = layerIndices.size === 0 ? 0 : Math.max(...layerIndices) + 1;
  if (layerCount === 0)
    throw new PeftError('freeze: the model has no decoder layers (no ".layers.<i>." parameters)');
  const n = options.trainableLayers ?? 2;
  if (!Number.isInteger(n) || n === 0) {
    throw new PeftError(`freeze: trainableLayers must be a non-zero integer, got ${n}`);
  }
  const trained = new Set<number>();
  if (n > 0) for (let i = Math.max(0, layerCount - n); i < layerCount; i++) trained.add(i);
  else for (let i = 0; i < Math.min(-n, layerCount); i++) trained.add(i);
  const modules = options.trainableModules ?? 'all';
  if (modules !== 'all') {
    for (const module of modules) {
      if (!layerModules.has(module)) {
        throw new PeftError(
          `freeze: "${module}" is not a module of the decoder layers; choose from ${[...layerModules].join(', ')} or 'all'`,
        );
      }
    }
  }
  for (const module of options.extraModules ?? []) {
    if (!outsideModules.has(module)) {
      throw new PeftError(
        `freeze: "${module}" is not a module outside the decoder layers; choose from ${[...outsideModules].join(', ')}`,
      );
    }
  }
  const extra = new Set(options.extraModules ?? []);
  return parameters.filter((name) => {
    const match = name.match(LAYER);
    if (match) {
      if (!trained.has(Number(match[2]))) return false;
      return modules === 'all' || modules.includes(match[3].split('.')[0]);
    }
    const parts = name.split('.');
    return parts.length >= 2 && extra.has(parts[parts.length - 2]);
  });
}

/** Every parameter trains (`finetuning_type: full`). */
export function fullTrainableNames(model: Module): string[] {
  return [...model.namedParameters()].map(([name]) => name);
}

/**
 * Freezes `model` but the parameters `freezeTrainableNames` picks, marking those for gradients;
 * returns them by name. The model is not wrapped: it trains and saves as a plain model.
 */
export function freezeModel(model: Module, options: FreezeOptions = {}): [string, Tensor][] {
  const names = new Set(freezeTrainableNames(model, options));
  return markTrainable(
    model,
    [...model.namedParameters()].filter(([name]) => names.has(name)).map(([, tensor]) => tensor),
  );
}

/** Marks every parameter of `model` for gradients (full fine-tuning); returns them by name. */
export function fullFineTuning(model: Module): [string, Tensor][] {
  return markTrainable(
    model,
    [...model.namedParameters()].map(([, tensor]) => tensor),
  );
}

import type { Module } from '@webtune/nn';
import { PeftError } from './errors.js';
import type { InjectedLayer } from './methods/peft-method.js';
import { sharedTensors } from './modules.js';

/**
 * Throws when a module's weight is also held elsewhere (a tied head), for operations that rewrite
 * it (PiSSA's residual, merging). `isLayer` recognises injected layers, whose weight is their base layer's.
 */
export function checkUntied(
  model: Module,
  modules: readonly { name: string; path: string }[],
  what: string,
  isLayer: (module: Module) => module is InjectedLayer,
): void {
  const holders = sharedTensors(model);
  for (const { name, path } of modules) {
    const module = model.getSubmodule(path);
    const weight = (isLayer(module) ? module.baseLayer : module).optionalParameter('weight');
    const others = (weight ? (holders.get(weight) ?? []) : []).filter(
      (holder) => !holder.startsWith(`${path}.`),
    );
    if (others.length > 0) {
      throw new PeftError(
        `${what} would rewrite the weight of ${name}, which is shared with ${others.join(', ')} (tied embeddings); leave ${name} out or untie it`,
      );
    }
  }
}

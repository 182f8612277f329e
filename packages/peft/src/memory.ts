import { CausalLM, type ModelConfig } from '@webtune/nn';
import type { Device } from '@webtune/tensors';
import type { BottleneckConfig } from './adapter/adapter-config.js';
import { planBottleneck } from './adapter/adapter-model.js';
import { type FreezeOptions, selectFreezeTrainable } from './freeze/freeze.js';
import type { LoraConfig } from './lora/lora-config.js';
import { planLora, resolveLoraConfig } from './lora/lora-model.js';
import {
  type ParameterInfo,
  type SummaryOptions,
  type TrainableSummary,
  trainableSummary,
} from './summary.js';

/** A way to fine-tune: which tensors exist and which of them train. */
export type TrainingMethod =
  | { type: 'lora'; config: LoraConfig }
  | { type: 'bottleneck'; config: BottleneckConfig }
  | { type: 'freeze'; options?: FreezeOptions }
  | { type: 'full' };

/**
 * The device bytes of weights, gradients and optimizer state a method needs for a model shape,
 * computed from shapes alone (no device, no weights): what to check before loading a model that
 * may not fit. The figures match `PeftModel.summary()` on the built model.
 */
export function estimateTrainingMemory(
  modelConfig: ModelConfig,
  method: TrainingMethod,
  options: SummaryOptions & { dtype?: 'f32' | 'f16' } = {},
): TrainableSummary {
  const dtype = options.dtype ?? 'f32';
  // A module tree without tensors: slots carry shapes only.
  const model = new CausalLM(undefined as unknown as Device, modelConfig);
  const slots = [...model.namedSlots()].filter(
    ([name]) => !(modelConfig.tieWordEmbeddings && name === 'lm_head.weight'),
  );
  const base = new Map<string, ParameterInfo>(
    slots.map(([name, slot]) => [name, { size: slot.shape.reduce((p, d) => p * d, 1), dtype }]),
  );
  const all: ParameterInfo[] = [...base.values()];
  const trainable: ParameterInfo[] = [];
  const adapterInfo = (size: number): ParameterInfo => ({ size, dtype: 'f32' });
  if (method.type === 'full' || method.type === 'freeze') {
    const names =
      method.type === 'full' ? [...base.keys()] : selectFreezeTrainable([...base.keys()], method.options);
    for (const name of names) trainable.push(base.get(name)!);
  } else if (method.type === 'lora') {
    const config = resolveLoraConfig(model, method.config, modelConfig.modelType);
    for (const target of planLora(model, config)) {
      const { r, useDora } = target.settings;
      const tensors = [
        r * target.inFeatures,
        target.outFeatures * r,
        ...(useDora ? [target.outFeatures] : []),
      ];
      for (const size of tensors) trainable.push(adapterInfo(size));
    }
    for (const name of modulesToSaveNames(base, config.modules_to_save))
      trainable.push({ ...base.get(name)! });
  } else {
    const { bottleneck_size: size } = method.config;
    const hidden = modelConfig.hiddenSize;
    for (const _ of planBottleneck(model, method.config, hidden)) {
      for (const count of [size * hidden, size, hidden * size, hidden]) trainable.push(adapterInfo(count));
    }
    for (const name of modulesToSaveNames(base, method.config.modules_to_save))
      trainable.push({ ...base.get(name)! });
  }
  // Adapter tensors and modules_to_save copies exist in addition to the base weights.
  for (const info of trainable) if (!all.includes(info)) all.push(info);
  return trainableSummary(all, trainable, options);
}

/** Base parameters inside a module whose path ends with an entry of modules_to_save (PEFT's rule). */
function modulesToSaveNames(base: Map<string, ParameterInfo>, modules: readonly string[] | null): string[] {
  if (!modules || modules.length === 0) return [];
  return [...base.keys()].filter((name) => {
    const parts = name.split('.');
    for (let end = parts.length - 1; end > 0; end--) {
      const path = parts.slice(0, end).join('.');
      if (modules.some((entry) => path.endsWith(entry))) return true;
    }
    return false;
  });
}

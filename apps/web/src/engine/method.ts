import type { CausalLM } from '@webtune/nn';
import {
  bottleneckConfig,
  freezeTrainableNames,
  getPeftModel,
  loraConfig,
  type PeftConfig,
  type PeftModel,
  type TrainingMethod,
} from '@webtune/peft';
import { type TrainableModel, trainableCausalLM, trainablePeftModel } from '@webtune/train';
import type { MethodSettings } from './protocol.js';

/** The PEFT config of an adapter method (LoRA, DoRA, bottleneck adapter); null for freeze and full. */
export function peftConfigOf(settings: MethodSettings): PeftConfig | null {
  const target = settings.loraTarget.trim();
  const targetModules =
    target === '' || target === 'all'
      ? 'all-linear'
      : target
          .split(',')
          .map((name) => name.trim())
          .filter(Boolean);
  switch (settings.method) {
    case 'lora':
    case 'dora':
      return loraConfig({
        r: settings.loraRank,
        lora_alpha: settings.loraAlpha,
        lora_dropout: settings.loraDropout,
        target_modules: targetModules,
        use_dora: settings.method === 'dora',
      });
    case 'adapter':
      return bottleneckConfig({ bottleneck_size: settings.adapterSize });
    default:
      return null;
  }
}

/** The method in the shape @webtune/peft's memory estimate takes. */
export function trainingMethodOf(settings: MethodSettings): TrainingMethod {
  const config = peftConfigOf(settings);
  if (config?.peft_type === 'LORA') return { type: 'lora', config };
  if (config?.peft_type === 'BOTTLENECK') return { type: 'bottleneck', config };
  if (settings.method === 'freeze') {
    return { type: 'freeze', options: { trainableLayers: settings.freezeTrainableLayers } };
  }
  return { type: 'full' };
}

/** A model ready for the trainer, and its adapters when the method adds some. */
export interface AppliedMethod {
  trainable: TrainableModel;
  peft: PeftModel | null;
  /** Freeze and full tuning change the base weights: the base must be reloaded to compare. */
  changesBaseWeights: boolean;
}

/** Adds adapters to `model` or picks the parameters that train, as the settings say. */
export async function applyMethod(
  model: CausalLM,
  settings: MethodSettings,
  seed: number,
): Promise<AppliedMethod> {
  const config = peftConfigOf(settings);
  if (config) {
    const peft = await getPeftModel(model, config, { seed });
    return { trainable: trainablePeftModel(peft), peft, changesBaseWeights: false };
  }
  const trainable =
    settings.method === 'freeze'
      ? freezeTrainableNames(model, { trainableLayers: settings.freezeTrainableLayers })
      : undefined;
  return { trainable: trainableCausalLM(model, { trainable }), peft: null, changesBaseWeights: true };
}

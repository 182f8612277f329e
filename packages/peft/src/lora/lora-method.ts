import type { Module } from '@webtune/nn';
import { PeftError } from '../errors.js';
import type { AdapterPlan, InjectedLayer, MethodContext, PeftMethod } from '../methods/peft-method.js';
import { checkUntied } from '../tied-weights.js';
import { initNeedsWeight } from './init.js';
import { type LoraConfig, loraConfigToJson, parseLoraConfig } from './lora-config.js';
import { LoraLinear } from './lora-linear.js';
import { injectLora, type LoraTarget, planLora, resolveLoraConfig } from './lora-model.js';
import { convertPissaConfig, convertPissaTensors, type PissaFactors } from './pissa-conversion.js';

/*
 * The LoRA family (LoRA, rsLoRA, DoRA, PiSSA) as a PEFT method. Tensors per module, as PEFT
 * names them: lora_A.weight [r, in], lora_B.weight [out, r], lora_magnitude_vector [out] (DoRA).
 */

const A = 'lora_A.weight';
const B = 'lora_B.weight';
const MAGNITUDE = 'lora_magnitude_vector';

function tensorShapes(target: LoraTarget): [string, number[]][] {
  const { r, useDora } = target.settings;
  const shapes: [string, number[]][] = [
    [A, [r, target.inFeatures]],
    [B, [target.outFeatures, r]],
  ];
  if (useDora) shapes.push([MAGNITUDE, [target.outFeatures]]);
  return shapes;
}

const isLoraLayer = (module: Module): module is InjectedLayer => module instanceof LoraLinear;

function plan(context: MethodContext, config: LoraConfig): AdapterPlan<LoraConfig> {
  const { model, device, runtime, adapterName, seed } = context;
  const resolved = resolveLoraConfig(model, config, model.config.modelType);
  const targets = planLora(model, resolved);
  const needsWeight = initNeedsWeight(resolved.init_lora_weights);
  if (needsWeight) checkUntied(model, targets, 'LoRA with PiSSA init', isLoraLayer);
  return {
    config: resolved,
    modules: targets.map((target) => ({ name: target.name, tensors: tensorShapes(target) })),
    async inject(tensorsFor) {
      await injectLora(model, device, adapterName, resolved, targets, runtime, {
        seed,
        tensorsFor: tensorsFor
          ? (target) => {
              const tensors = tensorsFor(target.name);
              return { a: tensors.get(A)!, b: tensors.get(B)!, magnitude: tensors.get(MAGNITUDE) ?? null };
            }
          : undefined,
      });
      if (tensorsFor || !needsWeight) return undefined;
      // PiSSA: keep the initial factors on the host, to save the adapter as a plain LoRA later.
      const initial: PissaFactors = new Map();
      for (const target of targets) {
        const layer = model.getSubmodule(target.path) as LoraLinear;
        initial.set(target.name, {
          a: (await layer.loraA(adapterName).toArray()) as Float32Array,
          b: (await layer.loraB(adapterName).toArray()) as Float32Array,
        });
      }
      return initial;
    },
  };
}

export const LORA_METHOD: PeftMethod<LoraConfig> = {
  peftType: 'LORA',
  parseConfig: (json, fileName) => parseLoraConfig(json, fileName),
  configToJson: loraConfigToJson,
  plan,
  isLayer: isLoraLayer,
  mergeable: true,
  // PEFT writes `lora_magnitude_vector`; accept the `.weight` form of its in-memory name too.
  tensorFileName: (name) => name.replace(/\.lora_magnitude_vector\.weight$/, `.${MAGNITUDE}`),
  convertForSaving(config, values, initial, prefix) {
    if (!String(config.init_lora_weights).startsWith('pissa')) {
      throw new PeftError('the adapter was not initialised with PiSSA; nothing to convert');
    }
    if (!(initial instanceof Map))
      throw new PeftError('the initial PiSSA factors are not known in this session');
    for (const [module, factors] of initial as PissaFactors) {
      convertPissaTensors(values, `${prefix}${module}.`, factors);
    }
    return convertPissaConfig(config);
  },
};

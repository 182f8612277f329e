import type { Module } from '@webtune/nn';
import type { AdapterPlan, InjectedLayer, MethodContext, PeftMethod } from '../methods/peft-method.js';
import { type BottleneckConfig, parseBottleneckConfig } from './adapter-config.js';
import { AdapterBlock, bottleneckShapes } from './adapter-layer.js';
import { injectBottleneck, planBottleneck } from './adapter-model.js';

/*
 * Bottleneck adapters (Houlsby / LLM-Adapters) as a PEFT method: after each target block,
 * adapter.down_proj.{weight,bias} and adapter.up_proj.{weight,bias}. Nonlinear: they cannot merge.
 */

const isAdapterBlock = (module: Module): module is InjectedLayer => module instanceof AdapterBlock;

function plan(context: MethodContext, config: BottleneckConfig): AdapterPlan<BottleneckConfig> {
  const { model, device, runtime, adapterName, seed } = context;
  const targets = planBottleneck(model, config, model.config.hiddenSize);
  return {
    config,
    modules: targets.map((target) => ({
      name: target.name,
      tensors: [...bottleneckShapes(target.hiddenSize, target.settings.size)],
    })),
    async inject(tensorsFor) {
      injectBottleneck(model, device, adapterName, config, targets, runtime, {
        seed,
        tensorsFor: tensorsFor ? (target) => tensorsFor(target.name) : undefined,
      });
      return undefined;
    },
  };
}

export const BOTTLENECK_METHOD: PeftMethod<BottleneckConfig> = {
  peftType: 'BOTTLENECK',
  parseConfig: (json, fileName) => parseBottleneckConfig(json, fileName),
  configToJson: (config) => ({ ...(config as unknown as Record<string, unknown>) }),
  plan,
  isLayer: isAdapterBlock,
  mergeable: false,
};

import { Attention, GatedMLP, type Module } from '@webtune/nn';
import type { Device } from '@webtune/tensors';
import type { AdapterRuntime } from '../adapter-runtime.js';
import { PeftError } from '../errors.js';
import { InitRandom, kaimingUniform } from '../lora/init.js';
import { findTargets, targetSelection } from '../target-modules.js';
import type { BottleneckConfig } from './adapter-config.js';
import {
  AdapterBlock,
  type BottleneckSettings,
  type BottleneckTensors,
  bottleneckShapes,
} from './adapter-layer.js';

/** One block a bottleneck adapter follows. */
export interface AdapterTarget {
  /** Hugging Face name of the block (`model.layers.0.mlp`). */
  name: string;
  /** Where the block sits now. */
  path: string;
  hiddenSize: number;
  settings: BottleneckSettings;
}

/** Whether a module is a block an adapter can follow (attention or MLP, or one already wrapped). */
function isBlock(module: Module): boolean {
  return module instanceof Attention || module instanceof GatedMLP || module instanceof AdapterBlock;
}

/** The blocks a bottleneck config adapts in `model` (no device needed). */
export function planBottleneck(model: Module, config: BottleneckConfig, hiddenSize: number): AdapterTarget[] {
  const found = findTargets(model, targetSelection(config), isBlock);
  const settings: BottleneckSettings = {
    size: config.bottleneck_size,
    activation: config.non_linearity,
    dropout: config.adapter_dropout,
    scaling: config.scaling,
  };
  return found.map(({ name, path }) => ({ name, path, hiddenSize, settings }));
}

export interface InjectBottleneckOptions {
  seed: number;
  tensorsFor?: (target: AdapterTarget) => BottleneckTensors;
}

/**
 * Puts a bottleneck adapter after every target block: down-projection Kaiming-uniform (like a
 * fresh nn.Linear), biases and the up-projection zero, so the model's output is unchanged until
 * training moves the up-projection (init_weights false draws the up-projection too).
 */
export function injectBottleneck(
  model: Module,
  device: Device,
  adapterName: string,
  config: BottleneckConfig,
  targets: readonly AdapterTarget[],
  runtime: AdapterRuntime,
  options: InjectBottleneckOptions,
): AdapterBlock[] {
  const random = new InitRandom(options.seed);
  const blocks: AdapterBlock[] = [];
  for (const target of targets) {
    const existing = model.getSubmodule(target.path);
    let block: AdapterBlock;
    if (existing instanceof AdapterBlock) block = existing;
    else {
      block = new AdapterBlock(existing as never, target.hiddenSize, runtime, target.path);
      model.setSubmodule(target.path, block);
    }
    if (block.hasAdapter(adapterName))
      throw new PeftError(`${target.name} already has an adapter "${adapterName}"`);
    const tensors = options.tensorsFor
      ? options.tensorsFor(target)
      : initialTensors(device, target, config.init_weights, random);
    block.addAdapter(adapterName, target.settings, tensors);
    blocks.push(block);
  }
  return blocks;
}

function initialTensors(
  device: Device,
  target: AdapterTarget,
  initWeights: boolean,
  random: InitRandom,
): BottleneckTensors {
  const { hiddenSize } = target;
  const { size } = target.settings;
  const tensors: BottleneckTensors = new Map();
  for (const [key, shape] of bottleneckShapes(hiddenSize, size)) {
    let values: Float32Array;
    if (key === 'adapter.down_proj.weight') values = kaimingUniform(size, hiddenSize, random);
    else if (key === 'adapter.up_proj.weight' && !initWeights)
      values = kaimingUniform(hiddenSize, size, random);
    else if (key.endsWith('.bias') && !initWeights) {
      const fanIn = key.startsWith('adapter.down') ? hiddenSize : size;
      values = Float32Array.from({ length: shape[0] }, () => random.uniform(-1, 1) / Math.sqrt(fanIn));
    } else values = new Float32Array(shape.reduce((p, d) => p * d, 1));
    tensors.set(key, device.fromArray(values, shape, 'f32').keep());
  }
  return tensors;
}

import { Module } from '@webtune/nn';
import { type AdapterRuntime, layerSeed } from '../adapter-runtime.js';
import { PeftError } from '../errors.js';
import type { Activation, Tensor } from '../functional.js';
import * as F from '../functional.js';
import { ModuleDict, ParameterModule } from '../modules.js';

/** One bottleneck adapter of a block. */
export interface BottleneckSettings {
  size: number;
  activation: Activation;
  dropout: number;
  scaling: number;
}

/** The tensors of one bottleneck adapter, by their names relative to the block. */
export type BottleneckTensors = Map<string, Tensor>;

/** A block module: anything whose forward maps its first argument [..., hidden] to [..., hidden]. */
type Block = Module & { forward(...args: never[]): Tensor };

/** down_proj (weight [size, hidden], bias [size]) and up_proj (weight [hidden, size], bias [hidden]). */
class BottleneckWeights extends Module {
  constructor(hidden: number, size: number) {
    super();
    this.addModule('down_proj', new ParameterModule({ weight: [size, hidden], bias: [size] }));
    this.addModule('up_proj', new ParameterModule({ weight: [hidden, size], bias: [hidden] }));
  }
}

/** File names of a bottleneck adapter's tensors, relative to the block, and their shapes. */
export function bottleneckShapes(hidden: number, size: number): Map<string, number[]> {
  return new Map([
    ['adapter.down_proj.weight', [size, hidden]],
    ['adapter.down_proj.bias', [size]],
    ['adapter.up_proj.weight', [hidden, size]],
    ['adapter.up_proj.bias', [hidden]],
  ]);
}

/**
 * A block (attention or MLP) followed by bottleneck adapters: children `base_layer` and
 * `adapter.<name>.{down_proj,up_proj}`. With the active adapter,
 * y = block(x, ...) ; y + scaling * (act(drop(y) D^T + d) U^T + u).
 * It passes every argument through, so the decoder layer calls it as it called the block.
 */
export class AdapterBlock extends Module {
  readonly adapterWrapper = true;
  readonly wrappedChildName = 'base_layer';
  private readonly settings = new Map<string, BottleneckSettings>();

  constructor(
    base: Block,
    /** Width of the block's output (the model's hidden size). */
    readonly hiddenSize: number,
    readonly runtime: AdapterRuntime,
    /** The block's module path in the model: with the runtime seed it fixes the dropout masks. */
    readonly path: string,
  ) {
    super();
    this.addModule('base_layer', base);
    this.addModule('adapter', new ModuleDict());
  }

  get baseLayer(): Block {
    return this.child<Block>('base_layer');
  }

  adapterNames(): string[] {
    return [...this.settings.keys()];
  }

  hasAdapter(name: string): boolean {
    return this.settings.has(name);
  }

  settingsOf(name: string): BottleneckSettings {
    const settings = this.settings.get(name);
    if (!settings) throw new PeftError(`adapter block has no adapter "${name}"`);
    return settings;
  }

  expectedShapes(name: string): Map<string, number[]> {
    return bottleneckShapes(this.hiddenSize, this.settingsOf(name).size);
  }

  /** Adds an adapter holding `tensors` (keys as in bottleneckShapes; this block owns them). */
  addAdapter(name: string, settings: BottleneckSettings, tensors: BottleneckTensors): void {
    if (this.settings.has(name)) throw new PeftError(`adapter block already has an adapter "${name}"`);
    const weights = this.child<ModuleDict>('adapter').set(
      name,
      new BottleneckWeights(this.hiddenSize, settings.size),
    );
    for (const [key, tensor] of tensors) weights.setParameterByName(key.slice('adapter.'.length), tensor);
    this.settings.set(name, { ...settings });
  }

  deleteAdapter(name: string): void {
    const dict = this.child<ModuleDict>('adapter');
    const entry = dict.get(name);
    if (!entry) return;
    entry.dispose();
    this.setSubmodule('adapter', dict.without(name));
    this.settings.delete(name);
  }

  /** Frees every adapter tensor (unloading). */
  release(): void {
    for (const name of this.adapterNames()) this.deleteAdapter(name);
  }

  adapterTensors(name: string): [string, Tensor][] {
    const weights = this.weights(name);
    return [...bottleneckShapes(this.hiddenSize, 1).keys()].map((key) => [
      key,
      weights.getParameterByName(key.slice('adapter.'.length))!,
    ]);
  }

  setAdapterTensor(name: string, key: string, tensor: Tensor): void {
    this.weights(name).setParameterByName(key.slice('adapter.'.length), tensor)?.dispose();
  }

  forward(...args: unknown[]): Tensor {
    const output = (this.baseLayer.forward as (...a: unknown[]) => Tensor)(...args);
    const runtime = this.runtime;
    const name = runtime.activeAdapter;
    if (runtime.disabled || name === null) return output;
    const settings = this.settings.get(name);
    if (!settings) return output;
    const weights = this.weights(name);
    const parameter = (key: string) => weights.getParameterByName(key)!;
    let input = F.cast(output, 'f32');
    // The mask depends on (runtime seed, path, shape) only: recomputation and resume repeat it.
    if (runtime.training && settings.dropout > 0) {
      input = F.dropout(input, settings.dropout, this.dropoutSeed(), 0);
    }
    const hidden = F.ACTIVATIONS[settings.activation](
      F.linear(input, parameter('down_proj.weight'), parameter('down_proj.bias')),
    );
    const up = F.linear(hidden, parameter('up_proj.weight'), parameter('up_proj.bias'));
    return F.add(output, F.cast(F.scale(up, settings.scaling), output.dtype as 'f32' | 'f16'));
  }

  /** Seed of this block's dropout mask under the runtime's current seed (counter offset 0). */
  dropoutSeed(): number {
    return layerSeed(this.runtime, `adapter:${this.path}`);
  }

  private weights(name: string): Module {
    const entry = this.child<ModuleDict>('adapter').get(name);
    if (!entry) throw new PeftError(`adapter block has no adapter "${name}"`);
    return entry;
  }
}

import type { CausalLM, ForwardOptions, Module } from '@webtune/nn';
import type { PackedWeight, Tensor } from '@webtune/tensors';
import type { BottleneckConfig } from './adapter/adapter-config.js';
import type { AdapterBlock } from './adapter/adapter-layer.js';
import { type AdapterRuntime, createRuntime } from './adapter-runtime.js';
import { PeftError } from './errors.js';
import type { LoraConfig } from './lora/lora-config.js';
import type { LoraLinear } from './lora/lora-linear.js';
import type { PissaFactors } from './lora/pissa-conversion.js';
import {
  type InjectedLayer,
  isMergeable,
  type MergeableLayer,
  type MethodConfig,
  type PeftMethod,
} from './methods/peft-method.js';
import { DEFAULT_METHODS, type PeftMethodRegistry } from './methods/registry.js';
import { ModulesToSaveWrapper, ownerOf } from './modules-to-save.js';
import { formatTrainableSummary, type TrainableSummary, trainableSummary } from './summary.js';
import { type BaseModule, baseModules } from './target-modules.js';
import { checkUntied } from './tied-weights.js';
import { markTrainable } from './trainable.js';

/**
 * The config of one adapter of a built-in method: LoRA (with DoRA and PiSSA options) or a
 * bottleneck adapter. A method registered in a PeftMethodRegistry brings its own config type.
 */
export type PeftConfig = LoraConfig | BottleneckConfig;

/** A layer this package injected: it holds per-adapter tensors under names relative to itself. */
export type AdapterLayer = LoraLinear | AdapterBlock | ModulesToSaveWrapper | InjectedLayer;

/** An injected layer with its Hugging Face module name and its path in the module tree now. */
export interface AdapterLayerEntry {
  name: string;
  path: string;
  layer: AdapterLayer;
}

export interface AddAdapterOptions {
  /** Seed of the initialisation (default 0): the same seed gives the same adapter. */
  seed?: number;
  /**
   * Tensors by PEFT file name (`base_model.model.<module>.lora_A.weight`, ...) instead of an
   * initialisation; what loading uses. Every tensor the config implies must be present.
   */
  tensors?: Map<string, Tensor>;
}

/** Prefix of every tensor name in PEFT's adapter files. */
export const PEFT_PREFIX = 'base_model.model.';

/**
 * A model with adapters (Hugging Face PEFT's PeftModel over LoraModel): the base CausalLM with
 * LoRA layers, adapter blocks and modules_to_save wrappers injected in place, several named
 * adapters with one active, merging, and a switch that turns every adapter off for one call.
 * Build it with `getPeftModel()`; `model` is the same object as the base model passed in.
 */
export class PeftModel {
  readonly runtime: AdapterRuntime;
  /** The PEFT methods this model can add, by peft_type. */
  readonly methods: PeftMethodRegistry;
  private readonly configs = new Map<string, MethodConfig>();
  /** What each adapter's injection returned to keep (PiSSA's initial factors, for saving as plain LoRA). */
  private readonly initialStates = new Map<string, unknown>();

  constructor(
    readonly model: CausalLM,
    options: { seed?: number; methods?: PeftMethodRegistry } = {},
  ) {
    this.runtime = createRuntime(options.seed ?? 0);
    this.methods = options.methods ?? DEFAULT_METHODS;
  }

  /** Names of the adapters, in the order they were added. */
  get adapterNames(): string[] {
    return [...this.configs.keys()];
  }

  get activeAdapter(): string | null {
    return this.runtime.activeAdapter;
  }

  /** The (resolved) config of an adapter: target_modules as matched, what saving writes. */
  config(name = this.requireActive()): PeftConfig {
    const config = this.configs.get(name);
    if (!config)
      throw new PeftError(`no adapter "${name}" (adapters: ${this.adapterNames.join(', ') || 'none'})`);
    return config as PeftConfig;
  }

  /** The method of an adapter (how it saves, whether it merges). */
  methodOf(name = this.requireActive()): PeftMethod {
    return this.methods.method(this.config(name).peft_type);
  }

  /**
   * Adds an adapter called `name` into the model. The first adapter becomes active; later ones
   * are added inactive (PEFT's add_adapter) until `setAdapter`. Modules are matched and checked
   * before anything changes, so a config that does not fit leaves the model as it was.
   */
  async addAdapter(name: string, config: MethodConfig, options: AddAdapterOptions = {}): Promise<void> {
    if (this.configs.has(name)) throw new PeftError(`an adapter called "${name}" already exists`);
    if (!/^[A-Za-z0-9_-]+$/.test(name)) {
      throw new PeftError(`adapter name "${name}" must hold only letters, digits, "_" and "-"`);
    }
    const method = this.methods.method(config.peft_type, `adapter "${name}"`);
    const plan = method.plan(
      {
        model: this.model,
        device: this.model.device,
        runtime: this.runtime,
        adapterName: name,
        seed: options.seed ?? 0,
      },
      config,
    );
    const modulesToSave = this.planModulesToSave(plan.config.modules_to_save ?? null);
    // Loading: take and check every supplied tensor before touching the model.
    const supplied = options.tensors;
    const used = new Set<string>();
    const take = (fileName: string, shape: readonly number[]): Tensor => {
      const tensor = supplied?.get(fileName);
      if (!tensor)
        throw new PeftError(`adapter tensors: ${fileName} is missing (expected shape [${shape.join(', ')}])`);
      if (tensor.shape.length !== shape.length || tensor.shape.some((d, i) => d !== shape[i])) {
        throw new PeftError(
          `adapter tensors: ${fileName} has shape [${tensor.shape.join(', ')}], the model and config need [${shape.join(', ')}]`,
        );
      }
      used.add(fileName);
      return tensor;
    };
    const byModule = new Map<string, Map<string, Tensor>>();
    if (supplied) {
      for (const module of plan.modules) {
        const tensors = new Map<string, Tensor>();
        for (const [key, shape] of module.tensors)
          tensors.set(key, take(`${PEFT_PREFIX}${module.name}.${key}`, shape));
        byModule.set(module.name, tensors);
      }
    }
    const savedTensors = this.takeModulesToSave(modulesToSave, supplied ? take : null);
    if (supplied) this.checkAllUsed(supplied, used);
    const initial = await plan.inject(supplied ? (module) => byModule.get(module)! : null);
    if (initial !== undefined) this.initialStates.set(name, initial);
    this.wrapModulesToSave(name, modulesToSave, savedTensors);
    this.configs.set(name, plan.config);
    if (this.runtime.activeAdapter === null) this.runtime.activeAdapter = name;
  }

  /** Makes `name` the adapter every layer applies (null: none). Merged adapters must be unmerged first. */
  setAdapter(name: string | null): void {
    if (name !== null && !this.configs.has(name)) {
      throw new PeftError(`no adapter "${name}" (adapters: ${this.adapterNames.join(', ') || 'none'})`);
    }
    if (name !== this.runtime.activeAdapter && this.mergedAdapters().length > 0) {
      throw new PeftError(
        `adapters ${this.mergedAdapters().join(', ')} are merged; unmerge before switching`,
      );
    }
    this.runtime.activeAdapter = name;
  }

  /** Removes an adapter and frees its tensors; wrappers left with no adapter are unwrapped. */
  deleteAdapter(name: string): void {
    this.config(name);
    for (const { layer } of this.adapterLayers()) layer.deleteAdapter(name);
    this.configs.delete(name);
    this.initialStates.delete(name);
    if (this.runtime.activeAdapter === name) this.runtime.activeAdapter = this.adapterNames[0] ?? null;
    this.unwrapEmpty();
  }

  /** Training mode: dropout applies (call before training steps). */
  train(on = true): this {
    this.runtime.training = on;
    return this;
  }

  /** Evaluation mode: no dropout. */
  eval(): this {
    return this.train(false);
  }

  /**
   * Runs `fn` with every adapter switched off: the base model's outputs, without a second copy
   * of the weights (DPO's reference model). Merged adapters are unmerged first, as PEFT does.
   * Async functions keep the adapters off until they settle; do not interleave two calls.
   */
  withAdaptersDisabled<R>(fn: () => R): R {
    const previous = this.runtime.disabled;
    this.runtime.disabled = true;
    let result: R;
    try {
      result = fn();
    } catch (error) {
      this.runtime.disabled = previous;
      throw error;
    }
    if (result instanceof Promise) {
      return result.finally(() => {
        this.runtime.disabled = previous;
      }) as R;
    }
    this.runtime.disabled = previous;
    return result;
  }

  /** Logits of the model with the active adapter: CausalLM.forward. */
  forward(ids: Tensor, options?: ForwardOptions): Tensor {
    return this.model.forward(ids, options);
  }

  /** Hidden states after the final norm: CausalLM.hiddenStates. */
  hiddenStates(ids: Tensor, options?: ForwardOptions): Tensor {
    return this.model.hiddenStates(ids, options);
  }

  /**
   * Merges LoRA adapters (default: the active one) into the base weights, so the forward costs
   * what the base model's does. Bottleneck adapters cannot merge (they are nonlinear); a LoRA on
   * a weight shared with another module (a tied head) cannot either.
   */
  merge(names: readonly string[] = [this.requireActive()]): void {
    for (const name of names) {
      const method = this.methodOf(name);
      if (!method.mergeable)
        throw new PeftError(`adapter "${name}" is a ${method.peftType} adapter, which cannot be merged`);
    }
    const layers = this.mergeableLayers();
    checkUntied(
      this.model,
      layers.filter(({ layer }) => names.some((n) => layer.hasAdapter(n))),
      'merging',
      (module): module is InjectedLayer => this.methods.isLayer(module),
    );
    for (const { layer } of layers) layer.merge(names);
  }

  /** Takes merged adapters back out of the base weights. */
  unmerge(): void {
    for (const { layer } of this.mergeableLayers()) layer.unmerge();
  }

  /** Adapters merged into at least one layer. */
  mergedAdapters(): string[] {
    const names = new Set<string>();
    for (const { layer } of this.mergeableLayers()) for (const name of layer.merged) names.add(name);
    return [...names];
  }

  /**
   * Merges the active adapter (or `names`) and removes every adapter layer: the plain CausalLM
   * with updated weights, ready to save as a Hugging Face model. Trained modules_to_save copies
   * of the merged adapter replace the originals. This PeftModel is unusable afterwards.
   */
  mergeAndUnload(names: readonly string[] = [this.requireActive()]): CausalLM {
    this.merge(names);
    return this.removeAdapters(names[names.length - 1] ?? null);
  }

  /** Removes every adapter layer without merging: the base model as it was (PiSSA residuals stay). */
  unload(): CausalLM {
    this.unmerge();
    return this.removeAdapters(null);
  }

  /** Every injected layer with its Hugging Face name and current path, in model order. */
  adapterLayers(): AdapterLayerEntry[] {
    const layers: AdapterLayerEntry[] = [];
    for (const { name, path, module } of baseModules(this.model)) {
      if (this.methods.isLayer(module) || module instanceof ModulesToSaveWrapper) {
        layers.push({ name, path, layer: module });
      }
    }
    return layers;
  }

  /**
   * The tensors of adapter `name` by their names in PEFT's files
   * (`base_model.model.<module>.lora_A.weight`, modules_to_save under the module's own names).
   */
  adapterStateDict(name = this.requireActive()): Map<string, Tensor> {
    this.config(name);
    const state = new Map<string, Tensor>();
    for (const { name: module, layer } of this.adapterLayers()) {
      if (!layer.hasAdapter(name)) continue;
      for (const [key, tensor] of layer.adapterTensors(name))
        state.set(`${PEFT_PREFIX}${module}.${key}`, tensor);
    }
    return state;
  }

  /** The initial PiSSA factors of adapter `name` by module name (null unless it was PiSSA-initialised here). */
  pissaInitialFactors(name: string): PissaFactors | null {
    const initial = this.initialStates.get(name);
    return initial instanceof Map ? (initial as PissaFactors) : null;
  }

  /** What the method's injection kept for adapter `name` (PiSSA's initial factors), or undefined. */
  initialState(name: string): unknown {
    return this.initialStates.get(name);
  }

  /**
   * The parameters that train for adapter `name` (default: the active one), by their in-memory
   * names (`...q_proj.lora_A.default.weight`): its LoRA / DoRA / bottleneck tensors and its
   * modules_to_save copies. Everything else, the base weights included, stays frozen.
   */
  trainableParameters(name = this.requireActive()): [string, Tensor][] {
    const tensors = new Set(this.adapterStateDict(name).values());
    return [...this.model.namedParameters()].filter(([, tensor]) => tensors.has(tensor));
  }

  /**
   * Marks adapter `name`'s tensors (default: the active adapter's) for gradients and freezes
   * every other parameter, base weights and other adapters included. Call before training.
   */
  markTrainable(name = this.requireActive()): [string, Tensor][] {
    return markTrainable(
      this.model,
      this.trainableParameters(name).map(([, tensor]) => tensor),
    );
  }

  /** Trainable / total parameters and the bytes of weights, gradients and optimizer state. */
  summary(name = this.requireActive()): TrainableSummary {
    return trainableSummary(
      [...this.model.namedParameters()].map(([, tensor]) => tensor),
      this.trainableParameters(name).map(([, tensor]) => tensor),
    );
  }

  /** PEFT's print_trainable_parameters line with the memory figures. */
  formatSummary(name?: string): string {
    return formatTrainableSummary(this.summary(name));
  }

  private requireActive(): string {
    const name = this.runtime.activeAdapter;
    if (name === null) throw new PeftError('no adapter is active; name one');
    return name;
  }

  private mergeableLayers(): (AdapterLayerEntry & { layer: MergeableLayer })[] {
    return this.adapterLayers().filter(
      (entry): entry is AdapterLayerEntry & { layer: MergeableLayer } =>
        !(entry.layer instanceof ModulesToSaveWrapper) && isMergeable(entry.layer),
    );
  }

  /** Modules whose name ends with an entry of modules_to_save (PEFT's rule: a plain string suffix). */
  private planModulesToSave(entries: readonly string[] | null): BaseModule[] {
    if (!entries || entries.length === 0) return [];
    const found: BaseModule[] = [];
    for (const entry of baseModules(this.model)) {
      if (found.some((parent) => entry.name.startsWith(`${parent.name}.`))) continue;
      if (entries.some((suffix) => entry.name.endsWith(suffix))) found.push(entry);
    }
    if (found.length === 0) {
      throw new PeftError(`modules_to_save ${JSON.stringify(entries)} matched no module of the model`);
    }
    return found;
  }

  private takeModulesToSave(
    modules: readonly BaseModule[],
    take: ((fileName: string, shape: readonly number[]) => Tensor) | null,
  ): Map<string, Map<string, Tensor>> {
    const result = new Map<string, Map<string, Tensor>>();
    if (!take) return result;
    for (const { name, module } of modules) {
      const original = module instanceof ModulesToSaveWrapper ? module.original : module;
      const tensors = new Map<string, Tensor>();
      for (const [key, slot] of original.namedSlots())
        tensors.set(key, take(`${PEFT_PREFIX}${name}.${key}`, slot.shape));
      result.set(name, tensors);
    }
    return result;
  }

  private wrapModulesToSave(
    adapter: string,
    modules: readonly BaseModule[],
    tensors: Map<string, Map<string, Tensor>>,
  ): void {
    for (const { name, path } of modules) {
      let wrapper = this.model.getSubmodule(path);
      if (!(wrapper instanceof ModulesToSaveWrapper)) {
        wrapper = new ModulesToSaveWrapper(wrapper, this.runtime);
        this.model.setSubmodule(path, wrapper);
      }
      (wrapper as ModulesToSaveWrapper).addAdapter(adapter, tensors.get(name));
    }
  }

  private checkAllUsed(supplied: Map<string, Tensor>, used: Set<string>): void {
    const extra = [...supplied.keys()].filter((key) => !used.has(key));
    if (extra.length > 0) {
      throw new PeftError(
        `adapter tensors ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', ...' : ''} match no adapted module of this model ` +
          '(is the adapter for another model, or are target_modules / layers_to_transform different?)',
      );
    }
  }

  /** Replaces every wrapper by the module it wraps; `keepCopiesOf` promotes that adapter's modules_to_save copies. */
  private removeAdapters(keepCopiesOf: string | null): CausalLM {
    // Deepest first: replacing an outer wrapper would move the paths of the ones inside it.
    const layers = this.adapterLayers().reverse();
    for (const { path, layer } of layers) {
      let replacement: Module;
      if (layer instanceof ModulesToSaveWrapper) {
        replacement = layer.original;
        if (keepCopiesOf !== null && layer.hasAdapter(keepCopiesOf)) {
          for (const [key, tensor] of layer.detachCopy(keepCopiesOf)) {
            // The copy becomes the module's parameter (a tied head is untied by this, as in PEFT).
            // A packed original gives its slot up; the packed weight is freed unless a tied
            // module still reads it.
            const { owner, slotName } = ownerOf(replacement, key);
            const packed = owner.takePackedParameter(slotName);
            if (packed && !this.isPackedHeldElsewhere(packed)) packed.dispose();
            const previous = replacement.setParameterByName(key, tensor);
            if (previous && !this.isHeldElsewhere(previous, path)) previous.dispose();
          }
        }
      } else replacement = layer.baseLayer;
      layer.release();
      this.model.setSubmodule(path, replacement);
    }
    this.configs.clear();
    this.initialStates.clear();
    this.runtime.activeAdapter = null;
    return this.model;
  }

  private isPackedHeldElsewhere(weight: PackedWeight): boolean {
    for (const [, other] of this.model.namedPackedParameters()) if (other === weight) return true;
    return false;
  }

  private isHeldElsewhere(tensor: Tensor, path: string): boolean {
    for (const [name, slot] of this.model.namedSlots()) {
      if (slot.tensor === tensor && !name.startsWith(`${path}.`)) return true;
    }
    return false;
  }

  private unwrapEmpty(): void {
    for (const { path, layer } of this.adapterLayers().reverse()) {
      if (layer.adapterNames().length > 0) continue;
      if (!(layer instanceof ModulesToSaveWrapper) && isMergeable(layer) && layer.merged.length > 0) continue;
      this.model.setSubmodule(path, layer instanceof ModulesToSaveWrapper ? layer.original : layer.baseLayer);
    }
  }
}

/**
 * Wraps `model` with a first adapter named `adapterName` (default `default`, as in PEFT) and
 * makes it active. The base weights stay where they are; only adapter tensors are allocated.
 */
export async function getPeftModel(
  model: CausalLM,
  config: MethodConfig,
  options: { adapterName?: string; seed?: number; methods?: PeftMethodRegistry } = {},
): Promise<PeftModel> {
  const peft = new PeftModel(model, { seed: options.seed, methods: options.methods });
  await peft.addAdapter(options.adapterName ?? 'default', config, { seed: options.seed });
  return peft;
}

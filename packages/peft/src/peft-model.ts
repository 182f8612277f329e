import type { CausalLM, ForwardOptions, Module } from '@webtune/nn';
import type { Tensor } from '@webtune/tensors';
import type { BottleneckConfig } from './adapter/adapter-config.js';
import { AdapterBlock, type BottleneckTensors } from './adapter/adapter-layer.js';
import { injectBottleneck, planBottleneck } from './adapter/adapter-model.js';
import { type AdapterRuntime, createRuntime } from './adapter-runtime.js';
import { PeftError } from './errors.js';
import { initNeedsWeight } from './lora/init.js';
import type { LoraConfig } from './lora/lora-config.js';
import { LoraLinear, type LoraTensors } from './lora/lora-linear.js';
import { injectLora, planLora, resolveLoraConfig } from './lora/lora-model.js';
import { sharedTensors } from './modules.js';
import { ModulesToSaveWrapper } from './modules-to-save.js';
import { formatTrainableSummary, type TrainableSummary, trainableSummary } from './summary.js';
import { type BaseModule, baseModules } from './target-modules.js';
import { markTrainable } from './trainable.js';

/** The config of one adapter: LoRA (with DoRA and PiSSA options) or a bottleneck adapter. */
export type PeftConfig = LoraConfig | BottleneckConfig;

/** A layer this package injected: it holds per-adapter tensors under names relative to itself. */
export type AdapterLayer = LoraLinear | AdapterBlock | ModulesToSaveWrapper;

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
  private readonly configs = new Map<string, PeftConfig>();
  /** Initial PiSSA factors per adapter and module, kept on the host to save as plain LoRA. */
  private readonly pissaInitial = new Map<string, Map<string, { a: Float32Array; b: Float32Array }>>();

  constructor(
    readonly model: CausalLM,
    options: { seed?: number } = {},
  ) {
    this.runtime = createRuntime(options.seed ?? 0);
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
    return config;
  }

  /**
   * Adds an adapter called `name` into the model. The first adapter becomes active; later ones
   * are added inactive (PEFT's add_adapter) until `setAdapter`. Modules are matched and checked
   * before anything changes, so a config that does not fit leaves the model as it was.
   */
  async addAdapter(name: string, config: PeftConfig, options: AddAdapterOptions = {}): Promise<void> {
    if (this.configs.has(name)) throw new PeftError(`an adapter called "${name}" already exists`);
    if (!/^[A-Za-z0-9_-]+$/.test(name)) {
      throw new PeftError(`adapter name "${name}" must hold only letters, digits, "_" and "-"`);
    }
    const device = this.model.device;
    const seed = options.seed ?? 0;
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
    let resolved: PeftConfig;
    if (config.peft_type === 'LORA') {
      resolved = resolveLoraConfig(this.model, config, this.model.config.modelType);
      const targets = planLora(this.model, resolved);
      this.checkUntied(targets, resolved, 'LoRA with PiSSA init');
      const modulesToSave = this.planModulesToSave(resolved.modules_to_save);
      // Validate every supplied tensor before touching the model.
      const lookups = supplied
        ? targets.map((target) => {
            const prefix = `${PEFT_PREFIX}${target.name}.`;
            const { r, useDora } = target.settings;
            const tensors: LoraTensors = {
              a: take(`${prefix}lora_A.weight`, [r, target.inFeatures]),
              b: take(`${prefix}lora_B.weight`, [target.outFeatures, r]),
              magnitude: useDora ? take(`${prefix}lora_magnitude_vector`, [target.outFeatures]) : null,
            };
            return [target.name, tensors] as const;
          })
        : [];
      const byName = new Map(lookups);
      const savedTensors = this.takeModulesToSave(modulesToSave, supplied ? take : null);
      if (supplied) this.checkAllUsed(supplied, used);
      await injectLora(this.model, device, name, resolved, targets, this.runtime, {
        seed,
        tensorsFor: supplied ? (target) => byName.get(target.name)! : undefined,
      });
      if (!supplied && initNeedsWeight(resolved.init_lora_weights)) await this.keepPissaInitial(name);
      this.wrapModulesToSave(name, modulesToSave, savedTensors);
    } else if (config.peft_type === 'BOTTLENECK') {
      resolved = config;
      const targets = planBottleneck(this.model, config, this.model.config.hiddenSize);
      const modulesToSave = this.planModulesToSave(config.modules_to_save);
      const byName = new Map<string, BottleneckTensors>();
      if (supplied) {
        for (const target of targets) {
          const tensors: BottleneckTensors = new Map();
          const block = { hidden: target.hiddenSize, size: target.settings.size };
          for (const [key, shape] of [
            ['adapter.down_proj.weight', [block.size, block.hidden]],
            ['adapter.down_proj.bias', [block.size]],
            ['adapter.up_proj.weight', [block.hidden, block.size]],
            ['adapter.up_proj.bias', [block.hidden]],
          ] as const) {
            tensors.set(key, take(`${PEFT_PREFIX}${target.name}.${key}`, shape));
          }
          byName.set(target.name, tensors);
        }
      }
      const savedTensors = this.takeModulesToSave(modulesToSave, supplied ? take : null);
      if (supplied) this.checkAllUsed(supplied, used);
      injectBottleneck(this.model, device, name, config, targets, this.runtime, {
        seed,
        tensorsFor: supplied ? (target) => byName.get(target.name)! : undefined,
      });
      this.wrapModulesToSave(name, modulesToSave, savedTensors);
    } else {
      throw new PeftError(
        `unknown peft_type ${JSON.stringify((config as { peft_type: unknown }).peft_type)}`,
      );
    }
    this.configs.set(name, resolved);
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
    this.pissaInitial.delete(name);
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
      const config = this.config(name);
      if (config.peft_type !== 'LORA')
        throw new PeftError(`adapter "${name}" is a ${config.peft_type} adapter, which cannot be merged`);
    }
    const layers = this.loraLayers();
    this.checkUntied(
      layers.filter(({ layer }) => names.some((n) => layer.hasAdapter(n))),
      null,
      'merging',
    );
    for (const { layer } of layers) layer.merge(names);
  }

  /** Takes merged adapters back out of the base weights. */
  unmerge(): void {
    for (const { layer } of this.loraLayers()) layer.unmerge();
  }

  /** Adapters merged into at least one layer. */
  mergedAdapters(): string[] {
    const names = new Set<string>();
    for (const { layer } of this.loraLayers()) for (const name of layer.merged) names.add(name);
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
      if (
        module instanceof LoraLinear ||
        module instanceof AdapterBlock ||
        module instanceof ModulesToSaveWrapper
      ) {
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

  /** The initial PiSSA factors of adapter `name` by module path (null unless it was PiSSA-initialised here). */
  pissaInitialFactors(name: string): Map<string, { a: Float32Array; b: Float32Array }> | null {
    return this.pissaInitial.get(name) ?? null;
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

  private loraLayers(): (AdapterLayerEntry & { layer: LoraLinear })[] {
    return this.adapterLayers().filter(
      (entry): entry is AdapterLayerEntry & { layer: LoraLinear } => entry.layer instanceof LoraLinear,
    );
  }

  /** Throws when a module's weight is also held elsewhere (tied head), for operations that rewrite it. */
  private checkUntied(
    modules: readonly { name: string; path: string }[],
    config: LoraConfig | null,
    what: string,
  ): void {
    if (config && !initNeedsWeight(config.init_lora_weights)) return;
    const holders = sharedTensors(this.model);
    for (const { name, path } of modules) {
      const module = this.model.getSubmodule(path);
      const weight =
        module instanceof LoraLinear
          ? module.baseLayer.parameter('weight')
          : module.optionalParameter('weight');
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

  private async keepPissaInitial(name: string): Promise<void> {
    const factors = new Map<string, { a: Float32Array; b: Float32Array }>();
    for (const { name: module, layer } of this.loraLayers()) {
      if (!layer.hasAdapter(name)) continue;
      factors.set(module, {
        a: (await layer.loraA(name).toArray()) as Float32Array,
        b: (await layer.loraB(name).toArray()) as Float32Array,
      });
    }
    this.pissaInitial.set(name, factors);
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
            const previous = replacement.setParameterByName(key, tensor);
            if (previous && !this.isHeldElsewhere(previous, path)) previous.dispose();
          }
        }
      } else replacement = layer.baseLayer;
      layer.release();
      this.model.setSubmodule(path, replacement);
    }
    this.configs.clear();
    this.pissaInitial.clear();
    this.runtime.activeAdapter = null;
    return this.model;
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
      if (layer instanceof LoraLinear && layer.merged.length > 0) continue;
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
  config: PeftConfig,
  options: { adapterName?: string; seed?: number } = {},
): Promise<PeftModel> {
  const peft = new PeftModel(model, { seed: options.seed });
  await peft.addAdapter(options.adapterName ?? 'default', config, { seed: options.seed });
  return peft;
}

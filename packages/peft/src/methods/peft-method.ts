import type { CausalLM, Module } from '@webtune/nn';
import type { Device, Tensor } from '@webtune/tensors';
import type { AdapterRuntime } from '../adapter-runtime.js';

/** What every method's config has: PEFT's `peft_type` and the modules trained as full copies. */
export interface MethodConfig {
  peft_type: string;
  modules_to_save?: string[] | null;
}

/** A layer a method injects: it wraps a base module and holds per-adapter tensors under names relative to itself. */
export interface InjectedLayer extends Module {
  readonly baseLayer: Module;
  adapterNames(): string[];
  hasAdapter(name: string): boolean;
  /** The adapter's tensors by file name relative to the module (`lora_A.weight`). */
  adapterTensors(name: string): [string, Tensor][];
  deleteAdapter(name: string): void;
  /** Frees every adapter tensor (unloading). */
  release(): void;
}

/** A layer whose adapters fold into the base weight (LoRA): merge, unmerge, and what is merged. */
export interface MergeableLayer extends InjectedLayer {
  readonly merged: readonly string[];
  merge(names: readonly string[]): void;
  unmerge(): void;
}

/** Where an adapter is added: the model, its device, the shared runtime, the adapter's name and seed. */
export interface MethodContext {
  model: CausalLM;
  device: Device;
  runtime: AdapterRuntime;
  adapterName: string;
  seed: number;
}

/** One module an adapter changes, and the tensors it holds there (names relative to the module). */
export interface PlannedModule {
  /** Hugging Face module name (`model.layers.0.self_attn.q_proj`). */
  name: string;
  /** Tensor file names relative to the module, with their shapes. */
  tensors: [key: string, shape: number[]][];
}

/**
 * An adapter planned for a model, nothing changed yet: the resolved config, the modules and the
 * tensors each takes (so a loader checks every tensor before the model changes), and the
 * injection itself.
 */
export interface AdapterPlan<Config extends MethodConfig = MethodConfig> {
  config: Config;
  modules: PlannedModule[];
  /**
   * Puts the adapter into the model: with the given tensors per module name (loading), or freshly
   * initialised (null). Returns state kept with the adapter (PiSSA's initial factors), or undefined.
   */
  inject(tensorsFor: ((module: string) => Map<string, Tensor>) | null): Promise<unknown>;
}

/**
 * A PEFT method, one folder each (lora/, adapter/): how its adapter_config.json reads and writes,
 * which modules and tensors it adds to a model, how it injects, and whether it merges. PeftModel
 * and the adapter files dispatch through these; a method added to a registry needs no change there.
 */
export interface PeftMethod<Config extends MethodConfig = MethodConfig> {
  /** PEFT's peft_type (`LORA`). */
  readonly peftType: string;
  /** Parses adapter_config.json (unknown keys ignored), naming the key that is wrong. */
  parseConfig(json: Record<string, unknown>, fileName?: string): Config;
  /** adapter_config.json's fields for a config. */
  configToJson(config: Config): Record<string, unknown>;
  /** Resolves the config for `context.model`, finds its modules and names their tensors; changes nothing. */
  plan(context: MethodContext, config: Config): AdapterPlan<Config>;
  /** True for the layers this method injects (how PeftModel finds them again). */
  isLayer(module: Module): module is InjectedLayer;
  /** True when the layers fold into the base weights (LoRA); false for nonlinear methods. */
  readonly mergeable: boolean;
  /** A tensor file name as the method stores it (accepting spellings of older writers). */
  tensorFileName?(name: string): string;
  /**
   * Rewrites an adapter for saving so it applies to the original base weights (PiSSA -> LoRA):
   * `values` holds the tensors by full file name; `initial` is what inject returned.
   */
  convertForSaving?(
    config: Config,
    values: Map<string, { shape: number[]; data: Float32Array }>,
    initial: unknown,
    prefix: string,
  ): Config;
}

export function isMergeable(layer: Module): layer is MergeableLayer {
  const candidate = layer as Partial<MergeableLayer>;
  return typeof candidate.merge === 'function' && typeof candidate.unmerge === 'function';
}

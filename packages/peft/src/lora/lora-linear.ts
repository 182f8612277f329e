import {
  type FusedLowRankLayer,
  type FusedLowRankTerm,
  type Linear,
  type LinearLike,
  Module,
} from '@webtune/nn';
import { type AdapterRuntime, layerSeed } from '../adapter-runtime.js';
import { PeftError } from '../errors.js';
import type { Tensor } from '../functional.js';
import * as F from '../functional.js';
import { ModuleDict, ParameterModule } from '../modules.js';

/** One adapter of a LoRA layer: its rank, scale and options. */
export interface LoraSettings {
  r: number;
  alpha: number;
  /** alpha / r, or alpha / sqrt(r) with rsLoRA. */
  scaling: number;
  dropout: number;
  useDora: boolean;
}

/** The tensors of one adapter: A [r, in], B [out, r], and DoRA's magnitude [out]. */
export interface LoraTensors {
  a: Tensor;
  b: Tensor;
  magnitude?: Tensor | null;
}

/**
 * A Linear with LoRA adapters (PEFT's lora.Linear): children `base_layer` (the frozen Linear),
 * `lora_A.<adapter>`, `lora_B.<adapter>` and, for DoRA, `lora_magnitude_vector.<adapter>`, so the
 * parameter names are PEFT's in-memory names.
 *
 * Forward with the active adapter a: y = base(x) + s B A drop(x), s = alpha / r.
 * DoRA (Liu et al., 2024; PEFT's DoraLinearLayer): with n = ||W + s B A|| per output row, taken
 * as a constant (the paper's section 4.3, so no gradient flows through the norm),
 * y = base(x) + (m / n - 1) W x' + (m / n) s B A x', x' = drop(x); without dropout this is
 * (m / n)(W + s B A) x + bias: the magnitude m scales the normalised direction.
 *
 * Adapters are float32 whatever the base dtype: an f16 input is cast up for the adapter path and
 * its output cast back, as PEFT's autocast_adapter_dtype does.
 */
export class LoraLinear extends Module implements LinearLike, FusedLowRankLayer {
  /** Marks a layer this package injected (target matching skips its insides). */
  readonly adapterWrapper = true;
  /** Stands in for a Linear (all-linear matching counts it). */
  readonly wrapsLinear = true;
  /** The child holding the wrapped module. */
  readonly wrappedChildName = 'base_layer';
  readonly inFeatures: number;
  readonly outFeatures: number;
  private readonly settings = new Map<string, LoraSettings>();
  private readonly mergedAdapters: string[] = [];
  /** DoRA weight norms taken at merge time, needed to unmerge. */
  private readonly mergedNorms = new Map<string, Tensor>();

  constructor(
    base: Linear,
    readonly runtime: AdapterRuntime,
    /** The layer's module path in the model: with the runtime seed it fixes the dropout masks. */
    readonly path: string,
  ) {
    super();
    this.inFeatures = base.inFeatures;
    this.outFeatures = base.outFeatures;
    this.addModule('base_layer', base);
    this.addModule('lora_A', new ModuleDict());
    this.addModule('lora_B', new ModuleDict());
    this.addModule('lora_magnitude_vector', new ModuleDict());
  }

  /** The wrapped Linear. */
  get baseLayer(): Linear {
    return this.child<Linear>('base_layer');
  }

  /** Adapters merged into the base weight, in merge order. */
  get merged(): readonly string[] {
    return this.mergedAdapters;
  }

  adapterNames(): string[] {
    return [...this.settings.keys()];
  }

  hasAdapter(name: string): boolean {
    return this.settings.has(name);
  }

  settingsOf(name: string): LoraSettings {
    const settings = this.settings.get(name);
    if (!settings)
      throw new PeftError(
        `LoRA layer has no adapter "${name}" (it has ${this.adapterNames().join(', ') || 'none'})`,
      );
    return settings;
  }

  /** Shapes of an adapter's tensors, keyed by their names in PEFT files (relative to this module). */
  expectedShapes(name: string): Map<string, number[]> {
    const { r, useDora } = this.settingsOf(name);
    const shapes = new Map<string, number[]>([
      ['lora_A.weight', [r, this.inFeatures]],
      ['lora_B.weight', [this.outFeatures, r]],
    ]);
    if (useDora) shapes.set('lora_magnitude_vector', [this.outFeatures]);
    return shapes;
  }

  /** Adds an adapter holding the given tensors (this layer owns them from now on). */
  addAdapter(name: string, settings: LoraSettings, tensors: LoraTensors): void {
    if (this.settings.has(name)) throw new PeftError(`LoRA layer already has an adapter "${name}"`);
    if (settings.useDora && !tensors.magnitude)
      throw new PeftError(`DoRA adapter "${name}" needs a magnitude vector`);
    const a = this.dict('lora_A').set(name, new ParameterModule({ weight: [settings.r, this.inFeatures] }));
    const b = this.dict('lora_B').set(name, new ParameterModule({ weight: [this.outFeatures, settings.r] }));
    a.setParameter('weight', tensors.a);
    b.setParameter('weight', tensors.b);
    if (settings.useDora) {
      const m = this.dict('lora_magnitude_vector').set(
        name,
        new ParameterModule({ weight: [this.outFeatures] }),
      );
      m.setParameter('weight', tensors.magnitude!);
    }
    this.settings.set(name, { ...settings });
  }

  /** Removes an adapter and frees its tensors. */
  deleteAdapter(name: string): void {
    if (!this.settings.has(name)) return;
    if (this.mergedAdapters.includes(name))
      throw new PeftError(`adapter "${name}" is merged; unmerge before deleting it`);
    for (const dictName of ['lora_A', 'lora_B', 'lora_magnitude_vector']) {
      const dict = this.dict(dictName);
      const entry = dict.get(name);
      if (!entry) continue;
      entry.dispose();
      this.setSubmodule(dictName, dict.without(name));
    }
    this.settings.delete(name);
  }

  /**
   * Frees every adapter tensor and forgets merges, leaving the base weight as it is (merged
   * updates stay in it): what unloading does before the base layer replaces this one.
   */
  release(): void {
    for (const dictName of ['lora_A', 'lora_B', 'lora_magnitude_vector']) {
      this.dict(dictName).dispose();
      this.setSubmodule(dictName, new ModuleDict());
    }
    for (const norm of this.mergedNorms.values()) norm.dispose();
    this.mergedNorms.clear();
    this.mergedAdapters.length = 0;
    this.settings.clear();
  }

  loraA(name: string): Tensor {
    return this.entry('lora_A', name).parameter('weight');
  }

  loraB(name: string): Tensor {
    return this.entry('lora_B', name).parameter('weight');
  }

  /** DoRA's magnitude vector [out], or null for plain LoRA. */
  magnitude(name: string): Tensor | null {
    return this.dict('lora_magnitude_vector').get(name)?.parameter('weight') ?? null;
  }

  /** An adapter's tensors by their PEFT file names relative to this module. */
  adapterTensors(name: string): [string, Tensor][] {
    const entries: [string, Tensor][] = [
      ['lora_A.weight', this.loraA(name)],
      ['lora_B.weight', this.loraB(name)],
    ];
    const magnitude = this.magnitude(name);
    if (magnitude) entries.push(['lora_magnitude_vector', magnitude]);
    return entries;
  }

  /** Replaces one of an adapter's tensors (loading); the previous one is freed. */
  setAdapterTensor(name: string, key: string, tensor: Tensor): void {
    const dictName = key === 'lora_magnitude_vector' ? key : key.slice(0, key.indexOf('.'));
    const entry = this.entry(dictName, name);
    entry.setParameter('weight', tensor)?.dispose();
  }

  forward(x: Tensor): Tensor {
    const base = this.baseLayer;
    const runtime = this.runtime;
    if (runtime.disabled) {
      // PEFT's disable_adapter unmerges first: the base weight must be the base model's.
      if (this.mergedAdapters.length > 0) this.unmerge();
      return base.forward(x);
    }
    const name = runtime.activeAdapter;
    const settings = name === null || this.mergedAdapters.length > 0 ? undefined : this.settings.get(name);
    if (!settings || name === null) return base.forward(x);
    const a = this.loraA(name);
    const b = this.loraB(name);
    const fused = this.fusedOp(x, settings, a);
    if (fused) return F.lowRankLinear(x, fused, base.optionalParameter('bias'), a, b, settings.scaling);
    const result = base.forward(x);
    let input = F.cast(x, a.dtype as 'f32' | 'f16');
    const dropping = runtime.training && settings.dropout > 0;
    // The mask depends on (runtime seed, path, shape) only, so a recomputed forward (gradient
    // checkpointing) or a resumed run drops the same elements.
    if (dropping) input = F.dropout(input, settings.dropout, this.dropoutSeed(), 0);
    const hidden = F.linear(input, a);
    // Plain LoRA: result + scaling (h B^T) in one product where the dtypes agree.
    if (!settings.useDora && result.dtype === b.dtype)
      return F.linearOnto(hidden, b, result, settings.scaling);
    const lora = F.linear(hidden, b);
    if (!settings.useDora)
      return F.add(result, F.cast(F.scale(lora, settings.scaling), result.dtype as 'f32' | 'f16'));
    const norm = this.weightNorm(name);
    const factor = F.div(this.magnitude(name)!, norm);
    let baseResult: Tensor;
    if (dropping) {
      // The base term must see the same dropped input as the adapter (PEFT recomputes it).
      const packed = base.packedParameter('weight');
      baseResult = packed
        ? F.packedLinear(input, packed, null)
        : F.linear(input, F.cast(base.parameter('weight'), a.dtype as 'f32' | 'f16'));
    } else {
      const bias = base.optionalParameter('bias');
      baseResult = F.cast(bias ? F.sub(result, bias) : result, a.dtype as 'f32' | 'f16');
    }
    const dora = F.add(F.mul(F.sub(factor, 1), baseResult), F.mul(F.scale(lora, settings.scaling), factor));
    return F.add(result, F.cast(dora, result.dtype as 'f32' | 'f16'));
  }

  /**
   * residual + forward(x) (the residual stream after o_proj or down_proj): added in the fused
   * op's epilogue where `forward` runs as one lowRankLinear, else a separate add.
   */
  forwardResidual(x: Tensor, residual: Tensor): Tensor {
    const runtime = this.runtime;
    const name = runtime.activeAdapter;
    const settings =
      runtime.disabled || name === null || this.mergedAdapters.length > 0
        ? undefined
        : this.settings.get(name);
    const weight = settings && name !== null ? this.fusedOp(x, settings, this.loraA(name)) : null;
    if (!settings || name === null || !weight || residual.dtype !== x.dtype)
      return F.add(residual, this.forward(x));
    const bias = this.baseLayer.optionalParameter('bias');
    return F.lowRankLinear(x, weight, bias, this.loraA(name), this.loraB(name), settings.scaling, residual);
  }

  /**
   * The base weight when plain LoRA runs as one lowRankLinear op (s B (A x) added in the base
   * product's epilogue, the input gradient dy W + dh A one product): an unpacked base of the
   * adapter's dtype, the input of it too, no DoRA, no dropout while training; else null.
   */
  private fusedOp(x: Tensor, settings: LoraSettings, a: Tensor): Tensor | null {
    const base = this.baseLayer;
    if (!x.device.tuning.lowRankEpilogue || base.packedParameter('weight')) return null;
    const weight = base.parameter('weight');
    if (settings.useDora || (this.runtime.training && settings.dropout > 0)) return null;
    return weight.dtype === a.dtype && x.dtype === a.dtype ? weight : null;
  }

  /**
   * What the fused decode kernels need to reproduce `forward`: the base Linear and the active
   * adapter's A, B and scale (no term when adapters are off or merged into the base); null where
   * they cannot (DoRA, dropout while training, adapters switched off while merged).
   */
  fusedLowRank(): { base: Linear; term: FusedLowRankTerm | null } | null {
    const base = this.baseLayer;
    if (this.runtime.disabled) return this.mergedAdapters.length > 0 ? null : { base, term: null };
    const name = this.runtime.activeAdapter;
    const settings = name === null ? undefined : this.settings.get(name);
    if (this.mergedAdapters.length > 0 || name === null || !settings) return { base, term: null };
    if (this.runtime.training && settings.dropout > 0) return null;
    const term = { a: this.loraA(name), b: this.loraB(name), scale: settings.scaling };
    const magnitude = this.magnitude(name);
    // DoRA: the kernels scale W x + s B A x by m / ||W + s B A|| (the norm taken when they start).
    if (settings.useDora && magnitude)
      return { base, term: { ...term, dora: { magnitude, norm: () => this.weightNorm(name) } } };
    return { base, term };
  }

  /** Seed of this layer's dropout mask under the runtime's current seed (counter offset 0). */
  dropoutSeed(): number {
    return layerSeed(this.runtime, `lora:${this.path}`);
  }

  /** s B A [out, in] in float32: the adapter's update of the weight. */
  deltaWeight(name: string): Tensor {
    const { scaling } = this.settingsOf(name);
    return F.scale(F.matmul(this.loraB(name), this.loraA(name)), scaling);
  }

  /**
   * DoRA's ||W + s B A|| per output row [out], as a constant (no gradient), from the unmerged
   * weight. A packed frozen base (quantized or half precision) is decoded to f32 for it, so the
   * norm is that of the weight the forward multiplies by.
   */
  weightNorm(name: string): Tensor {
    return F.detached(this.loraA(name), () => F.rowNorm(F.add(this.baseWeightF32(), this.deltaWeight(name))));
  }

  /** The base weight [out, in] in f32: decoded from a packed base, else cast. Call inside a scope. */
  baseWeightF32(): Tensor {
    const packed = this.baseLayer.packedParameter('weight');
    return packed ? F.unpacked(packed) : F.cast(this.baseLayer.parameter('weight'), 'f32');
  }

  /**
   * Adds the adapters' updates into the base weight (PEFT's merge): W += s B A, or for DoRA
   * W = (m / ||W + s B A||) (W + s B A). The forward then runs the base layer alone. A DoRA
   * adapter merges only into an unmerged weight (its norm must be the base's).
   */
  merge(names: readonly string[]): void {
    for (const name of names) {
      if (!this.settings.has(name) || this.mergedAdapters.includes(name)) continue;
      const settings = this.settingsOf(name);
      if (settings.useDora && this.mergedAdapters.length > 0) {
        throw new PeftError(
          `DoRA adapter "${name}" cannot be merged on top of other merged adapters; unmerge them first`,
        );
      }
      const weight = this.baseLayer.parameter('weight');
      const next = F.detached(weight, () => {
        const sum = F.add(F.cast(weight, 'f32'), this.deltaWeight(name));
        if (!settings.useDora) return F.cast(sum, weight.dtype as 'f32' | 'f16');
        const norm = F.rowNorm(sum).keep();
        this.mergedNorms.set(name, norm);
        const factor = F.div(this.magnitude(name)!, norm).reshape([this.outFeatures, 1]);
        return F.cast(F.mul(sum, factor), weight.dtype as 'f32' | 'f16');
      });
      this.replaceWeight(next);
      this.mergedAdapters.push(name);
    }
  }

  /** Takes every merged adapter back out of the base weight, last merged first. */
  unmerge(): void {
    while (this.mergedAdapters.length > 0) {
      const name = this.mergedAdapters.pop()!;
      const weight = this.baseLayer.parameter('weight');
      const settings = this.settingsOf(name);
      const next = F.detached(weight, () => {
        let current = F.cast(weight, 'f32');
        if (settings.useDora) {
          const norm = this.mergedNorms.get(name)!;
          const factor = F.div(this.magnitude(name)!, norm).reshape([this.outFeatures, 1]);
          current = F.div(current, factor);
        }
        return F.cast(F.sub(current, this.deltaWeight(name)), weight.dtype as 'f32' | 'f16');
      });
      this.mergedNorms.get(name)?.dispose();
      this.mergedNorms.delete(name);
      this.replaceWeight(next);
    }
  }

  private replaceWeight(next: Tensor): void {
    const previous = this.baseLayer.setParameter('weight', next.keep());
    previous?.dispose();
  }

  private dict(name: string): ModuleDict<ParameterModule> {
    return this.child<ModuleDict<ParameterModule>>(name);
  }

  private entry(dictName: string, name: string): ParameterModule {
    const entry = this.dict(dictName).get(name);
    if (!entry) throw new PeftError(`LoRA layer has no ${dictName} for adapter "${name}"`);
    return entry;
  }
}

import { Module } from '@webtune/nn';
import type { PackedWeight, Tensor } from '@webtune/tensors';
import type { AdapterRuntime } from './adapter-runtime.js';
import { PeftError } from './errors.js';
import * as F from './functional.js';
import { ModuleDict, mirrorModule } from './modules.js';

/**
 * A module trained whole for an adapter (PEFT's ModulesToSaveWrapper for `modules_to_save`):
 * children `original_module` (frozen) and `modules_to_save.<adapter>` (a trainable copy of its
 * parameters, same names). The forward runs the original module with the active adapter's
 * tensors swapped into its slots, then swaps them back, so any module type works and the
 * original's code runs unchanged. With adapters disabled the original runs.
 *
 * On a packed frozen base (quantized or half precision) the original holds its weight packed; the
 * copy is decoded to f32 (PEFT's copy of a bnb-quantized module is likewise a float module), and
 * during the forward the packed weight steps out of its slot so the original reads the copy. The
 * rest of the model stays packed.
 */
export class ModulesToSaveWrapper extends Module {
  readonly adapterWrapper = true;
  readonly wrappedChildName = 'original_module';

  constructor(
    original: Module,
    readonly runtime: AdapterRuntime,
  ) {
    super();
    this.addModule('original_module', original);
    this.addModule('modules_to_save', new ModuleDict());
    // A Linear or an adapter layer inside: keep the LinearLike fields.
    const linear = original as { inFeatures?: number; outFeatures?: number; wrapsLinear?: boolean };
    if (linear.inFeatures !== undefined)
      Object.assign(this, { inFeatures: linear.inFeatures, outFeatures: linear.outFeatures });
  }

  get original(): Module {
    return this.child('original_module');
  }

  adapterNames(): string[] {
    return this.copies().keys();
  }

  hasAdapter(name: string): boolean {
    return this.copies().has(name);
  }

  /** Shapes of an adapter's copy by parameter name relative to the wrapped module. */
  expectedShapes(name: string): Map<string, number[]> {
    const copy = this.copy(name);
    return new Map([...copy.namedSlots()].map(([key, slot]) => [key, [...slot.shape]]));
  }

  /**
   * Adds a trainable copy for adapter `name`: of the original's current tensors, or the given
   * ones (loading; keys are parameter names relative to the module).
   */
  addAdapter(name: string, tensors?: Map<string, Tensor>): void {
    if (this.hasAdapter(name)) throw new PeftError(`modules_to_save: adapter "${name}" already has a copy`);
    const copy = this.copies().set(name, mirrorModule(this.original));
    for (const [key, slot] of this.original.namedSlots()) {
      const given = tensors?.get(key);
      if (given) {
        // A file holds float32; the copy takes the original's dtype (an f16 model's head stays f16).
        const dtype = (slot.tensor?.dtype ?? given.dtype) as 'f32' | 'f16';
        const converted =
          given.dtype === dtype ? given : F.detached(given, () => F.cast(given, dtype)).keep();
        if (converted !== given) given.dispose();
        copy.setParameterByName(key, converted);
      } else if (slot.tensor) {
        const source = slot.tensor;
        copy.setParameterByName(key, F.detached(source, () => F.add(source, 0)).keep());
      } else {
        const packed = packedSlot(this.original, key);
        if (packed)
          copy.setParameterByName(key, F.detached(packed.chunks[0].words, () => F.unpacked(packed)).keep());
      }
    }
  }

  deleteAdapter(name: string): void {
    const entry = this.copies().get(name);
    if (!entry) return;
    entry.dispose();
    this.setSubmodule('modules_to_save', this.copies().without(name));
  }

  /** Frees every copy (unloading). */
  release(): void {
    for (const name of this.adapterNames()) this.deleteAdapter(name);
  }

  /** Removes an adapter's copy without freeing its tensors, and returns them (unload promotes them). */
  detachCopy(name: string): [string, Tensor][] {
    const tensors = this.adapterTensors(name);
    this.setSubmodule('modules_to_save', this.copies().without(name));
    return tensors;
  }

  adapterTensors(name: string): [string, Tensor][] {
    return [...this.copy(name).namedParameters()];
  }

  setAdapterTensor(name: string, key: string, tensor: Tensor): void {
    this.copy(name).setParameterByName(key, tensor)?.dispose();
  }

  forward(...args: unknown[]): Tensor {
    const original = this.original as Module & { forward(...a: unknown[]): Tensor };
    const name = this.runtime.activeAdapter;
    if (this.runtime.disabled || name === null || !this.hasAdapter(name)) return original.forward(...args);
    const copy = this.copy(name);
    const swapped: [string, Tensor | null, PackedWeight | null][] = [];
    try {
      for (const [key, tensor] of copy.namedParameters()) {
        const { owner, slotName } = ownerOf(original, key);
        const packed = owner.takePackedParameter(slotName);
        swapped.push([key, owner.setParameter(slotName, tensor), packed]);
      }
      return original.forward(...args);
    } finally {
      for (const [key, previous, packed] of swapped.reverse()) {
        const { owner, slotName } = ownerOf(original, key);
        if (packed) owner.restorePackedParameter(slotName, packed);
        else if (previous) owner.setParameter(slotName, previous);
      }
    }
  }

  private copies(): ModuleDict {
    return this.child<ModuleDict>('modules_to_save');
  }

  private copy(name: string): Module {
    const copy = this.copies().get(name);
    if (!copy) throw new PeftError(`modules_to_save: no copy for adapter "${name}"`);
    return copy;
  }
}

/** The module holding a parameter by its name relative to `module`, and the slot's own name. */
export function ownerOf(module: Module, key: string): { owner: Module; slotName: string } {
  const cut = key.lastIndexOf('.');
  return { owner: cut < 0 ? module : module.getSubmodule(key.slice(0, cut)), slotName: key.slice(cut + 1) };
}

/** The packed frozen weight in a slot (by name relative to `module`), or null. */
function packedSlot(module: Module, key: string): PackedWeight | null {
  const { owner, slotName } = ownerOf(module, key);
  return owner.packedParameter(slotName);
}

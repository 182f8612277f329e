import type { PackedWeight, Shape, Tensor } from '@webtune/tensors';
import { ModelError } from '../errors.js';

/** What a parameter slot expects before a tensor fills it. */
export interface ParameterSlot {
  shape: readonly number[];
  tensor: Tensor | null;
}

/**
 * A node of a model tree. Parameters are plain Tensors held in named slots, submodules in named
 * children, so the dotted path of a parameter is its Hugging Face name
 * (`model.layers.3.self_attn.q_proj.weight`) and checkpoints and adapters map one to one.
 *
 * A slot is declared with its shape and starts empty: a loader (or `initialize`) fills it, so a
 * model is never materialised twice. Modules look their children up by name at every forward, so
 * replacing a child (`setSubmodule`, what PEFT does to wrap a Linear) takes effect at once.
 */
export class Module {
  private readonly slots = new Map<string, ParameterSlot>();
  /** Slots filled by a frozen packed weight (half precision or quantized) instead of a Tensor. */
  private readonly packedSlots = new Map<string, PackedWeight>();
  private readonly children = new Map<string, Module>();

  /** Declares an empty parameter slot of a given shape. */
  protected declareParameter(name: string, shape: Shape): void {
    if (this.slots.has(name) || this.children.has(name)) {
      throw new ModelError(`${this.constructor.name}: "${name}" is declared twice`);
    }
    this.slots.set(name, { shape: [...shape], tensor: null });
  }

  /** Adds a child module under `name` and returns it. */
  protected addModule<M extends Module>(name: string, module: M): M {
    if (this.slots.has(name) || this.children.has(name)) {
      throw new ModelError(`${this.constructor.name}: "${name}" is declared twice`);
    }
    this.children.set(name, module);
    return module;
  }

  /** The tensor in a parameter slot of this module; throws if the slot is empty or unknown. */
  parameter(name: string): Tensor {
    const slot = this.slots.get(name);
    if (!slot) throw new ModelError(`${this.constructor.name} has no parameter "${name}"`);
    if (!slot.tensor) {
      const packed = this.packedSlots.get(name);
      if (packed) {
        throw new ModelError(
          `${this.constructor.name}: parameter "${name}" is a frozen ${packed.format} base weight (quantized or half-precision load); this operation needs it in f32: load the model without quantization_bit / fp16 / bf16`,
        );
      }
      throw new ModelError(
        `${this.constructor.name}: parameter "${name}" has not been loaded or initialised`,
      );
    }
    return slot.tensor;
  }

  /** The tensor in a slot, or null when the slot is absent (an optional bias) or empty. */
  optionalParameter(name: string): Tensor | null {
    return this.slots.get(name)?.tensor ?? null;
  }

  /** Whether this module declares a parameter slot of that name. */
  hasParameter(name: string): boolean {
    return this.slots.has(name);
  }

  /**
   * Puts a tensor into a slot of this module, checking its shape. Returns the tensor it replaced
   * (the caller decides whether to dispose it; a tied weight may still be in use elsewhere).
   */
  setParameter(name: string, tensor: Tensor): Tensor | null {
    const slot = this.slots.get(name);
    if (!slot) throw new ModelError(`${this.constructor.name} has no parameter "${name}"`);
    if (!sameShape(slot.shape, tensor.shape)) {
      throw new ModelError(
        `${this.constructor.name}.${name}: expected shape [${slot.shape.join(', ')}], got [${tensor.shape.join(', ')}]`,
      );
    }
    const previous = slot.tensor;
    slot.tensor = tensor;
    return previous;
  }

  /** The child module called `name`. */
  child<M extends Module = Module>(name: string): M {
    const module = this.children.get(name);
    if (!module) throw new ModelError(`${this.constructor.name} has no submodule "${name}"`);
    return module as M;
  }

  /** The module at a dotted path below this one (`model.layers.0.self_attn`); '' is this module. */
  getSubmodule<M extends Module = Module>(path: string): M {
    let module: Module = this;
    if (path === '') return module as M;
    for (const part of path.split('.')) {
      const next = module.children.get(part);
      if (!next) throw new ModelError(`no submodule "${path}" (stopped at "${part}")`);
      module = next;
    }
    return module as M;
  }

  /** Replaces the module at a dotted path (how adapters wrap a layer). Returns the old one. */
  setSubmodule(path: string, module: Module): Module {
    const cut = path.lastIndexOf('.');
    const parent = cut < 0 ? this : this.getSubmodule(path.slice(0, cut));
    const name = path.slice(cut + 1);
    const previous = parent.children.get(name);
    if (!previous) throw new ModelError(`no submodule "${path}" to replace`);
    parent.children.set(name, module);
    return previous;
  }

  /** Direct children in declaration order. */
  namedChildren(): [string, Module][] {
    return [...this.children];
  }

  /**
   * Every module in the tree with its dotted path, this one first as `prefix` ('' by default),
   * in declaration order (depth first), like PyTorch's named_modules().
   */
  *namedModules(prefix = ''): Generator<[string, Module]> {
    // Depth first, each module before its children, children in the order they were added. An
    // explicit stack: nested `yield*` passed every module up through one generator per level
    // (~140 KB of garbage per generate call at the stories15M shape, in its support check).
    const stack: [string, Module][] = [[prefix, this]];
    while (stack.length > 0) {
      const [path, module] = stack.pop() as [string, Module];
      yield [path, module];
      const children = [...module.children];
      for (let i = children.length - 1; i >= 0; i--) {
        const [name, child] = children[i];
        stack.push([path ? `${path}.${name}` : name, child]);
      }
    }
  }

  /**
   * Every filled parameter with its Hugging Face name. A tensor reached twice (a tied head) is
   * listed once, under the first name, like PyTorch's named_parameters().
   */
  *namedParameters(prefix = ''): Generator<[string, Tensor]> {
    const seen = new Set<Tensor>();
    for (const [path, module] of this.namedModules(prefix)) {
      for (const [name, slot] of module.slots) {
        if (!slot.tensor || seen.has(slot.tensor)) continue;
        seen.add(slot.tensor);
        yield [path ? `${path}.${name}` : name, slot.tensor];
      }
    }
  }

  /** Every declared slot with its full name, filled or not (ties included under every name). */
  *namedSlots(prefix = ''): Generator<[string, ParameterSlot]> {
    for (const [path, module] of this.namedModules(prefix)) {
      for (const [name, slot] of module.slots) yield [path ? `${path}.${name}` : name, slot];
    }
  }

  /**
   * Fills a slot with a frozen packed weight (it takes no gradient and is not a parameter: not in
   * namedParameters, not trained, not saved). Any tensor the slot held is disposed.
   */
  setPackedParameter(name: string, weight: PackedWeight): void {
    const slot = this.slots.get(name);
    if (!slot) throw new ModelError(`${this.constructor.name} has no parameter "${name}"`);
    if (!sameShape(slot.shape, weight.shape)) {
      throw new ModelError(
        `${this.constructor.name}.${name}: expected shape [${slot.shape.join(', ')}], got packed [${weight.shape.join(', ')}]`,
      );
    }
    slot.tensor?.dispose();
    slot.tensor = null;
    this.packedSlots.get(name)?.dispose();
    this.packedSlots.set(name, weight);
  }

  /**
   * Takes the packed weight out of a slot without freeing it (the slot is empty after), so that
   * an f32 tensor can stand in for it: modules_to_save trains a decoded copy of a packed table.
   */
  takePackedParameter(name: string): PackedWeight | null {
    const weight = this.packedSlots.get(name) ?? null;
    this.packedSlots.delete(name);
    return weight;
  }

  /**
   * Puts back a packed weight taken with takePackedParameter. The tensor that stood in for it is
   * left out of the slot but not freed (its owner keeps it).
   */
  restorePackedParameter(name: string, weight: PackedWeight): void {
    const slot = this.slots.get(name);
    if (!slot) throw new ModelError(`${this.constructor.name} has no parameter "${name}"`);
    slot.tensor = null;
    this.packedSlots.set(name, weight);
  }

  /** The packed weight in a slot of this module, or null. */
  packedParameter(name: string): PackedWeight | null {
    return this.packedSlots.get(name) ?? null;
  }

  /** Every packed frozen weight in the tree with its Hugging Face name. */
  *namedPackedParameters(prefix = ''): Generator<[string, PackedWeight]> {
    for (const [path, module] of this.namedModules(prefix)) {
      for (const [name, weight] of module.packedSlots) yield [path ? `${path}.${name}` : name, weight];
    }
  }

  /** Fills the slot called by its full name (`model.norm.weight`). */
  setParameterByName(fullName: string, tensor: Tensor): Tensor | null {
    const cut = fullName.lastIndexOf('.');
    const owner = cut < 0 ? this : this.getSubmodule(fullName.slice(0, cut));
    return owner.setParameter(fullName.slice(cut + 1), tensor);
  }

  /** The tensor held under a full name, or null when that slot is empty. */
  getParameterByName(fullName: string): Tensor | null {
    const cut = fullName.lastIndexOf('.');
    const owner = cut < 0 ? this : this.getSubmodule(fullName.slice(0, cut));
    if (!owner.hasParameter(fullName.slice(cut + 1))) {
      throw new ModelError(`no parameter "${fullName}"`);
    }
    return owner.optionalParameter(fullName.slice(cut + 1));
  }

  /** Names of declared slots that hold no tensor yet. */
  missingParameters(): string[] {
    const packed = new Set([...this.namedPackedParameters()].map(([name]) => name));
    return [...this.namedSlots()]
      .filter(([name, slot]) => !slot.tensor && !packed.has(name))
      .map(([name]) => name);
  }

  /** Number of elements over all distinct parameters. */
  parameterCount(): number {
    let count = 0;
    for (const [, tensor] of this.namedParameters()) count += tensor.size;
    return count;
  }

  /** Frees every parameter's GPU memory and empties the slots. */
  dispose(): void {
    const seen = new Set<Tensor>();
    for (const [, module] of this.namedModules()) {
      for (const slot of module.slots.values()) {
        if (slot.tensor && !seen.has(slot.tensor)) {
          seen.add(slot.tensor);
          slot.tensor.dispose();
        }
        slot.tensor = null;
      }
      for (const weight of module.packedSlots.values()) weight.dispose();
      module.packedSlots.clear();
    }
  }
}

/** An ordered list of modules whose names are their indices (`layers.0`, `layers.1`, ...). */
export class ModuleList<M extends Module = Module> extends Module {
  private count = 0;
  constructor(modules: Iterable<M> = []) {
    super();
    for (const module of modules) this.append(module);
  }

  append(module: M): M {
    return this.addModule(String(this.count++), module);
  }

  get length(): number {
    return this.count;
  }

  at(index: number): M {
    return this.child<M>(String(index));
  }

  *[Symbol.iterator](): Iterator<M> {
    for (let i = 0; i < this.count; i++) yield this.at(i);
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

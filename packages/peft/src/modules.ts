import { Module } from '@webtune/nn';
import type { Shape, Tensor } from '@webtune/tensors';
import { PeftError } from './errors.js';

/*
 * Small module containers the adapter layers are built from, so every adapter tensor sits in a
 * named slot and the dotted paths match PEFT's in-memory names
 * (`q_proj.lora_A.default.weight`, `lm_head.modules_to_save.default.weight`).
 */

/** A module holding only parameter slots (`weight`, `bias`, ...). */
export class ParameterModule extends Module {
  constructor(shapes: Record<string, Shape>) {
    super();
    for (const [name, shape] of Object.entries(shapes)) this.declareParameter(name, shape);
  }
}

/** Children keyed by adapter name (PyTorch's nn.ModuleDict). */
export class ModuleDict<M extends Module = Module> extends Module {
  /** Adds `module` under `name`; throws if the name is taken. */
  set(name: string, module: M): M {
    if (name === '' || name.includes('.'))
      throw new PeftError(`adapter name "${name}" must be non-empty and without dots`);
    return this.addModule(name, module);
  }

  has(name: string): boolean {
    return this.namedChildren().some(([key]) => key === name);
  }

  get(name: string): M | null {
    return this.has(name) ? this.child<M>(name) : null;
  }

  keys(): string[] {
    return this.namedChildren().map(([key]) => key);
  }

  /** A new dict with every entry but `name` (Module has no removal; the owner swaps dicts). */
  without(name: string): ModuleDict<M> {
    const next = new ModuleDict<M>();
    for (const [key, module] of this.namedChildren()) if (key !== name) next.set(key, module as M);
    return next;
  }
}

/**
 * An empty module with the same children names and parameter slots as `module`, recursively:
 * the holder of a trainable copy (modules_to_save) whose names mirror the original's.
 */
export function mirrorModule(module: Module): Module {
  const own: Record<string, Shape> = {};
  for (const [name, slot] of module.namedSlots()) if (!name.includes('.')) own[name] = slot.shape;
  const mirror = new MirrorModule(own);
  for (const [name, child] of module.namedChildren()) mirror.attach(name, mirrorModule(child));
  return mirror;
}

class MirrorModule extends Module {
  constructor(shapes: Record<string, Shape>) {
    super();
    for (const [name, shape] of Object.entries(shapes)) this.declareParameter(name, shape);
  }

  attach(name: string, child: Module): void {
    this.addModule(name, child);
  }
}

/** Every tensor held in the slots of `root` with the full names of the slots holding it (ties show as two names). */
export function sharedTensors(root: Module): Map<Tensor, string[]> {
  const holders = new Map<Tensor, string[]>();
  for (const [name, slot] of root.namedSlots()) {
    if (!slot.tensor) continue;
    const names = holders.get(slot.tensor) ?? [];
    names.push(name);
    holders.set(slot.tensor, names);
  }
  return holders;
}

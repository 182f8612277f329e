import { sameShape } from '../tensor/shape.js';
import type { AutogradBackend } from './backend.js';

/*
 * Half-precision storage of the activations the tape keeps for backward (docs/architecture/
 * precision.md). Inside `withHalfSavedTensors(fn)`, a tensor an op saves for backward is stored
 * as an f16 copy when the policy allows, and cast back to f32 when the first backward that reads
 * it runs: compute stays f32, only the storage between forward and backward is halved. The
 * original f32 tensor is then held by nothing but its scope, so it is freed when the scope that
 * made it closes (a decoder layer's). Ops that save one tensor (or views of one storage) share
 * one f16 copy, and the backwards that read it share one f32 copy, freed with the last of them.
 */

/** What the policy sees of a saved tensor: the op saving it and the op that made it. */
export interface SavedTensorContext {
  /** The op whose backward reads the tensor (a key of the rule table, 'other' for ad hoc rules). */
  saving: string;
  /** The op that made the tensor inside the scope (views are looked through). */
  producer: string;
}

/** Whether a saved f32 activation may be stored in f16. */
export type HalfSavedPolicy = (context: SavedTensorContext) => boolean;

/** Ops whose saved input is the residual stream or its statistics' source: stays f32. */
const FULL_PRECISION_SAVERS = new Set(['rmsNorm', 'layerNorm', 'crossEntropy']);
/** Ops whose output is a product of two activations (its range their product's): stays f32. */
const FULL_PRECISION_PRODUCERS = new Set(['mul', 'div', 'pow', 'swiglu']);

/**
 * webtune's rule: every f32 activation made inside the scope and saved for backward is stored in
 * f16, except a norm's input (the residual stream, whose outliers grow layer over layer, and from
 * which the norm's backward recomputes its statistics), a product of two activations (the gated
 * MLP's silu(gate) up, where the largest activations of a model arise), the loss's logits, and a
 * product's output that another product reads (LoRA's rank-r A x: too small to pay two casts).
 * Statistics an op returns beside its output (attention's and the loss's log-sum-exp) and every
 * tensor not made inside the scope (parameters, frozen weights, rotary tables, masks) stay as
 * they are, whatever the policy.
 */
export const HALF_SAVED_POLICY: HalfSavedPolicy = ({ saving, producer }) =>
  !FULL_PRECISION_SAVERS.has(saving) &&
  !FULL_PRECISION_PRODUCERS.has(producer) &&
  // A product's output read by another product is LoRA's A x (r wide): under 1% of a layer's
  // kept bytes, not worth a cast each way per target.
  !(saving === 'matmul' && producer === 'matmul');

/** One f16 copy, shared by the tape nodes holding it. */
export interface HalfEntry {
  readonly ops: AutogradBackend<object>;
  /** The f16 copy (a handle owned by the entry). */
  readonly half: object;
  /** Elements (views of other shapes share the entry). */
  readonly size: number;
  readonly key: object;
  /** The f32 copy made for backward, while a node holding the entry has not run. */
  full: object | null;
  /** Tape nodes holding the entry. */
  holders: number;
}

interface HalfScope {
  policy: HalfSavedPolicy;
  /** Tensors made inside the scope -> the op that made them. */
  made: WeakMap<object, string>;
}

let active: HalfScope | null = null;
/** A storage (or the tensor itself) -> its live f16 copy. */
const copies = new WeakMap<object, HalfEntry>();
/** Each rule of the table -> its name (`differentiable()` registers them). */
const ruleNames = new WeakMap<object, string>();

/** Registers the name the policy sees for a rule (functions.ts, for every rule of the table). */
export function nameRule(rule: object, name: string): void {
  ruleNames.set(rule, name);
}

function nameOf(rule: object): string {
  return ruleNames.get(rule) ?? 'other';
}

/**
 * Runs `fn` with the activations its ops save for backward stored in f16 where `policy` allows
 * (default HALF_SAVED_POLICY). The backend must support f16 tensors (GPU: shader-f16).
 * Synchronous functions only; scopes do not nest (an inner call keeps the outer policy).
 */
export function withHalfSavedTensors<R>(fn: () => R, policy: HalfSavedPolicy = HALF_SAVED_POLICY): R {
  if (active) return fn();
  active = { policy, made: new WeakMap() };
  try {
    return fn();
  } finally {
    active = null;
  }
}

/** Whether a half-precision saving scope is open (apply() then notes what each op makes). */
export function halfScopeOpen(): boolean {
  return active !== null;
}

/** Notes the op that made `output` inside the scope (a view keeps the name of what it views). */
export function noteMade(rule: object, args: readonly unknown[], output: unknown): void {
  if (!active || typeof output !== 'object' || output === null) return;
  const name = nameOf(rule);
  if (name === 'reshape') {
    const viewed = active.made.get(args[0] as object);
    if (viewed !== undefined) active.made.set(output, viewed);
    return;
  }
  active.made.set(output, name);
}

/**
 * The tensors a node keeps, with f16 copies in place of the saved activations the policy allows.
 * `extras`: the other tensors the op returned beside its output (statistics: never stored in f16).
 * Returns the tensors to hold (the caller retains them as usual) and the entry of each (or null).
 */
export function storeSaved<T extends object>(
  ops: AutogradBackend<T>,
  rule: object,
  saved: readonly T[],
  extras: readonly unknown[],
  isLeaf: (tensor: object) => boolean,
): { saved: T[]; entries: (HalfEntry | null)[] } | null {
  const scope = active;
  if (!scope || saved.length === 0) return null;
  const saving = nameOf(rule);
  let any = false;
  const entries = saved.map((tensor): HalfEntry | null => {
    const producer = scope.made.get(tensor);
    if (producer === undefined || extras.includes(tensor) || isLeaf(tensor)) return null;
    if (ops.dtype(tensor) !== 'f32' || !scope.policy({ saving, producer })) return null;
    any = true;
    return entryFor(ops, tensor);
  });
  if (!any) return null;
  for (const entry of entries) if (entry) entry.holders++;
  // Each node holds the copy in the shape it saved (a view when another shape made the copy).
  const stored = saved.map((tensor, i) => {
    const entry = entries[i];
    if (!entry) return tensor;
    const half = entry.half as T;
    return sameShape(ops.shape(half), ops.shape(tensor)) ? half : ops.reshape(half, ops.shape(tensor));
  });
  return { saved: stored, entries };
}

function entryFor<T extends object>(ops: AutogradBackend<T>, tensor: T): HalfEntry {
  const key = ops.storageOf?.(tensor) ?? tensor;
  const size = ops.shape(tensor).reduce((p, d) => p * d, 1);
  const existing = copies.get(key);
  if (existing && existing.size === size && existing.holders > 0) return existing;
  const entry: HalfEntry = {
    ops: ops as AutogradBackend<object>,
    half: ops.keep(ops.cast(tensor, 'f16')),
    size,
    key,
    full: null,
    holders: 0,
  };
  // A prefix view of another size gets a copy of its own, not the shared one.
  if (!existing || existing.holders === 0) copies.set(key, entry);
  return entry;
}

/**
 * The saved tensors a node's backward reads: the f32 copy of each f16 entry (made once, shared by
 * the nodes holding the entry), as a view of the saved shape. Call inside the backward's scope:
 * the views are freed with it, the f32 copy stays with the entry.
 */
export function unpackSaved<T extends object>(
  ops: AutogradBackend<T>,
  saved: readonly T[],
  entries: readonly (HalfEntry | null)[],
): T[] {
  return saved.map((tensor, i) => {
    const entry = entries[i];
    if (!entry) return tensor;
    entry.full ??= ops.keep(ops.cast(entry.half as T, 'f32'));
    const full = entry.full as T;
    return sameShape(ops.shape(full), ops.shape(tensor)) ? full : ops.reshape(full, ops.shape(tensor));
  });
}

/** A node holding `entry` was released: the last one frees the f16 and f32 copies. */
export function releaseEntry(entry: HalfEntry): void {
  entry.holders--;
  if (entry.holders > 0) return;
  entry.ops.release(entry.half);
  if (entry.full) entry.ops.release(entry.full);
  entry.full = null;
  if (copies.get(entry.key) === entry) copies.delete(entry.key);
}

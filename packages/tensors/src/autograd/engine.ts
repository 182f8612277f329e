import { TensorError } from '../device/errors.js';
import { formatShape, type Shape } from '../tensor/shape.js';
import type { AutogradBackend } from './backend.js';
import {
  type HalfEntry,
  halfScopeOpen,
  noteMade,
  releaseEntry,
  storeSaved,
  unpackSaved,
} from './half-saved.js';

/** What a rule's backward knows about the call it differentiates. */
export interface BackwardContext {
  /** The op's arguments (read options from them; tensors the backward needs must be saved). */
  args: readonly unknown[];
  /** Shapes of the differentiable inputs (null where the input is not a tensor). */
  shapes: readonly (Shape | null)[];
  /** Dtypes of the differentiable inputs (null where the input is not a tensor). */
  dtypes: readonly (string | null)[];
  /** Whether each differentiable input needs a gradient; skip the work for the others. */
  needs: readonly boolean[];
  /**
   * During backward: the gradient already summed for input `i` from its other consumers, when
   * there is one and `accept` takes it. The rule must then return input i's gradient with that
   * one added (a matmul adds it in its epilogue), and the engine replaces the sum by it instead of
   * adding. Null (nothing taken) for leaves, for inputs with no gradient yet, or when refused.
   */
  absorb?: (i: number, accept: (existing: object) => boolean) => object | null;
}

/**
 * The gradient rule of one op: which arguments are differentiable, how to run the forward when
 * recording (and what to keep for backward), and the vector-Jacobian product.
 */
export interface Rule {
  /** The differentiable arguments, in the order `backward` returns their gradients. */
  inputs(args: readonly unknown[]): readonly unknown[];
  /** Runs the op. `recording` says the tape will keep the result (ask for what backward needs). */
  forward<T extends object>(ops: AutogradBackend<T>, args: readonly unknown[], recording: boolean): unknown;
  /** The differentiable output inside the forward's result (default: the result itself). */
  output?(result: unknown): unknown;
  /** Tensors backward needs, from the arguments and the result (the tape holds a handle to each). */
  save?(args: readonly unknown[], result: unknown): readonly unknown[];
  /** Gradients of the inputs given the gradient of the output; null where none is needed. */
  backward<T extends object>(
    ops: AutogradBackend<T>,
    grad: T,
    saved: readonly T[],
    context: BackwardContext,
  ): readonly (T | null | undefined | false)[];
}

type Edge = { node: Node } | { leaf: object } | null;

interface Node {
  readonly sequence: number;
  readonly ops: AutogradBackend<object>;
  readonly rule: Rule;
  saved: object[];
  /** The f16 entry of each saved tensor stored in half precision (half-saved.ts), or null. */
  halves: (HalfEntry | null)[] | null;
  readonly context: BackwardContext;
  readonly edges: Edge[];
  released: boolean;
}

/** Leaves marked requiresGrad -> their accumulated gradient (null until backward reaches them). */
const leaves = new WeakMap<object, { grad: object | null; ops: AutogradBackend<object> | null }>();
/** Recorded outputs -> the node that produced them. */
const producers = new WeakMap<object, Node>();
/** Every node whose saved tensors are still held: the tape. */
const tape = new Set<Node>();
let sequence = 0;
let gradEnabled = true;

/** Marks `tensor` as a leaf whose gradient backward() accumulates (or unmarks it). Returns it. */
export function requiresGrad<T extends object>(tensor: T, value = true): T {
  if (value) {
    if (producers.has(tensor)) {
      throw new TensorError('requiresGrad: the tensor is the output of a recorded op, not a leaf');
    }
    if (!leaves.has(tensor)) leaves.set(tensor, { grad: null, ops: null });
  } else {
    const state = leaves.get(tensor);
    if (state?.grad && state.ops) state.ops.release(state.grad);
    leaves.delete(tensor);
  }
  return tensor;
}

/** Whether gradients flow to or through `tensor` (a marked leaf or a recorded output). */
export function isTracked(tensor: unknown): boolean {
  return typeof tensor === 'object' && tensor !== null && (leaves.has(tensor) || producers.has(tensor));
}

/** The gradient accumulated into a leaf by backward(), or null. */
export function gradOf<T extends object>(tensor: T): T | null {
  return (leaves.get(tensor)?.grad as T | undefined) ?? null;
}

/** Removes and returns a leaf's gradient (the caller owns it). */
export function takeGrad<T extends object>(tensor: T): T | null {
  const state = leaves.get(tensor);
  if (!state?.grad) return null;
  const grad = state.grad as T;
  state.grad = null;
  return grad;
}

/** Frees the gradients of these leaves (before the next accumulation). */
export function zeroGrad(tensors: Iterable<object>): void {
  for (const tensor of tensors) {
    const state = leaves.get(tensor);
    if (state?.grad && state.ops) state.ops.release(state.grad);
    if (state) state.grad = null;
  }
}

/** Whether ops record onto the tape now (false inside noGrad). */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/**
 * Runs `fn` with recording off: ops called inside record nothing and keep nothing for backward
 * (evaluation, generation, optimizer updates). Async functions are supported; do not interleave
 * two async scopes with different modes.
 */
export function noGrad<R>(fn: () => R): R {
  return withGradMode(false, fn);
}

/** Runs `fn` with recording on (inside a noGrad scope). */
export function enableGrad<R>(fn: () => R): R {
  return withGradMode(true, fn);
}

function withGradMode<R>(enabled: boolean, fn: () => R): R {
  const previous = gradEnabled;
  gradEnabled = enabled;
  let result: R;
  try {
    result = fn();
  } catch (error) {
    gradEnabled = previous;
    throw error;
  }
  if (result instanceof Promise) {
    return result.finally(() => {
      gradEnabled = previous;
    }) as R;
  }
  gradEnabled = previous;
  return result;
}

/** Number of recorded ops whose saved tensors the tape still holds. */
export function tapeSize(): number {
  return tape.size;
}

/** Frees every recorded op (graphs that were built but never differentiated). */
export function clearTape(): void {
  for (const node of [...tape]) releaseNode(node);
}

/**
 * Runs one op through its rule: a plain call when nothing it reads needs a gradient or recording
 * is off (no node, no saved handles), else the call plus one node on the tape.
 */
export function apply<T extends object>(
  ops: AutogradBackend<T>,
  rule: Rule,
  args: readonly unknown[],
): unknown {
  if (!gradEnabled) return rule.forward(ops, args, false);
  const inputs = rule.inputs(args);
  let tracked = false;
  for (const input of inputs) {
    if (isTracked(input)) {
      tracked = true;
      break;
    }
  }
  const half = halfScopeOpen();
  if (!tracked) {
    const plain = rule.forward(ops, args, false);
    if (half) noteMade(rule, args, rule.output ? rule.output(plain) : plain);
    return plain;
  }
  const result = rule.forward(ops, args, true);
  const output = (rule.output ? rule.output(result) : result) as object;
  const saved = (rule.save?.(args, result) ?? []) as T[];
  if (!half) {
    record(ops, rule, output, inputs, args, saved);
    return result;
  }
  noteMade(rule, args, output);
  // Statistics returned beside the output (a log-sum-exp) are never stored in half precision.
  const extras =
    result !== output && typeof result === 'object' && result
      ? Object.values(result).filter((x) => x !== output)
      : [];
  const stored = storeSaved(ops, rule, saved, extras, (tensor) => leaves.has(tensor));
  record(ops, rule, output, inputs, args, stored?.saved ?? saved, stored?.entries ?? null);
  return result;
}

/** Adds a node producing `output` from `inputs` to the tape (apply() and checkpoint() use it). */
export function record<T extends object>(
  ops: AutogradBackend<T>,
  rule: Rule,
  output: object,
  inputs: readonly unknown[],
  args: readonly unknown[],
  saved: readonly T[],
  halves: (HalfEntry | null)[] | null = null,
): void {
  const edges: Edge[] = inputs.map((input) => {
    if (typeof input !== 'object' || input === null) return null;
    const producer = producers.get(input);
    if (producer) return { node: producer };
    return leaves.has(input) ? { leaf: input } : null;
  });
  const node: Node = {
    sequence: sequence++,
    ops: ops as AutogradBackend<object>,
    rule,
    saved: saved.map((t) => ops.retain(t)),
    halves,
    context: {
      args,
      shapes: inputs.map((input) =>
        typeof input === 'object' && input !== null ? ops.shape(input as T) : null,
      ),
      dtypes: inputs.map((input) =>
        typeof input === 'object' && input !== null ? ops.dtype(input as T) : null,
      ),
      needs: edges.map((edge) => edge !== null),
    },
    edges,
    released: false,
  };
  producers.set(output, node);
  tape.add(node);
}

function releaseNode(node: Node): void {
  if (node.released) return;
  node.released = true;
  for (const t of node.saved) node.ops.release(t);
  node.saved = [];
  if (node.halves) for (const entry of node.halves) if (entry) releaseEntry(entry);
  node.halves = null;
  tape.delete(node);
}

export interface BackwardOptions {
  /** Nodes recorded before this sequence number are not walked (checkpoint recomputation). */
  stopBefore?: number;
}

/** Frees the recorded ops from sequence `start` on (a recording abandoned on an error). */
export function releaseSince(start: number): void {
  for (const node of [...tape]) if (node.sequence >= start) releaseNode(node);
}

/**
 * The leaves (tensors marked requiresGrad) that gradients from `root` would reach, walking the
 * recorded ops from `stopBefore` on (an op recorded earlier ends the walk there).
 */
export function leavesReached(root: object, stopBefore = -1): object[] {
  const found = new Set<object>();
  const start = producers.get(root);
  if (!start) return leaves.has(root) ? [root] : [];
  const seen = new Set<Node>([start]);
  const stack = [start];
  while (stack.length) {
    const node = stack.pop()!;
    for (const edge of node.edges) {
      if (!edge) continue;
      if ('leaf' in edge) found.add(edge.leaf);
      else if (edge.node.sequence >= stopBefore && !seen.has(edge.node)) {
        seen.add(edge.node);
        stack.push(edge.node);
      }
    }
  }
  return [...found];
}

/** The sequence number the next recorded node will get. */
export function nextSequence(): number {
  return sequence;
}

/**
 * Reverse-mode differentiation from `roots`: walks the recorded ops that lead to them in reverse
 * order, adds the gradient into `gradOf(leaf)` of every leaf reached (accumulating across calls
 * until zeroGrad), and frees each op's saved tensors and each intermediate gradient as soon as it
 * has been used. A scalar root needs no gradient (it is 1); other roots need one of their shape.
 * Gradients passed in stay owned by the caller.
 */
export function backward<T extends object>(
  roots: T | readonly T[],
  gradients?: T | readonly (T | null)[] | null,
  options: BackwardOptions = {},
): void {
  const rootList = (Array.isArray(roots) ? roots : [roots]) as T[];
  const gradientList = (
    gradients == null ? [] : Array.isArray(gradients) ? gradients : [gradients]
  ) as (T | null)[];
  const stopBefore = options.stopBefore ?? -1;
  const grads = new Map<Node, object>();
  const borrowed = new Set<object>();
  const leafGrads: [object, object, AutogradBackend<object>][] = [];
  const starts: Node[] = [];
  rootList.forEach((root, i) => {
    const node = producers.get(root);
    if (!node) {
      throw new TensorError(
        'backward: the root does not depend on any tensor that requires grad (was it computed by the ' +
          'autograd functions, with grad mode on?)',
      );
    }
    if (node.released) throw new TensorError(`backward: ${RELEASED}`);
    let grad: object | null = gradientList[i] ?? null;
    if (grad) {
      borrowed.add(grad);
    } else {
      const shape = node.ops.shape(root);
      if (shape.reduce((p, d) => p * d, 1) !== 1) {
        throw new TensorError(
          `backward: the root of shape ${formatShape(shape)} is not a scalar; pass its gradient`,
        );
      }
      grad = node.ops.full(root, shape, 1);
    }
    const existing = grads.get(node);
    grads.set(node, existing ? node.ops.binary('add', existing, grad) : grad);
    if (existing && !borrowed.has(existing)) node.ops.release(existing);
    starts.push(node);
  });

  // Every node reachable from the roots, latest first: a node runs after all its consumers.
  const order: Node[] = [];
  const seen = new Set<Node>(starts);
  const stack = [...starts];
  while (stack.length) {
    const node = stack.pop()!;
    order.push(node);
    for (const edge of node.edges) {
      if (!edge || !('node' in edge) || seen.has(edge.node)) continue;
      if (edge.node.sequence < stopBefore) {
        throw new TensorError(
          'checkpoint: the function used a tensor computed outside it that requires grad; pass it in `inputs`',
        );
      }
      if (edge.node.released) throw new TensorError(`backward: ${RELEASED}`);
      seen.add(edge.node);
      stack.push(edge.node);
    }
  }
  order.sort((a, b) => b.sequence - a.sequence);

  for (const node of order) {
    const grad = grads.get(node);
    grads.delete(node);
    const ops = node.ops;
    if (grad) {
      let saved = node.saved;
      const halves = node.halves;
      const absorbed = new Map<number, object>();
      const context: BackwardContext = {
        ...node.context,
        absorb: (i, accept) => {
          const edge = node.edges[i];
          const existing = edge && 'node' in edge ? grads.get(edge.node) : undefined;
          if (!existing || absorbed.has(i) || !accept(existing)) return null;
          absorbed.set(i, existing);
          return existing;
        },
      };
      const inputGrads = ops.scope(grad, () => {
        // f16-stored activations are read as f32 copies (views of them die with this scope).
        if (halves) saved = unpackSaved(ops, saved, halves);
        return node.rule.backward(ops, grad, saved, context);
      });
      // A rule may hand back its incoming gradient, a saved tensor, or one tensor twice: give
      // each edge a handle of its own so every handle is freed exactly once.
      const owned = new Set<object>();
      node.edges.forEach((edge, i) => {
        let inputGrad = inputGrads[i] as object | null | undefined | false;
        if (!edge || !inputGrad) return;
        if (inputGrad === grad || owned.has(inputGrad) || saved.includes(inputGrad)) {
          inputGrad = ops.retain(inputGrad);
        }
        owned.add(inputGrad);
        if ('leaf' in edge) {
          leafGrads.push([edge.leaf, inputGrad, ops]);
        } else {
          const existing = grads.get(edge.node);
          if (existing && absorbed.get(i) === existing) {
            // The rule's gradient already holds the earlier sum.
            grads.set(edge.node, inputGrad);
            if (!borrowed.has(existing)) ops.release(existing);
          } else if (existing) {
            grads.set(edge.node, ops.binary('add', existing, inputGrad));
            if (!borrowed.has(existing)) ops.release(existing);
            ops.release(inputGrad);
          } else {
            grads.set(edge.node, inputGrad);
          }
        }
      });
      if (!borrowed.has(grad)) ops.release(grad);
    }
    releaseNode(node);
    // Leaf gradients are accumulated as they arrive, so a leaf's pieces do not pile up.
    for (const [leaf, inputGrad, leafOps] of leafGrads) accumulate(leaf, inputGrad, leafOps);
    leafGrads.length = 0;
  }
  for (const grad of grads.values()) if (!borrowed.has(grad)) starts[0].ops.release(grad);
}

function accumulate(leaf: object, grad: object, ops: AutogradBackend<object>): void {
  const state = leaves.get(leaf);
  if (!state) {
    ops.release(grad);
    return;
  }
  state.ops = ops;
  if (!state.grad) {
    state.grad = ops.keep(grad);
    return;
  }
  const total = ops.keep(ops.binary('add', state.grad, grad));
  ops.release(state.grad);
  ops.release(grad);
  state.grad = total;
}

const RELEASED =
  'part of the graph was already freed by an earlier backward() through it; run the forward again';

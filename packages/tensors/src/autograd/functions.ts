import type { DType } from '../tensor/dtype.js';
import type { Shape } from '../tensor/shape.js';
import type {
  AttentionOptions,
  AutogradBackend,
  CrossEntropyOptions,
  CrossEntropyResult,
  DropoutOptions,
  LowRankLinearOptions,
  LowRankLinearResult,
  MatmulOptions,
  RotaryOptions,
  UnaryFunction,
} from './backend.js';
import { apply } from './engine.js';
import { nameRule } from './half-saved.js';
import { type DifferentiableOp, RULES } from './rules.js';

type UnaryFunctions<T> = { [K in UnaryFunction]: (x: T) => T };

/**
 * The differentiable ops: the same names, arguments and results as the plain ops. Each records
 * onto the tape only when grad mode is on and one of its differentiable inputs requires grad;
 * otherwise it is the plain op.
 */
export interface DifferentiableFunctions<T extends object> extends UnaryFunctions<T> {
  add(a: T, b: T | number): T;
  sub(a: T, b: T | number): T;
  mul(a: T, b: T | number): T;
  div(a: T, b: T | number): T;
  pow(a: T, b: T | number): T;
  maximum(a: T, b: T | number): T;
  minimum(a: T, b: T | number): T;
  scale(x: T, factor: number): T;
  where(condition: T, a: T | number, b: T | number): T;
  cast(x: T, dtype: DType): T;
  /** The differentiable form of `x.reshape(shape)` (a free view). */
  reshape(x: T, shape: Shape): T;
  transpose(x: T, dim0?: number, dim1?: number): T;
  permute(x: T, order: readonly number[]): T;
  slice(x: T, starts: readonly number[], ends: readonly number[]): T;
  concat(tensors: readonly T[], axis: number): T;
  contiguousCopy(x: T): T;
  dropout(x: T, p: number, options: DropoutOptions): { output: T; mask?: T };
  sum(x: T, axis?: number | null, options?: { keepDims?: boolean }): T;
  mean(x: T, axis?: number | null, options?: { keepDims?: boolean }): T;
  max(x: T, axis?: number | null, options?: { keepDims?: boolean }): T;
  softmax(x: T, axis?: number): T;
  logSoftmax(x: T, axis?: number): T;
  rmsNorm(x: T, weight: T | null, eps: number): T;
  layerNorm(x: T, weight: T | null, bias: T | null, eps: number): T;
  matmul(a: T, b: T, options?: MatmulOptions<T>): T;
  /**
   * x W^T + bias + scaling (x D^T) U^T for weight [out, in], down [r, in], up [out, r] (LoRA's
   * base layer, A and B): two products forward (x D^T, then the base product with the low-rank
   * term in its epilogue) and the input gradient dy W + dh D in one product backward.
   */
  lowRankLinear(x: T, weight: T, down: T, up: T, options?: LowRankLinearOptions<T>): LowRankLinearResult<T>;
  rotary(x: T, cos: T, sin: T, options: RotaryOptions): T;
  embedding(table: T, ids: T): T;
  attention(q: T, k: T, v: T, options?: AttentionOptions<T>): { output: T; logsumexp: T };
  crossEntropy(logits: T, targets: T, options?: CrossEntropyOptions): CrossEntropyResult<T>;
  /** silu(gate) * up in one kernel (Llama's MLP gate). */
  swiglu(gate: T, up: T): T;
}

// Every rule has a typed function and every typed function has a rule.
type Missing = Exclude<DifferentiableOp, keyof DifferentiableFunctions<object>>;
type Extra = Exclude<keyof DifferentiableFunctions<object>, DifferentiableOp>;
const complete: [Missing, Extra] extends [never, never] ? true : never = true;

/** Binds every rule of the table to a backend: the differentiable ops over its tensors. */
export function differentiable<T extends object>(backend: AutogradBackend<T>): DifferentiableFunctions<T> {
  const functions: Record<string, (...args: unknown[]) => unknown> = {};
  for (const [name, rule] of Object.entries(RULES)) {
    nameRule(rule, name);
    functions[name] = (...args: unknown[]) => apply(backend, rule, args);
  }
  void complete;
  return functions as unknown as DifferentiableFunctions<T>;
}

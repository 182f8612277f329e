import type { UnaryOp as KernelUnaryOp } from '../kernels/unary/unary.js';
import type { DType } from '../tensor/dtype.js';
import type { Shape } from '../tensor/shape.js';

/**
 * Unary ops with a gradient rule: differentiable function name -> unary kernel op. Each has a
 * derivative in kernels/unary-backward. ('scale' has its own rule.)
 */
export const UNARY_FUNCTIONS = {
  neg: 'neg',
  abs: 'abs',
  exp: 'exp',
  log: 'log',
  sqrt: 'sqrt',
  rsqrt: 'rsqrt',
  square: 'square',
  reciprocal: 'reciprocal',
  sin: 'sin',
  cos: 'cos',
  silu: 'silu',
  gelu: 'gelu',
  geluErf: 'gelu-erf',
  erf: 'erf',
  relu: 'relu',
  tanh: 'tanh',
  sigmoid: 'sigmoid',
} as const satisfies Record<string, Exclude<KernelUnaryOp, 'scale'>>;
export type UnaryFunction = keyof typeof UNARY_FUNCTIONS;
export type UnaryOp = (typeof UNARY_FUNCTIONS)[UnaryFunction];

export type ComparisonOp = 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge';
export type ArithmeticOp = 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'maximum' | 'minimum';

export interface MatmulOptions<T> {
  transposeA?: boolean;
  transposeB?: boolean;
  bias?: T | null;
  /** Added to the output (its shape): fused into the product's epilogue. */
  residual?: T | null;
  /** Factor of the product alone (not of the bias or residual); default 1. */
  alpha?: number;
  /**
   * A low-rank product added to the output: alpha L op(R), L [..., M, r] like a's rows, R laid
   * out like b ([N, r] with transposeB, else [r, N]); fused into the epilogue where the kernel can.
   */
  lowRank?: { a: T; b: T; alpha?: number } | null;
}

/** lowRankLinear's options: y = x W^T + bias + scaling (x D^T) U^T (+ residual). */
export interface LowRankLinearOptions<T> {
  bias?: T | null;
  /** Added to the output in the same epilogue (the residual stream after o_proj or down_proj). */
  residual?: T | null;
  /** Default 1. */
  scaling?: number;
}

/** lowRankLinear's result: the output and the rank-r x D^T (LoRA's A x) it kept for backward. */
export interface LowRankLinearResult<T> {
  output: T;
  hidden: T;
}

export interface RotaryOptions {
  style: 'half' | 'interleaved';
  rotaryDim?: number;
  /** Rotate by the opposite angle (the backward). */
  inverse?: boolean;
}

export interface AttentionOptions<T> {
  /** Default true. */
  causal?: boolean;
  /** Position of query 0 among the keys for causal masking; default keys - queries. */
  queryOffset?: number;
  /** Default 1 / sqrt(headDim). */
  scale?: number;
  /** [batch, seq] of keys: nonzero = attend, 0 = padding (segment ids when `segments`). */
  paddingMask?: T | null;
  /** paddingMask holds segment ids: a query sees only keys of its own nonzero segment (packed sequences). */
  segments?: boolean;
  /** Sliding window: query i sees only keys j > queryOffset + i - window. Default none. */
  window?: number;
  /** Logit soft-capping (Gemma 2): scores become cap * tanh(score / cap). Default none. */
  softcap?: number;
}

export interface CrossEntropyOptions {
  ignoreIndex?: number;
  reduction?: 'mean' | 'sum' | 'none';
  labelSmoothing?: number;
}

export interface CrossEntropyResult<T> {
  loss: T;
  /** Per-row log-sum-exp of the logits (what backward reads). */
  logSumExp: T;
  /** Scalar: rows not ignored. */
  tokenCount: T;
}

export interface DropoutOptions {
  seed: number;
  offset?: number;
  /** Also return the mask (default true). */
  returnMask?: boolean;
}

/**
 * What the gradient rules need from a tensor library: the forward ops (same meaning as the
 * public ops of @webtune/tensors) and the fused backward kernels. Two implementations exist: the
 * GPU one over `Tensor` (gpu-backend.ts) and the float64 CPU reference over `ReferenceTensor`
 * (reference-backend.ts). The rules in rules.ts are written once against this interface, so the
 * float64 reference autodiff, checked against finite differences, runs the very rules the GPU runs.
 */
export interface AutogradBackend<T extends object> {
  readonly name: string;
  shape(x: T): Shape;
  dtype(x: T): DType;
  /** A handle to `x` owned by the tape (GPU: a view sharing the storage, outside every scope). */
  retain(x: T): T;
  /** Gives back a handle from retain() or a gradient the engine owns. */
  release(x: T): void;
  /** Runs `fn`; tensors it creates and does not return are freed (GPU: device.scope). */
  scope<R>(like: T, fn: () => R): R;
  /** Removes `x` from enclosing scopes so it outlives them (gradients of leaves). */
  keep(x: T): T;
  /**
   * What views of one tensor share (GPU: the storage), so the tensors saved in f16 for backward
   * share one copy per storage (half-saved.ts); absent: the handle itself.
   */
  storageOf?(x: T): object;

  // ---- forward ops -------------------------------------------------------------------------
  full(like: T, shape: Shape, value: number, dtype?: DType): T;
  binary(op: ArithmeticOp | ComparisonOp, a: T, b: T | number): T;
  unary(op: UnaryOp, x: T): T;
  scale(x: T, factor: number): T;
  where(condition: T, a: T | number, b: T | number): T;
  cast(x: T, dtype: DType): T;
  reshape(x: T, shape: Shape): T;
  transpose(x: T, dim0?: number, dim1?: number): T;
  permute(x: T, order: readonly number[]): T;
  slice(x: T, starts: readonly number[], ends: readonly number[]): T;
  concat(tensors: readonly T[], axis: number): T;
  /** Broadcasts `x` to `shape` (NumPy rules). */
  expand(x: T, shape: Shape): T;
  dropout(x: T, p: number, options: DropoutOptions): { output: T; mask?: T };
  /** Reduces one axis, or every element when axis is null. */
  sum(x: T, axis: number | null, keepDims: boolean): T;
  mean(x: T, axis: number | null, keepDims: boolean): T;
  max(x: T, axis: number | null, keepDims: boolean): T;
  softmax(x: T, axis: number): T;
  logSoftmax(x: T, axis: number): T;
  rmsNorm(x: T, weight: T | null, eps: number): T;
  layerNorm(x: T, weight: T | null, bias: T | null, eps: number): T;
  matmul(a: T, b: T, options?: MatmulOptions<T>): T;
  rotary(x: T, cos: T, sin: T, options: RotaryOptions): T;
  embedding(table: T, ids: T): T;
  attention(q: T, k: T, v: T, options: AttentionOptions<T>): { output: T; logsumexp: T };
  crossEntropy(logits: T, targets: T, options: CrossEntropyOptions): CrossEntropyResult<T>;
  swiglu(gate: T, up: T): T;

  // ---- backward kernels --------------------------------------------------------------------
  /** grad * d op(x) / dx, given x and out = op(x). */
  unaryBackward(op: UnaryOp, x: T, out: T, grad: T): T;
  swigluBackward(gate: T, up: T, grad: T): { gate: T; up: T };
  /** `options.add` is added into dx; `options.weightGradient` false skips dw (null). */
  rmsNormBackward(
    x: T,
    weight: T | null,
    grad: T,
    eps: number,
    options?: { weightGradient?: boolean; add?: T | null },
  ): { input: T; weight: T | null };
  crossEntropyBackward(
    logits: T,
    targets: T,
    logSumExp: T,
    tokenCount: T,
    grad: T,
    options: CrossEntropyOptions,
  ): T;
  attentionBackward(
    q: T,
    k: T,
    v: T,
    output: T,
    logsumexp: T,
    grad: T,
    options: AttentionOptions<T>,
  ): { q: T; k: T; v: T };
  /** The table gradient: rows of `grad` summed into a zero table at `ids` (scatter-add). */
  embeddingBackward(tableShape: Shape, ids: T, grad: T): T;
}

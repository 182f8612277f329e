import type { DType } from '../tensor/dtype.js';
import { ReferenceTensor } from './reference-backend.js';
import type { DifferentiableOp } from './rules.js';

/*
 * Test support (not exported): one table of op calls that both the finite-difference check of
 * the rules (CPU, float64) and the GPU-against-reference check run. An argument is a literal, or
 * a tensor spec that becomes fresh seeded random data.
 */

export interface TensorSpec {
  spec: 'tensor';
  shape: number[];
  low: number;
  high: number;
  dtype: DType;
  /** Integer values in [low, high) (ids, targets, masks). */
  integer: boolean;
  /** Values that must appear at some positions (ignored targets). */
  plant?: [number, number][];
}

/** A float tensor with values uniform in [low, high). */
export const t = (shape: number[], low = -1, high = 1): TensorSpec => ({
  spec: 'tensor',
  shape,
  low,
  high,
  dtype: 'f32',
  integer: false,
});

/** An integer tensor with values in [low, high), some positions forced to given values. */
export const ints = (
  shape: number[],
  low: number,
  high: number,
  dtype: DType = 'i32',
  plant: [number, number][] = [],
): TensorSpec => ({ spec: 'tensor', shape, low, high, dtype, integer: true, plant });

export interface OpCase {
  op: DifferentiableOp;
  args: unknown[];
  label: string;
}

const c = (op: DifferentiableOp, args: unknown[], label = ''): OpCase => ({
  op,
  args,
  label: `${op}${label ? ` ${label}` : ''}`,
});

const ROTARY_TABLES = [t([3, 4], -1, 1), t([3, 4], -1, 1)];

/** Calls of every differentiable op, at shapes that are not multiples of any tile. */
export const OP_CASES: OpCase[] = [
  c('add', [t([3, 4]), t([4])], 'broadcast'),
  c('add', [t([2, 1, 3]), t([1, 5, 1])], 'both sides broadcast'),
  c('add', [t([7]), 2.5], 'number'),
  c('sub', [t([3, 4]), t([3, 1])]),
  c('mul', [t([2, 3, 4]), t([3, 1])]),
  c('mul', [t([7]), -1.5], 'number'),
  c('div', [t([3, 4]), t([4], 0.5, 2)]),
  c('div', [t([5]), 3], 'number'),
  c('pow', [t([3, 4], 0.5, 2), t([4], -1, 2)]),
  c('pow', [t([7], 0.5, 2), 3], 'number exponent'),
  c('maximum', [t([3, 4]), t([4])]),
  c('minimum', [t([3, 4]), t([3, 4])]),
  c('maximum', [t([9]), 0.2], 'number'),
  c('neg', [t([33])]),
  c('abs', [t([33])]),
  c('exp', [t([33])]),
  c('log', [t([33], 0.2, 3)]),
  c('sqrt', [t([33], 0.2, 3)]),
  c('rsqrt', [t([33], 0.2, 3)]),
  c('square', [t([33])]),
  c('reciprocal', [t([33], 0.3, 3)]),
  c('sin', [t([33], -3, 3)]),
  c('cos', [t([33], -3, 3)]),
  c('silu', [t([33], -4, 4)]),
  c('gelu', [t([33], -4, 4)]),
  c('geluErf', [t([33], -4, 4)]),
  c('erf', [t([33], -3, 3)]),
  c('relu', [t([33])]),
  c('tanh', [t([33], -2, 2)]),
  c('sigmoid', [t([33], -4, 4)]),
  c('scale', [t([2, 5]), -0.75]),
  c('where', [ints([3, 4], 0, 2, 'u32'), t([3, 4]), t([4])]),
  c('cast', [t([2, 3]), 'f32']),
  c('reshape', [t([2, 3, 4]), [6, -1]]),
  c('transpose', [t([2, 3, 4]), 0, 2]),
  c('transpose', [t([3, 5])], 'default axes'),
  c('permute', [t([2, 3, 4]), [2, 0, 1]]),
  c('slice', [t([5, 6]), [1, -4], [4, 6]]),
  c('concat', [[t([2, 3]), t([2, 5])], 1]),
  c('concat', [[t([1, 3]), t([2, 3]), t([3, 3])], 0], 'three'),
  c('contiguousCopy', [t([3, 2])]),
  c('dropout', [t([5, 7]), 0.3, { seed: 7, offset: 3 }]),
  c('sum', [t([3, 5, 2]), 1]),
  c('sum', [t([3, 4])], 'all'),
  c('mean', [t([3, 5]), -1, { keepDims: true }]),
  c('mean', [t([2, 3]), null], 'all'),
  c('max', [t([4, 6]), 0]),
  c('max', [t([4, 6]), -1, { keepDims: true }], 'keepDims'),
  c('softmax', [t([3, 7], -3, 3)]),
  c('softmax', [t([4, 3], -3, 3), 0], 'axis 0'),
  c('logSoftmax', [t([3, 7], -3, 3)]),
  c('rmsNorm', [t([2, 3, 8]), t([8], 0.5, 1.5), 1e-5]),
  c('rmsNorm', [t([5, 7]), null, 1e-6], 'no weight'),
  c('layerNorm', [t([2, 3, 8]), t([8], 0.5, 1.5), t([8]), 1e-5]),
  c('layerNorm', [t([5, 7]), null, null, 1e-5], 'no affine'),
  c('matmul', [t([2, 3, 4]), t([4, 5])], 'weight'),
  c('matmul', [t([2, 3, 4]), t([5, 4]), { transposeB: true, bias: t([5]) }], 'transposeB + bias'),
  c('matmul', [t([4, 3]), t([4, 5]), { transposeA: true }], 'transposeA'),
  c('matmul', [t([3, 4]), t([5, 3]), { transposeA: true, transposeB: true }], 'both transposed'),
  c('matmul', [t([2, 3, 4]), t([2, 4, 5])], 'batched'),
  c('matmul', [t([2, 1, 3, 4]), t([3, 4, 2])], 'batch broadcast'),
  c(
    'matmul',
    [t([2, 3, 4]), t([5, 4]), { transposeB: true, alpha: 2.5, residual: t([2, 3, 5]) }],
    'LoRA: alpha + residual',
  ),
  c(
    'matmul',
    [t([4, 3]), t([4, 5]), { transposeA: true, alpha: -0.5, bias: t([5]), residual: t([3, 5]) }],
    'alpha + bias + residual, transposeA',
  ),
  c('matmul', [t([2, 3, 4]), t([2, 4, 5]), { alpha: 3, residual: t([2, 3, 5]) }], 'batched alpha + residual'),
  c(
    'matmul',
    [
      t([2, 3, 4]),
      t([5, 4]),
      { transposeB: true, bias: t([5]), lowRank: { a: t([2, 3, 4]), b: t([5, 4]), alpha: 1.5 } },
    ],
    'low-rank term, transposeB + bias',
  ),
  c(
    'matmul',
    [
      t([2, 3, 6]),
      t([6, 8]),
      { alpha: 2, residual: t([2, 3, 8]), lowRank: { a: t([2, 3, 4]), b: t([4, 8]), alpha: -0.5 } },
    ],
    'low-rank term read along N, alpha + residual',
  ),
  c(
    'lowRankLinear',
    [t([2, 3, 6]), t([8, 6]), t([4, 6]), t([8, 4]), { bias: t([8]), scaling: 2 }],
    'LoRA: base + bias + scaled B A x',
  ),
  c(
    'lowRankLinear',
    [t([2, 3, 6]), t([8, 6]), t([4, 6]), t([8, 4]), { residual: t([2, 3, 8]), scaling: -1.5 }],
    'LoRA onto the residual stream',
  ),
  c(
    'lowRankLinear',
    [t([3, 5]), t([7, 5]), t([3, 5]), t([7, 3]), { scaling: 0.5 }],
    'rank 3 (unfused on GPUs)',
  ),
  c('rotary', [t([2, 3, 2, 8]), ...ROTARY_TABLES, { style: 'half' }], 'half'),
  c('rotary', [t([2, 3, 2, 8]), ...ROTARY_TABLES, { style: 'interleaved' }], 'interleaved'),
  c('rotary', [t([1, 3, 2, 10]), t([3, 2]), t([3, 2]), { style: 'half', rotaryDim: 4 }], 'partial'),
  c('embedding', [t([7, 5]), ints([2, 3], 0, 7, 'i32', [[1, 3]])]),
  c('attention', [t([2, 5, 4, 8]), t([2, 5, 2, 8]), t([2, 5, 2, 8]), { causal: true }], 'causal GQA'),
  c(
    'attention',
    [
      t([2, 4, 2, 4]),
      t([2, 6, 2, 4]),
      t([2, 6, 2, 4]),
      {
        causal: false,
        scale: 0.7,
        paddingMask: ints([2, 6], 1, 2, 'u32', [
          [7, 0],
          [10, 0],
        ]),
      },
    ],
    'padding mask',
  ),
  c('attention', [t([1, 3, 2, 4]), t([1, 5, 1, 4]), t([1, 5, 1, 4])], 'causal, fewer queries than keys'),
  c('attention', [t([2, 9, 4, 4]), t([2, 9, 2, 4]), t([2, 9, 2, 4]), { window: 3 }], 'sliding window 3, GQA'),
  c(
    'attention',
    [t([1, 3, 2, 4]), t([1, 8, 1, 4]), t([1, 8, 1, 4]), { window: 2 }],
    'sliding window 2, decoding after 5 cached keys',
  ),
  c(
    'attention',
    [t([2, 9, 4, 4]), t([2, 9, 2, 4]), t([2, 9, 2, 4]), { window: 3, softcap: 1.5 }],
    'soft-capped (Gemma 2), sliding window 3, GQA',
  ),
  c(
    'attention',
    [t([1, 6, 2, 8], -2, 2), t([1, 6, 2, 8], -2, 2), t([1, 6, 2, 8]), { scale: 1.5, softcap: 0.5 }],
    'soft-capped near saturation (cap 0.5, scores up to ~10)',
  ),
  c(
    'crossEntropy',
    [t([6, 9], -3, 3), ints([6], 0, 9, 'i32', [[1, -100]]), { labelSmoothing: 0.1 }],
    'smoothing',
  ),
  c('crossEntropy', [t([6, 9], -3, 3), ints([6], 0, 9, 'i32', [[2, -100]])], 'mean'),
  c(
    'crossEntropy',
    [t([2, 3, 9], -3, 3), ints([2, 3], 0, 9, 'i32', [[0, -1]]), { ignoreIndex: -1, reduction: 'sum' }],
    'sum',
  ),
  c('crossEntropy', [t([5, 4], -3, 3), ints([5], 0, 4, 'i32', [[4, -100]]), { reduction: 'none' }], 'none'),
  c('swiglu', [t([3, 7], -4, 4), t([3, 7])]),
];

/** A seeded source of uniform numbers in [0, 1) (the tests pass test-utils' Rng). */
export interface RandomSource {
  next(): number;
}

/**
 * Draws the data of every tensor spec in `args` (two levels into arrays and plain objects: a
 * matmul's lowRank operands sit in its options) from
 * `rng`; the same seed gives the same data on every backend.
 */
export function materialize<T>(
  args: readonly unknown[],
  rng: RandomSource,
  make: (data: Float64Array, spec: TensorSpec) => T,
): unknown[] {
  const draw = (value: unknown, depth: number): unknown => {
    if (isSpec(value)) {
      const size = value.shape.reduce((p, d) => p * d, 1);
      const data = new Float64Array(size);
      for (let i = 0; i < size; i++) {
        const x = value.low + (value.high - value.low) * rng.next();
        data[i] = value.integer ? Math.floor(x) : Math.fround(x);
      }
      for (const [at, forced] of value.plant ?? []) data[at] = forced;
      return make(data, value);
    }
    if (depth > 1) return value;
    if (Array.isArray(value)) return value.map((v) => draw(v, depth + 1));
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, draw(v, depth + 1)]));
    }
    return value;
  };
  return args.map((a) => draw(a, 0));
}

function isSpec(value: unknown): value is TensorSpec {
  return typeof value === 'object' && value !== null && (value as TensorSpec).spec === 'tensor';
}

/** The case's arguments as float64 reference tensors. */
export function referenceArgs(opCase: OpCase, rng: RandomSource): unknown[] {
  return materialize(opCase.args, rng, (data, spec) => new ReferenceTensor(data, spec.shape, spec.dtype));
}

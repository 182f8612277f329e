import { TensorError } from '../../device/errors.js';
import type { DType } from '../../tensor/dtype.js';
import type { Chunk } from '../../tensor/storage.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { forEachChunk } from '../shared/chunks.js';
import { elementwiseGrid, elementwiseLoop } from '../shared/elementwise-loop.js';
import { kernelSource } from '../shared/wgsl.js';
import { mathHelpers } from '../shared/wgsl-math.js';

export type UnaryOp =
  | 'neg'
  | 'abs'
  | 'exp'
  | 'log'
  | 'sqrt'
  | 'rsqrt'
  | 'square'
  | 'reciprocal'
  | 'sin'
  | 'cos'
  | 'silu'
  | 'gelu'
  | 'gelu-erf'
  | 'erf'
  | 'relu'
  | 'tanh'
  | 'sigmoid'
  | 'scale';

export const UNARY_OPS: readonly UnaryOp[] = [
  'neg',
  'abs',
  'exp',
  'log',
  'sqrt',
  'rsqrt',
  'square',
  'reciprocal',
  'sin',
  'cos',
  'silu',
  'gelu',
  'gelu-erf',
  'erf',
  'relu',
  'tanh',
  'sigmoid',
  'scale',
];

/** Ops defined on integer tensors too (i32; u32 has no negation). */
const INTEGER_OPS: Partial<Record<UnaryOp, readonly DType[]>> = {
  neg: ['i32'],
  abs: ['i32', 'u32'],
  square: ['i32', 'u32'],
  relu: ['i32', 'u32'],
};

/** sqrt(2 / pi) * 2: gelu's tanh form is x * sigmoid(2u), u = sqrt(2 / pi) (x + 0.044715 x^3). */
const GELU_TANH_SCALE = 2 * Math.sqrt(2 / Math.PI);

/** WGSL for `op` applied to `x` of type T (a scalar or a vector; `T` stands for its type). */
function expression(op: UnaryOp): string {
  switch (op) {
    case 'neg':
      return '-x';
    case 'abs':
      return 'abs(x)';
    case 'exp':
      return 'exp(x)';
    case 'log':
      return 'log(x)';
    case 'sqrt':
      return 'sqrt(x)';
    case 'rsqrt':
      return 'inverseSqrt(x)';
    case 'square':
      return 'x * x';
    case 'reciprocal':
      return '1.0 / x';
    case 'sin':
      return 'sin(x)';
    case 'cos':
      return 'cos(x)';
    case 'silu':
      return 'x * webtune_sigmoid(x)';
    // 0.5 x (1 + tanh(u)) = x sigmoid(2u): no cancellation for negative x, no overflow.
    case 'gelu':
      return `x * webtune_sigmoid(${GELU_TANH_SCALE} * (x + 0.044715 * x * x * x))`;
    // 0.5 x (1 + erf(x / sqrt 2)) = 0.5 x erfc(-x / sqrt 2): accurate for negative x too.
    case 'gelu-erf':
      return `0.5 * x * webtune_erfc(${-Math.SQRT1_2} * x)`;
    case 'erf':
      return 'webtune_erf(x)';
    case 'relu':
      return 'max(x, T(0))';
    case 'tanh':
      return 'webtune_tanh(x)';
    case 'sigmoid':
      return 'webtune_sigmoid(x)';
    case 'scale':
      return 'x * params.factor';
  }
}

const FIELDS = [
  { name: 'n', type: 'u32' as const },
  { name: 'factor', type: 'f32' as const },
];

/**
 * Elementwise `op(x)`; `factor` is the multiplier of 'scale'. Float ops compute f16 in f32 and
 * round on store; neg, abs, square and relu also take i32 (and u32 but neg). Works chunk by chunk
 * on tensors split over several buffers.
 */
export function unary(op: UnaryOp, x: Tensor, factor = 1): Tensor {
  x.assertLive();
  const dtype = x.dtype;
  if (!UNARY_OPS.includes(op)) throw new TensorError(`unary: unknown op '${op}'`);
  const integer = dtype === 'i32' || dtype === 'u32';
  if (integer && !INTEGER_OPS[op]?.includes(dtype)) {
    throw new TensorError(
      `${op}: ${x.describe()} has dtype ${dtype}; ${op} needs a float tensor (cast it first)`,
    );
  }
  if (op === 'scale' && !Number.isFinite(factor)) {
    throw new TensorError(`scale: the factor must be a finite number, got ${factor}`);
  }
  const device = x.device;
  const out = device.empty(x.shape, dtype);
  if (out.size === 0) return out;
  forEachChunk(op, [x, out], ([source, target]) => launch(source, target), ['input', 'output']);
  return out;

  function launch(source: Chunk, target: Chunk) {
    const perInvocation = device.tuning.elementwisePerInvocation;
    const vector = source.elements % 4 === 0;
    const scalarType = dtype === 'f16' ? 'f32' : dtype;
    const computeType = vector ? `vec4<${scalarType}>` : scalarType;
    const storageType = vector ? `vec4<${dtype}>` : dtype;
    const text = expression(op).replace(/\bT\b/g, computeType);
    const load =
      dtype === 'f16' ? (at: string) => `${computeType}(input[${at}])` : (at: string) => `input[${at}]`;
    const store = (value: string) => (dtype === 'f16' ? `${storageType}(${value})` : value);
    const items = vector ? source.elements / 4 : source.elements;
    device.dispatch({
      key: `${KERNELS.unary}:${op}:${dtype}:${vector ? 4 : 1}:${perInvocation}`,
      source: () =>
        kernelSource({
          storage: [
            { name: 'input', type: storageType as never, access: 'read' },
            { name: 'out', type: storageType as never, access: 'read_write' },
          ],
          uniforms: FIELDS,
          workgroupSize: device.tuning.elementwiseWorkgroup,
          helpers: integer ? undefined : mathHelpers(text, vector),
          body: elementwiseLoop(
            perInvocation,
            (index) => `let x = ${load(index)}; out[${index}] = ${store(text)};`,
          ),
        }),
      bindings: [
        { buffer: source.buffer, offset: 0, size: source.buffer.size },
        { buffer: target.buffer, offset: 0, size: target.buffer.size },
      ],
      uniforms: { fields: FIELDS, values: { n: items, factor } },
      workgroups: elementwiseGrid(device, items, perInvocation),
    });
  }
}

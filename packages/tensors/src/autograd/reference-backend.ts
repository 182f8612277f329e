import { TensorError } from '../device/errors.js';
import { attentionBackwardReference } from '../kernels/attention/backward-reference.js';
import { attentionReference } from '../kernels/attention/reference.js';
import { binaryReference } from '../kernels/binary/reference.js';
import { concatReference, permuteReference, sliceReference } from '../kernels/copy/reference.js';
import { crossEntropyBackwardReference } from '../kernels/cross-entropy/backward-reference.js';
import { crossEntropyReference } from '../kernels/cross-entropy/reference.js';
import { embeddingReference } from '../kernels/embedding/reference.js';
import { layerNormReference } from '../kernels/layer-norm/reference.js';
import { matmulReference } from '../kernels/matmul/reference.js';
import { dropoutReference } from '../kernels/random/reference.js';
import { reduceReference } from '../kernels/reduce/reference.js';
import { rmsNormBackwardReference } from '../kernels/rms-norm/backward-reference.js';
import { rmsNormReference } from '../kernels/rms-norm/reference.js';
import { rotaryReference } from '../kernels/rotary/reference.js';
import { scatterAddReference } from '../kernels/scatter-add/reference.js';
import { logSoftmaxReference, softmaxReference } from '../kernels/softmax/reference.js';
import { swigluBackwardReference, swigluReference } from '../kernels/swiglu/reference.js';
import { unaryBackwardReference } from '../kernels/unary/backward-reference.js';
import { unaryReference } from '../kernels/unary/reference.js';
import { whereReference } from '../kernels/where/reference.js';
import { type DType, roundToF16 } from '../tensor/dtype.js';
import { broadcastStrides, contiguousStrides, type Shape, sizeOf } from '../tensor/shape.js';
import { resolveReshape } from '../tensor/tensor.js';
import type {
  AttentionOptions,
  AutogradBackend,
  CrossEntropyOptions,
  CrossEntropyResult,
  MatmulOptions,
} from './backend.js';

/**
 * A float64 tensor on the host: what the reference autodiff computes with. `dtype` records the
 * type the GPU tensor would have (integers for ids, u32 for masks); values are always float64.
 */
export class ReferenceTensor {
  constructor(
    readonly data: Float64Array,
    readonly shape: readonly number[],
    readonly dtype: DType = 'f32',
  ) {
    if (data.length !== sizeOf(shape)) {
      throw new TensorError(`ReferenceTensor: ${data.length} values for shape [${shape.join(', ')}]`);
    }
  }

  static from(data: ArrayLike<number>, shape: Shape = [data.length], dtype: DType = 'f32'): ReferenceTensor {
    return new ReferenceTensor(Float64Array.from(data), [...shape], dtype);
  }
}

type R = ReferenceTensor;

const tensor = (data: Float64Array, shape: Shape, dtype: DType = 'f32') =>
  new ReferenceTensor(data, [...shape], dtype);

/** out[i] = x[offset(i)] for a view of x given by per-output-axis strides (broadcasting). */
function gather(x: R, shape: Shape, strides: readonly number[]): Float64Array {
  const out = new Float64Array(sizeOf(shape));
  const outStrides = contiguousStrides(shape);
  for (let i = 0; i < out.length; i++) {
    let offset = 0;
    for (let d = 0; d < shape.length; d++) offset += (Math.floor(i / outStrides[d]) % shape[d]) * strides[d];
    out[i] = x.data[offset];
  }
  return out;
}

function expand(x: R, shape: Shape): R {
  return tensor(gather(x, shape, broadcastStrides(x.shape, shape)), shape, x.dtype);
}

function permute(x: R, order: readonly number[]): R {
  const result = permuteReference(
    x,
    order.map((d) => (d < 0 ? d + x.shape.length : d)),
  );
  return tensor(Float64Array.from(result.data), result.shape, x.dtype);
}

const resolveIndex = (index: number, extent: number) => (index < 0 ? index + extent : index);

function matmul(a: R, b: R, options: MatmulOptions<R> = {}): R {
  const result = matmulReference(a.data, a.shape, b.data, b.shape, {
    ...options,
    bias: options.bias?.data,
    residual: options.residual?.data,
  });
  const low = options.lowRank;
  if (!low) return tensor(result.data, result.shape, a.dtype);
  // The low-rank term as a second product over the output's rows, the first as its residual.
  const r = low.a.shape[low.a.shape.length - 1];
  const sum = matmulReference(low.a.data, [low.a.data.length / r, r], low.b.data, low.b.shape, {
    transposeB: options.transposeB,
    alpha: low.alpha,
    residual: result.data,
  });
  return tensor(sum.data, result.shape, a.dtype);
}

function binary(op: Parameters<AutogradBackend<R>['binary']>[0], a: R, b: R | number): R {
  const right = typeof b === 'number' ? tensor(Float64Array.of(b), []) : b;
  const result = binaryReference(op, a.data, a.shape, right.data, right.shape);
  const comparison = ['eq', 'ne', 'lt', 'le', 'gt', 'ge'].includes(op);
  return tensor(result.data, result.shape, comparison ? 'u32' : a.dtype);
}

function attention(q: R, k: R, v: R, options: AttentionOptions<R>): { output: R; logsumexp: R } {
  const [batch, seqQ, headsQ, headDim] = q.shape;
  const [, seqK, headsKV] = k.shape;
  const result = attentionReference(
    q.data,
    k.data,
    v.data,
    { batch, seqQ, seqK, headsQ, headsKV, headDim },
    { ...options, paddingMask: options.paddingMask?.data },
  );
  return {
    output: tensor(result.output, q.shape, q.dtype),
    logsumexp: tensor(result.logsumexp, [batch, headsQ, seqQ]),
  };
}

function crossEntropy(logits: R, targets: R, options: CrossEntropyOptions): CrossEntropyResult<R> {
  const result = crossEntropyReference(logits.data, lastAxis(logits), targets.data, options);
  return {
    loss: tensor(result.loss, options.reduction === 'none' ? targets.shape : []),
    logSumExp: tensor(result.logSumExp, targets.shape),
    tokenCount: tensor(Float64Array.of(result.tokenCount), []),
  };
}

/**
 * The float64 CPU backend of the autodiff: the reference of every op on ReferenceTensor. Used to
 * check gradient rules against finite differences and GPU gradients against float64 ones.
 */
export const REFERENCE_BACKEND: AutogradBackend<R> = {
  name: 'reference',
  shape: (x) => x.shape,
  dtype: (x) => x.dtype,
  retain: (x) => new ReferenceTensor(x.data, x.shape, x.dtype),
  release: () => {},
  scope: (_like, fn) => fn(),
  keep: (x) => x,
  storageOf: (x) => x.data,
  full: (_like, shape, value, dtype = 'f32') =>
    tensor(new Float64Array(sizeOf(shape)).fill(value), shape, dtype),
  binary,
  unary: (op, x) => tensor(unaryReference(op, x.data), x.shape, x.dtype),
  scale: (x, factor) => tensor(unaryReference('scale', x.data, factor), x.shape, x.dtype),
  where: (condition, a, b) => {
    const result = whereReference(condition, a, b);
    return tensor(result.data, result.shape, typeof a === 'number' ? (b as R).dtype : a.dtype);
  },
  cast: (x, dtype) => {
    const convert =
      dtype === 'f16'
        ? null
        : dtype === 'f32'
          ? (v: number) => v
          : (v: number) => (Number.isFinite(v) ? Math.trunc(v) : 0);
    return tensor(convert ? x.data.map(convert) : Float64Array.from(roundToF16(x.data)), x.shape, dtype);
  },
  reshape: (x, shape) => tensor(x.data, resolveReshape(x.shape, shape), x.dtype),
  transpose: (x, dim0 = -2, dim1 = -1) => {
    const order = [...Array(x.shape.length).keys()];
    const a = dim0 < 0 ? dim0 + order.length : dim0;
    const b = dim1 < 0 ? dim1 + order.length : dim1;
    [order[a], order[b]] = [order[b], order[a]];
    return permute(x, order);
  },
  permute,
  slice: (x, starts, ends) => {
    const resolve = (values: readonly number[]) => values.map((v, d) => resolveIndex(v, x.shape[d]));
    const result = sliceReference(x, resolve(starts), resolve(ends));
    return tensor(Float64Array.from(result.data), result.shape, x.dtype);
  },
  concat: (tensors, axis) => {
    const result = concatReference(tensors, resolveIndex(axis, tensors[0].shape.length));
    return tensor(Float64Array.from(result.data), result.shape, tensors[0].dtype);
  },
  expand,
  dropout: (x, p, options) => {
    const result = dropoutReference(x.data, p, options.seed, options.offset ?? 0);
    const output = tensor(result.output, x.shape, x.dtype);
    return options.returnMask === false
      ? { output }
      : { output, mask: tensor(result.mask, x.shape, x.dtype) };
  },
  sum: (x, axis, keepDims) => reduced('sum', x, axis, keepDims),
  mean: (x, axis, keepDims) => reduced('mean', x, axis, keepDims),
  max: (x, axis, keepDims) => reduced('max', x, axis, keepDims),
  softmax: (x, axis) => tensor(softmaxReference(x.data, x.shape, axis), x.shape, x.dtype),
  logSoftmax: (x, axis) => tensor(logSoftmaxReference(x.data, x.shape, axis), x.shape, x.dtype),
  rmsNorm: (x, weight, eps) =>
    tensor(rmsNormReference(x.data, lastAxis(x), weight?.data ?? null, eps).output, x.shape, x.dtype),
  layerNorm: (x, weight, bias, eps) =>
    tensor(
      layerNormReference(x.data, lastAxis(x), weight?.data ?? null, bias?.data ?? null, eps).output,
      x.shape,
      x.dtype,
    ),
  matmul,
  rotary: (x, cos, sin, options) =>
    tensor(
      rotaryReference(x.data, x.shape, cos.data, options.inverse ? sin.data.map((v) => -v) : sin.data, {
        ...options,
        batchedTables: cos.shape.length === 3,
      }),
      x.shape,
      x.dtype,
    ),
  embedding: (table, ids) => {
    const [vocab, dim] = table.shape;
    return tensor(embeddingReference(table.data, vocab, dim, ids.data), [...ids.shape, dim], table.dtype);
  },
  attention,
  crossEntropy,
  swiglu: (gate, up) => tensor(swigluReference(gate.data, up.data), gate.shape, gate.dtype),

  unaryBackward: (op, x, out, grad) =>
    tensor(unaryBackwardReference(op, x.data, out.data, grad.data), grad.shape, grad.dtype),
  swigluBackward: (gate, up, grad) => {
    const result = swigluBackwardReference(gate.data, up.data, grad.data);
    return { gate: tensor(result.gate, gate.shape, gate.dtype), up: tensor(result.up, up.shape, up.dtype) };
  },
  rmsNormBackward: (x, weight, grad, eps, options = {}) => {
    const result = rmsNormBackwardReference(x.data, weight?.data ?? null, grad.data, lastAxis(x), eps);
    const input = options.add ? result.input.map((v, i) => v + options.add!.data[i]) : result.input;
    return {
      input: tensor(input, x.shape, x.dtype),
      weight:
        weight && result.weight && options.weightGradient !== false
          ? tensor(result.weight, weight.shape, weight.dtype)
          : null,
    };
  },
  crossEntropyBackward: (logits, targets, logSumExp, _tokenCount, grad, options) =>
    tensor(
      crossEntropyBackwardReference(
        logits.data,
        lastAxis(logits),
        targets.data,
        logSumExp.data,
        grad.data,
        options,
      ),
      logits.shape,
      logits.dtype,
    ),
  attentionBackward: (q, k, v, output, logsumexp, grad, options) => {
    const [batch, queries, heads, headDim] = q.shape;
    const [, keys, kvHeads] = k.shape;
    const result = attentionBackwardReference(
      q.data,
      k.data,
      v.data,
      output.data,
      logsumexp.data,
      grad.data,
      { batch, queries, keys, heads, kvHeads, headDim },
      { ...options, paddingMask: options.paddingMask?.data ?? null },
    );
    return { q: tensor(result.q, q.shape), k: tensor(result.k, k.shape), v: tensor(result.v, v.shape) };
  },
  embeddingBackward: (tableShape, ids, grad) => {
    const [vocab, dim] = tableShape;
    const zero = new Float64Array(vocab * dim);
    return tensor(scatterAddReference(zero, vocab, dim, ids.data, grad.data), tableShape, grad.dtype);
  },
};

function lastAxis(x: R): number {
  return x.shape[x.shape.length - 1];
}

function reduced(op: 'sum' | 'mean' | 'max', x: R, axis: number | null, keepDims: boolean): R {
  const result = reduceReference(op, x.data, x.shape, axis, { keepDims });
  return tensor(result.data, result.shape, x.dtype);
}

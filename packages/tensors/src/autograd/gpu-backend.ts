import { attention } from '../kernels/attention/attention.js';
import { attentionBackward } from '../kernels/attention/attention-backward.js';
import { binary } from '../kernels/binary/binary.js';
import { cast } from '../kernels/cast/cast.js';
import { stridedCopy } from '../kernels/copy/copy.js';
import { crossEntropy } from '../kernels/cross-entropy/cross-entropy.js';
import { crossEntropyBackward } from '../kernels/cross-entropy/cross-entropy-backward.js';
import { embedding } from '../kernels/embedding/embedding.js';
import { full } from '../kernels/fill/fill.js';
import { layerNorm } from '../kernels/layer-norm/layer-norm.js';
import { matmul } from '../kernels/matmul/matmul.js';
import { dropout } from '../kernels/random/random.js';
import { max, mean, sum } from '../kernels/reduce/reduce.js';
import { rmsNorm } from '../kernels/rms-norm/rms-norm.js';
import { rmsNormBackward } from '../kernels/rms-norm/rms-norm-backward.js';
import { rotary } from '../kernels/rotary/rotary.js';
import { scatterAdd } from '../kernels/scatter-add/scatter-add.js';
import { logSoftmax, softmax } from '../kernels/softmax/softmax.js';
import { swiglu, swigluBackward } from '../kernels/swiglu/swiglu.js';
import { unary } from '../kernels/unary/unary.js';
import { unaryBackward } from '../kernels/unary/unary-backward.js';
import { where } from '../kernels/where/where.js';
import { concat, permute, slice, transpose } from '../ops/layout.js';
import { broadcastStrides, contiguousStrides, type Shape } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import type { AutogradBackend } from './backend.js';

/** x broadcast to `shape` by one strided copy (stride 0 along broadcast axes). */
function expand(x: Tensor, shape: Shape): Tensor {
  const out = x.device.empty(shape, x.dtype);
  stridedCopy('expand', x, out, {
    shape,
    sourceOffset: 0,
    sourceStrides: broadcastStrides(x.shape, shape),
    targetOffset: 0,
    targetStrides: contiguousStrides(shape),
  });
  return out;
}

/** The GPU backend of the autodiff: the package's kernels on `Tensor`. */
export const GPU_BACKEND: AutogradBackend<Tensor> = {
  name: 'gpu',
  shape: (x) => x.shape,
  dtype: (x) => x.dtype,
  // A view shares the storage (reference counted): the tape's handle outlives the caller's.
  retain: (x) => x.reshape(x.shape).keep(),
  release: (x) => x.dispose(),
  scope: (like, fn) => like.device.scope(fn),
  keep: (x) => x.keep(),
  storageOf: (x) => x.storage,
  full: (like, shape, value, dtype) => full(like.device, shape, value, dtype ?? like.dtype),
  binary,
  unary: (op, x) => unary(op, x),
  scale: (x, factor) => unary('scale', x, factor),
  where,
  cast,
  reshape: (x, shape) => x.reshape(shape),
  transpose,
  permute,
  slice,
  concat,
  expand,
  dropout,
  sum: (x, axis, keepDims) => sum(x, axis, { keepDims }),
  mean: (x, axis, keepDims) => mean(x, axis, { keepDims }),
  max: (x, axis, keepDims) => max(x, axis, { keepDims }),
  softmax,
  logSoftmax,
  rmsNorm: (x, weight, eps) => rmsNorm(x, weight, eps),
  layerNorm: (x, weight, bias, eps) => layerNorm(x, weight, bias, eps),
  matmul,
  rotary,
  embedding,
  attention: (q, k, v, options) =>
    attention(q, k, v, { ...options, paddingMask: options.paddingMask ?? undefined }),
  crossEntropy,
  swiglu,
  unaryBackward,
  swigluBackward,
  rmsNormBackward,
  crossEntropyBackward,
  attentionBackward,
  embeddingBackward: (tableShape, ids, grad) => {
    const table = full(grad.device, tableShape, 0, grad.dtype);
    return scatterAdd(table, ids, grad);
  },
};

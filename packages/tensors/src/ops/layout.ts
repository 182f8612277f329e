import { TensorError } from '../device/errors.js';
import { stridedCopy } from '../kernels/copy/copy.js';
import { DTYPE_BYTES, type DType } from '../tensor/dtype.js';
import { contiguousStrides, formatShape, normalizeAxis } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';

/**
 * Layout ops. Tensors are always contiguous, so each of these copies into a new tensor through
 * the strided-copy kernel (kernels/copy); `x.reshape(shape)` is the only free view.
 */

/** A new tensor with the same shape and values as `x` (a real copy, chunk by chunk). */
export function contiguousCopy<D extends DType>(x: Tensor<D>): Tensor<D> {
  x.assertLive();
  const out = x.device.empty(x.shape, x.dtype);
  const bytes = DTYPE_BYTES[x.dtype];
  x.chunks.forEach((chunk, i) => {
    const size = Math.ceil((chunk.elements * bytes) / 4) * 4;
    if (size > 0) {
      x.device.copyBuffer(
        { buffer: chunk.buffer, offset: 0, size },
        { buffer: out.chunks[i].buffer, offset: 0, size },
      );
    }
  });
  return out;
}

/** `x` with its axes reordered: output axis i is input axis order[i] (negative axes allowed). */
export function permute<D extends DType>(x: Tensor<D>, order: readonly number[]): Tensor<D> {
  x.assertLive();
  const rank = x.rank;
  if (order.length !== rank) {
    throw new TensorError(
      `permute: order [${order.join(', ')}] has ${order.length} axes, ${x.describe()} has ${rank}`,
    );
  }
  const axes = order.map((axis) => {
    if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
      throw new TensorError(
        `permute: axis ${axis} in [${order.join(', ')}] is out of range for ${x.describe()}`,
      );
    }
    return axis < 0 ? axis + rank : axis;
  });
  if (new Set(axes).size !== rank) {
    throw new TensorError(`permute: order [${order.join(', ')}] repeats an axis (${x.describe()})`);
  }
  const shape = axes.map((axis) => x.shape[axis]);
  const out = x.device.empty(shape, x.dtype);
  const strides = contiguousStrides(x.shape);
  stridedCopy('permute', x, out, {
    shape,
    sourceOffset: 0,
    sourceStrides: axes.map((axis) => strides[axis]),
    targetOffset: 0,
    targetStrides: contiguousStrides(shape),
  });
  return out;
}

/** `x` with axes `dim0` and `dim1` swapped (by default the last two), copied. */
export function transpose<D extends DType>(x: Tensor<D>, dim0 = -2, dim1 = -1): Tensor<D> {
  x.assertLive();
  const rank = x.rank;
  const check = (dim: number) => {
    if (!Number.isInteger(dim) || dim < -rank || dim >= rank) {
      throw new TensorError(`transpose: dimension ${dim} is out of range for ${x.describe()} (rank ${rank})`);
    }
    return dim < 0 ? dim + rank : dim;
  };
  const a = check(dim0);
  const b = check(dim1);
  const order = Array.from({ length: rank }, (_, i) => (i === a ? b : i === b ? a : i));
  return permute(x, order);
}

/**
 * The block starts[d] <= i < ends[d] of every axis d, copied. Indices may be negative (counted
 * from the end); axes past the length of `starts`/`ends` are taken whole. An index outside
 * [-size, size] or an end before its start is an error (no silent clamping).
 */
export function slice<D extends DType>(
  x: Tensor<D>,
  starts: readonly number[],
  ends: readonly number[],
): Tensor<D> {
  x.assertLive();
  const rank = x.rank;
  if (starts.length !== ends.length || starts.length > rank) {
    throw new TensorError(
      `slice: starts [${starts.join(', ')}] and ends [${ends.join(', ')}] must have the same length, at most the rank of ${x.describe()}`,
    );
  }
  const begin: number[] = [];
  const shape: number[] = [];
  for (let d = 0; d < rank; d++) {
    const size = x.shape[d];
    if (d >= starts.length) {
      begin.push(0);
      shape.push(size);
      continue;
    }
    const resolve = (index: number, what: string) => {
      if (!Number.isInteger(index) || index < -size || index > size) {
        throw new TensorError(
          `slice: ${what} ${index} of axis ${d} is outside [-${size}, ${size}] for ${x.describe()}`,
        );
      }
      return index < 0 ? index + size : index;
    };
    const start = resolve(starts[d], 'start');
    const end = resolve(ends[d], 'end');
    if (end < start) {
      throw new TensorError(
        `slice: axis ${d} of ${x.describe()} ends (${ends[d]} -> ${end}) before it starts (${starts[d]} -> ${start})`,
      );
    }
    begin.push(start);
    shape.push(end - start);
  }
  const out = x.device.empty(shape, x.dtype);
  const strides = contiguousStrides(x.shape);
  stridedCopy('slice', x, out, {
    shape,
    sourceOffset: begin.reduce((sum, b, d) => sum + b * strides[d], 0),
    sourceStrides: strides,
    targetOffset: 0,
    targetStrides: contiguousStrides(shape),
  });
  return out;
}

/** The tensors joined along `axis` (negative allowed); all other sizes, the dtype and device agree. */
export function concat<D extends DType>(tensors: readonly Tensor<D>[], axis: number): Tensor<D> {
  if (tensors.length === 0) throw new TensorError('concat: needs at least one tensor');
  const first = tensors[0];
  for (const t of tensors) t.assertLive();
  const rank = first.rank;
  if (rank === 0) throw new TensorError('concat: cannot join scalars (rank 0); reshape them to [1] first');
  const dim = normalizeAxis(axis, rank, 'concat: axis');
  tensors.forEach((t, i) => {
    if (t.device !== first.device) throw new TensorError('concat: tensors live on different devices');
    if (t.dtype !== first.dtype) {
      throw new TensorError(
        `concat: tensor ${i} is ${t.dtype}, tensor 0 is ${first.dtype} (${t.describe()})`,
      );
    }
    const matches = t.rank === rank && t.shape.every((size, d) => d === dim || size === first.shape[d]);
    if (!matches) {
      throw new TensorError(
        `concat along axis ${dim}: tensor ${i} has shape ${formatShape(t.shape)}, which does not match ${formatShape(first.shape)} outside that axis`,
      );
    }
  });
  const shape = [...first.shape];
  shape[dim] = tensors.reduce((sum, t) => sum + t.shape[dim], 0);
  const out = first.device.empty(shape, first.dtype);
  const targetStrides = contiguousStrides(shape);
  let offset = 0;
  for (const t of tensors) {
    stridedCopy('concat', t, out, {
      shape: t.shape,
      sourceOffset: 0,
      sourceStrides: contiguousStrides(t.shape),
      targetOffset: offset * targetStrides[dim],
      targetStrides,
    });
    offset += t.shape[dim];
  }
  return out;
}

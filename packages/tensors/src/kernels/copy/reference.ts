import { contiguousStrides, type Shape, sizeOf } from '../../tensor/shape.js';

/** A plain array with its shape, as the layout references take and return them. */
export interface HostTensor {
  data: ArrayLike<number>;
  shape: Shape;
}

function coordinatesOf(index: number, strides: readonly number[], shape: Shape): number[] {
  return shape.map((size, d) => Math.floor(index / strides[d]) % size);
}

/** Output axis i is input axis order[i] (non-negative axes). */
export function permuteReference(
  x: HostTensor,
  order: readonly number[],
): { data: number[]; shape: number[] } {
  const shape = order.map((axis) => x.shape[axis]);
  const inStrides = contiguousStrides(x.shape);
  const outStrides = contiguousStrides(shape);
  const data = new Array<number>(sizeOf(shape));
  for (let i = 0; i < data.length; i++) {
    const c = coordinatesOf(i, outStrides, shape);
    data[i] = x.data[c.reduce((sum, value, d) => sum + value * inStrides[order[d]], 0)];
  }
  return { data, shape };
}

/** The block [starts[d], ends[d]) of each axis (non-negative, already resolved indices). */
export function sliceReference(
  x: HostTensor,
  starts: readonly number[],
  ends: readonly number[],
): { data: number[]; shape: number[] } {
  const shape = x.shape.map((size, d) => (d < starts.length ? ends[d] - starts[d] : size));
  const inStrides = contiguousStrides(x.shape);
  const outStrides = contiguousStrides(shape);
  const data = new Array<number>(sizeOf(shape));
  for (let i = 0; i < data.length; i++) {
    const c = coordinatesOf(i, outStrides, shape);
    data[i] = x.data[c.reduce((sum, value, d) => sum + (value + (starts[d] ?? 0)) * inStrides[d], 0)];
  }
  return { data, shape };
}

/** The tensors joined along `axis` (non-negative). */
export function concatReference(
  tensors: readonly HostTensor[],
  axis: number,
): { data: number[]; shape: number[] } {
  const shape = [...tensors[0].shape];
  shape[axis] = tensors.reduce((sum, t) => sum + t.shape[axis], 0);
  const outStrides = contiguousStrides(shape);
  const data = new Array<number>(sizeOf(shape));
  for (let i = 0; i < data.length; i++) {
    const c = coordinatesOf(i, outStrides, shape);
    let along = c[axis];
    let k = 0;
    while (along >= tensors[k].shape[axis]) along -= tensors[k++].shape[axis];
    const inStrides = contiguousStrides(tensors[k].shape);
    data[i] =
      tensors[k].data[c.reduce((sum, value, d) => sum + (d === axis ? along : value) * inStrides[d], 0)];
  }
  return { data, shape };
}

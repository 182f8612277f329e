import type { Device } from '../device/device.js';
import { fillRange, full } from '../kernels/fill/fill.js';
import type { DType } from '../tensor/dtype.js';
import type { Shape } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';

export { full };

export function zeros<D extends DType = 'f32'>(
  device: Device,
  shape: Shape,
  dtype: D = 'f32' as D,
): Tensor<D> {
  return full(device, shape, 0, dtype);
}

export function ones<D extends DType = 'f32'>(
  device: Device,
  shape: Shape,
  dtype: D = 'f32' as D,
): Tensor<D> {
  return full(device, shape, 1, dtype);
}

/** [start, start + step, ...) up to `end` (exclusive), like numpy.arange. */
export function arange<D extends DType = 'f32'>(
  device: Device,
  start: number,
  end: number,
  step = 1,
  dtype: D = 'f32' as D,
): Tensor<D> {
  const count = Math.max(0, Math.ceil((end - start) / step));
  return fillRange(device.empty([count], dtype), start, step) as Tensor<D>;
}

export function fromArray<D extends DType = 'f32'>(
  device: Device,
  data: ArrayLike<number>,
  shape: Shape = [data.length],
  dtype: D = 'f32' as D,
): Tensor<D> {
  return device.fromArray(data, shape, dtype);
}

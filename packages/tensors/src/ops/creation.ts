import type { Device } from '../device/device.js';
import { fillRange, full } from '../kernels/fill/fill.js';
import { randomNormal, randomUniform } from '../kernels/random/random.js';
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

/**
 * Uniform samples in [low, high) (default [0, 1)), reproducible per (seed, offset, element index)
 * on every device; see kernels/random/generator.ts.
 */
export function rand(
  device: Device,
  shape: Shape,
  options: { seed: number; low?: number; high?: number; offset?: number; dtype?: 'f32' | 'f16' },
): Tensor {
  return randomUniform(device, shape, options);
}

/** Normal samples (default mean 0, std 1) by Box-Muller, reproducible like rand. */
export function randn(
  device: Device,
  shape: Shape,
  options: { seed: number; mean?: number; std?: number; offset?: number; dtype?: 'f32' | 'f16' },
): Tensor {
  return randomNormal(device, shape, options);
}

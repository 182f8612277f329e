import type { DType } from '../../tensor/dtype.js';
import { roundToF16 } from '../../tensor/dtype.js';

/** One value of dtype `from` converted to `to`, as the cast kernel does it. */
export function castValue(value: number, from: DType, to: DType): number {
  if (from === to) return value;
  const integerSource = from === 'i32' || from === 'u32';
  if (to === 'f32') return Math.fround(value);
  if (to === 'f16') return roundToF16([Math.fround(value)])[0];
  if (integerSource) return to === 'i32' ? value | 0 : value >>> 0;
  // Float to integer: NaN gives 0, out-of-range values saturate, the rest truncate toward zero.
  if (Number.isNaN(value)) return 0;
  // (+ 0 turns -0 into 0: integers have one zero.)
  if (to === 'i32') return Math.min(Math.max(Math.trunc(value), -(2 ** 31)), 2 ** 31 - 1) + 0;
  return Math.min(Math.max(Math.trunc(value), 0), 2 ** 32 - 1) + 0;
}

/** Plain TypeScript cast of an array of `from` values to `to`. */
export function castReference(values: ArrayLike<number>, from: DType, to: DType): number[] {
  return Array.from(values, (value) => castValue(value, from, to));
}

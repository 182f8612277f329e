import { Rng } from '@webtune/test-utils';
import { describe, expect, it } from 'vitest';
import { floatBitsToHalfBits, fromFloat32, halfBitsToFloatBits, toFloat32 } from './convert.js';

/** Value of binary16 bits computed from the definition, in float64. */
function halfValue(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa === 0 ? sign * Infinity : Number.NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

const bitsOf = (value: number) => new Uint32Array(new Float32Array([value]).buffer)[0];

describe('toFloat32 / fromFloat32', () => {
  it('widens every F16 value exactly and narrows it back to the same bits', () => {
    const all = new Uint16Array(65536).map((_, index) => index);
    const floats = toFloat32({ dtype: 'F16', data: new Uint8Array(all.buffer) });
    const back = new Uint16Array(fromFloat32(floats, 'F16').buffer);
    const wrong: number[] = [];
    for (let bits = 0; bits < 65536; bits++) {
      const expected = halfValue(bits);
      const ok = Number.isNaN(expected)
        ? Number.isNaN(floats[bits]) && (back[bits] & 0x7c00) === 0x7c00 && (back[bits] & 0x3ff) !== 0
        : Object.is(floats[bits], expected) && back[bits] === bits;
      if (!ok) wrong.push(bits);
    }
    expect(wrong).toEqual([]);
  });

  it('rounds F32 to the nearest F16, ties to even, overflow to infinity', () => {
    const rng = new Rng(7);
    const values = [
      ...rng.normal(2000, 1),
      ...rng.normal(500, 1e-5),
      ...rng.normal(500, 3e4),
      65520,
      65519,
      2 ** -25,
      3 * 2 ** -26,
    ];
    const halves = new Uint16Array(fromFloat32(new Float32Array(values), 'F16').buffer);
    values.forEach((value, index) => {
      const x = Math.fround(value);
      const chosen = halfValue(halves[index]);
      // No other half is strictly nearer; on a tie the chosen one has an even mantissa.
      const sign = halves[index] & 0x8000;
      const magnitude = halves[index] & 0x7fff;
      const down = magnitude > 0 ? halfValue(sign | (magnitude - 1)) : chosen;
      const up = magnitude < 0x7bff ? halfValue(sign | (magnitude + 1)) : Infinity;
      const error = Math.abs(chosen - x);
      if (Number.isFinite(chosen)) {
        expect(error).toBeLessThanOrEqual(Math.abs(down - x));
        expect(error).toBeLessThanOrEqual(Math.abs(up - x));
        const tie = (magnitude > 0 && error === Math.abs(down - x)) || error === Math.abs(up - x);
        if (tie) expect(halves[index] & 1).toBe(0);
      } else {
        expect(Math.abs(x)).toBeGreaterThanOrEqual(65520);
      }
    });
    expect(floatBitsToHalfBits(bitsOf(65520))).toBe(0x7c00);
    expect(floatBitsToHalfBits(bitsOf(2 ** -25))).toBe(0);
    expect(floatBitsToHalfBits(bitsOf(3 * 2 ** -26))).toBe(1);
    expect(halfBitsToFloatBits(0x0001)).toBe(bitsOf(2 ** -24));
  });

  it('converts BF16 both ways with round to nearest even', () => {
    const values = new Float32Array([
      1,
      -2.5,
      1 + 2 ** -8,
      1 + 3 * 2 ** -8,
      1 + 2 ** -7 + 2 ** -9,
      Infinity,
      3e38,
      1e-40,
    ]);
    const bytes = fromFloat32(values, 'BF16');
    const back = toFloat32({ dtype: 'BF16', data: bytes });
    expect(Array.from(back)).toEqual([1, -2.5, 1, 1 + 2 ** -6, 1 + 2 ** -7, Infinity, back[6], back[7]]);
    expect(Math.abs(back[6] - 3e38) / 3e38).toBeLessThan(2 ** -8);
    expect(Number.isNaN(toFloat32({ dtype: 'BF16', data: fromFloat32([Number.NaN], 'BF16') })[0])).toBe(true);
  });

  it('reads F32 and F64 from unaligned views and rejects integer dtypes by name', () => {
    const values = new Rng(3).normal(33);
    const f32 = fromFloat32(values, 'F32');
    const unaligned = new Uint8Array(f32.length + 1);
    unaligned.set(f32, 1);
    expect(toFloat32({ dtype: 'F32', data: unaligned.subarray(1) })).toEqual(values);
    const f64 = fromFloat32(values, 'F64');
    const unaligned64 = new Uint8Array(f64.length + 3);
    unaligned64.set(f64, 3);
    expect(toFloat32({ dtype: 'F64', data: unaligned64.subarray(3) })).toEqual(values);
    const f16 = fromFloat32(values, 'F16');
    const unaligned16 = new Uint8Array(f16.length + 1);
    unaligned16.set(f16, 1);
    expect(toFloat32({ dtype: 'F16', data: unaligned16.subarray(1) })).toEqual(
      toFloat32({ dtype: 'F16', data: f16 }),
    );
    expect(() => toFloat32({ name: 'ids', dtype: 'I32', data: new Uint8Array(4) })).toThrow(
      /tensor "ids".*not I32/,
    );
    expect(() => toFloat32({ name: 'w', dtype: 'F32', data: new Uint8Array(6) })).toThrow(
      /tensor "w": 6 bytes/,
    );
  });
});

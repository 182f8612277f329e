import { Rng } from '@webtune/test-utils';
import { describe, expect, it } from 'vitest';
import { f16BitsToF32, f32ToF16Bits } from '../../tensor/dtype.js';
import { bf16BitsToF32, decodeRows, encodeRows, f32ToBf16Bits, packedRowBytes } from './formats.js';

function randomValues(n: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => (rng.next() * 2 - 1) * scale);
}

describe('packed formats', () => {
  it('lays Q8_0 out as ggml does: f16 d = max|x| / 127, then int8 roundf(x / d)', () => {
    const values = Float32Array.from({ length: 32 }, (_, j) => (j - 10) * 0.25);
    const bytes = encodeRows(values, 1, 32, 'q8_0');
    expect(bytes.length).toBe(34);
    const d = Math.fround(5.25 / 127);
    expect(bytes[0] | (bytes[1] << 8)).toBe(f32ToF16Bits(d));
    // x = -2.5: -2.5 / d = -60.476... -> -60 (two's complement 196)
    expect(bytes[2]).toBe(256 - 60);
    expect(bytes[2 + 31]).toBe(127);
    const decoded = decodeRows(bytes, 1, 32, 'q8_0');
    expect(decoded[31]).toBe(Math.fround(f16BitsToF32(f32ToF16Bits(d)) * 127));
  });

  it('lays Q4_0 out as ggml does: low nibbles elements 0..15, high nibbles 16..31, d = -max / 8', () => {
    const values = new Float32Array(32);
    values[0] = -4; // the value of largest magnitude: d = 0.5, q = 0
    values[1] = 1; // 1 / 0.5... d is -max/8 = 0.5: 1 * (1 / 0.5) + 8.5 = 10.5 -> 10
    values[16] = 3.5; // 7 + 8.5 = 15.5 -> 15
    const bytes = encodeRows(values, 1, 32, 'q4_0');
    expect(bytes.length).toBe(18);
    expect(f16BitsToF32(bytes[0] | (bytes[1] << 8))).toBe(0.5);
    expect(bytes[2]).toBe(0 | (15 << 4));
    expect(bytes[3] & 15).toBe(10);
    const decoded = decodeRows(bytes, 1, 32, 'q4_0');
    expect(decoded[0]).toBe(-4);
    expect(decoded[1]).toBe(1);
    expect(decoded[16]).toBe(3.5);
    expect(decoded[2]).toBe(0);
  });

  it('round-trips within the format error at odd row counts', () => {
    const rows = 7;
    const cols = 96;
    const values = randomValues(rows * cols, 3, 2);
    for (const [format, bound] of [
      ['f16', 2 ** -10],
      ['bf16', 2 ** -7],
      ['q8_0', 1 / 127],
      ['q4_0', 1 / 7],
    ] as const) {
      const bytes = encodeRows(values, rows, cols, format);
      expect(bytes.length).toBe(rows * packedRowBytes(format, cols));
      const decoded = decodeRows(bytes, rows, cols, format);
      // Relative to the block's largest magnitude (2 here).
      let worst = 0;
      for (let i = 0; i < values.length; i++) worst = Math.max(worst, Math.abs(decoded[i] - values[i]));
      expect(worst, format).toBeLessThanOrEqual(bound * 2 * 1.01);
    }
  });

  it('rounds bf16 to nearest even', () => {
    expect(bf16BitsToF32(f32ToBf16Bits(1 + 2 ** -8))).toBe(1);
    expect(bf16BitsToF32(f32ToBf16Bits(1 + 3 * 2 ** -8))).toBe(1 + 2 ** -6);
    expect(bf16BitsToF32(f32ToBf16Bits(-2.5))).toBe(-2.5);
  });

  it('refuses quantized rows that are not whole blocks', () => {
    expect(() => packedRowBytes('q4_0', 172)).toThrow(/blocks of 32 values; a row of 172/);
    expect(packedRowBytes('f16', 172)).toBe(344);
  });
});

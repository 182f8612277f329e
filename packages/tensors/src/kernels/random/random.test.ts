import { expectClose, f16Usable, Rng } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { roundToF16 } from '../../tensor/dtype.js';
import { dropout, dropoutMask, randomBits, randomNormal, randomUniform } from './random.js';
import { dropoutReference, normalReference, randomBitsReference, uniformReference } from './reference.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});

const MILLION = 1 << 20;

function moments(values: ArrayLike<number>): { mean: number; std: number; skew: number; kurtosis: number } {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i];
  const mean = sum / values.length;
  let m2 = 0;
  let m3 = 0;
  let m4 = 0;
  for (let i = 0; i < values.length; i++) {
    const d = values[i] - mean;
    m2 += d * d;
    m3 += d * d * d;
    m4 += d * d * d * d;
  }
  const variance = m2 / values.length;
  return {
    mean,
    std: Math.sqrt(variance),
    skew: m3 / values.length / variance ** 1.5,
    kurtosis: m4 / values.length / variance ** 2,
  };
}

/** Index of the first element that differs, or -1 (fast on a million elements, unlike toEqual). */
function firstDifference(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return Math.min(actual.length, expected.length);
  for (let i = 0; i < actual.length; i++) if (actual[i] !== Math.fround(expected[i])) return i;
  return -1;
}

describe('random', () => {
  it('gives exactly the bits of the TypeScript generator', async () => {
    for (const [shape, seed, offset] of [
      [[1], 0, 0],
      [[7], 1, 0],
      [[33, 5], 2 ** 40 + 3, 5],
      [[1000], 12345, 2 ** 32 - 3], // the counter wraps
      [[4, 250], 2 ** 53 - 1, 2 ** 33 + 7],
    ] as [number[], number, number][]) {
      const n = shape.reduce((p, d) => p * d, 1);
      const out = randomBits(device, shape, { seed, offset });
      expect(out.dtype).toBe('u32');
      expect(Array.from(await out.toArray()), `seed ${seed}`).toEqual(
        Array.from(randomBitsReference(seed, offset, n)),
      );
    }
  });

  it('gives uniform samples with the right moments', async () => {
    const values = await randomUniform(device, [MILLION], { seed: 7 }).toArray();
    expectClose(values.subarray(0, 4096), uniformReference(7, 0, 4096), { rtol: 1e-7, atol: 0 });
    const m = moments(values);
    // Mean of U(0,1): 1/2, std 1/sqrt(12); 5 standard errors.
    expect(Math.abs(m.mean - 0.5)).toBeLessThan((5 * Math.sqrt(1 / 12)) / Math.sqrt(MILLION));
    expect(Math.abs(m.std - Math.sqrt(1 / 12))).toBeLessThan((5 * 0.0745) / Math.sqrt(MILLION));
    expect(Math.min(...values.subarray(0, 65536))).toBeGreaterThanOrEqual(0);
    expect(Math.max(...values.subarray(0, 65536))).toBeLessThan(1);
    // 16 equal bins, each within 5 standard errors of n / 16.
    const bins = new Array(16).fill(0);
    for (const v of values) bins[Math.floor(v * 16)]++;
    const expected = MILLION / 16;
    for (const count of bins) expect(Math.abs(count - expected)).toBeLessThan(5 * Math.sqrt(expected));

    const scaled = await randomUniform(device, [1001], { seed: 7, offset: 3, low: -2, high: 6 }).toArray();
    expectClose(scaled, uniformReference(7, 3, 1001, -2, 6), { rtol: 1e-6, atol: 1e-6 });
  });

  it('gives normal samples with the right moments', async () => {
    const values = await randomNormal(device, [MILLION], { seed: 11 }).toArray();
    expectClose(values.subarray(0, 4096), normalReference(11, 0, 4096), { rtol: 1e-5, atol: 1e-5 });
    const m = moments(values);
    const standardError = 1 / Math.sqrt(MILLION);
    expect(Math.abs(m.mean)).toBeLessThan(5 * standardError);
    expect(Math.abs(m.std - 1)).toBeLessThan(5 * standardError * Math.SQRT1_2);
    expect(Math.abs(m.skew)).toBeLessThan(5 * Math.sqrt(6) * standardError);
    expect(Math.abs(m.kurtosis - 3)).toBeLessThan(5 * Math.sqrt(24) * standardError);
    // The cosine and sine halves of a pair are independent.
    let cross = 0;
    for (let i = 0; i < MILLION; i += 2) cross += values[i] * values[i + 1];
    expect(Math.abs(cross / (MILLION / 2))).toBeLessThan(5 / Math.sqrt(MILLION / 2));

    const shifted = await randomNormal(device, [999], { seed: 11, offset: 1, mean: 3, std: 0.5 }).toArray();
    expectClose(shifted, normalReference(11, 1, 999, 3, 0.5), { rtol: 1e-5, atol: 1e-5 });
    if (f16Usable(device.hasF16)) {
      const half = randomNormal(device, [1000], { seed: 11, dtype: 'f16' });
      expect(half.dtype).toBe('f16');
      expectClose(await half.toArray(), roundToF16(normalReference(11, 0, 1000)), { rtol: 1e-3, atol: 1e-3 });
    }
  });

  it('drops elements at rate p with a reproducible mask', async () => {
    const x = new Rng(3).uniform(MILLION, -1, 1);
    const input = device.fromArray(x, [1024, 1024], 'f32');
    for (const p of [0.1, 0.5]) {
      const { output, mask } = dropout(input, p, { seed: 21 });
      const maskValues = await mask!.toArray();
      const expected = dropoutReference(x, p, 21);
      expect(firstDifference(maskValues, expected.mask)).toBe(-1);
      expectClose(await output.toArray(), expected.output, { rtol: 1e-6, atol: 0 });
      let keptCount = 0;
      for (let i = 0; i < MILLION; i++) if (maskValues[i] !== 0) keptCount++;
      const kept = keptCount / MILLION;
      expect(Math.abs(kept - (1 - p))).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / MILLION));

      const again = await dropout(input, p, { seed: 21 }).mask!.toArray();
      expect(firstDifference(again, maskValues)).toBe(-1);
      const regenerated = await dropoutMask(device, [1024, 1024], p, { seed: 21 }).toArray();
      expect(firstDifference(regenerated, maskValues)).toBe(-1);
      const other = await dropout(input, p, { seed: 22 }).mask!.toArray();
      let agree = 0;
      for (let i = 0; i < MILLION; i++) if ((other[i] === 0) === (maskValues[i] === 0)) agree++;
      // Independent masks agree with probability p^2 + (1 - p)^2.
      const rate = p * p + (1 - p) * (1 - p);
      expect(Math.abs(agree / MILLION - rate)).toBeLessThan(5 * Math.sqrt((rate * (1 - rate)) / MILLION));
    }
    // The offset moves along the same stream.
    const shifted = await dropout(input, 0.5, { seed: 21, offset: 5 }).mask!.toArray();
    const base = dropoutReference(x, 0.5, 21).mask;
    expect(Array.from(shifted.subarray(0, 1000))).toEqual(Array.from(base.subarray(5, 1005), Math.fround));
  });

  it('keeps everything at p = 0, drops everything at p = 1, and rounds f16', async () => {
    const x = new Rng(4).uniform(1001, -1, 1);
    const input = device.fromArray(x, [1001], 'f32');
    const none = dropout(input, 0, { seed: 1, returnMask: false });
    expect(none.mask).toBeUndefined();
    expect(Array.from(await none.output.toArray())).toEqual(Array.from(x));
    const all = dropout(input, 1, { seed: 1 });
    expect(Array.from(await all.output.toArray()).every((v) => v === 0)).toBe(true);
    expect(Array.from(await all.mask!.toArray()).every((v) => v === 0)).toBe(true);
    if (f16Usable(device.hasF16)) {
      const half = roundToF16(x);
      const { output, mask } = dropout(device.fromArray(half, [1001], 'f16'), 0.3, { seed: 9 });
      expect(mask!.dtype).toBe('f16');
      const expected = dropoutReference(half, 0.3, 9);
      expect(Array.from(await mask!.toArray())).toEqual(Array.from(roundToF16(expected.mask)));
      expectClose(await output.toArray(), roundToF16(expected.output), { rtol: 1e-3, atol: 0 });
    }
  });

  it('gives the same numbers whatever the chunking', async () => {
    const small = await createDevice({ maxBindingBytes: 4096 });
    const chunked = randomNormal(small, [300, 7], { seed: 5, offset: 1 });
    expect(chunked.chunked).toBe(true);
    expectClose(await chunked.toArray(), normalReference(5, 1, 2100), { rtol: 1e-5, atol: 1e-5 });
    const x = new Rng(6).uniform(2100);
    const { output, mask } = dropout(small.fromArray(x, [300, 7], 'f32'), 0.25, { seed: 5 });
    const expected = dropoutReference(x, 0.25, 5);
    expect(Array.from(await mask!.toArray())).toEqual(Array.from(expected.mask, Math.fround));
    expectClose(await output.toArray(), expected.output, { rtol: 1e-6, atol: 0 });
    small.destroy();
  });

  it('spreads more than 65,535 workgroups over two grid dimensions', async () => {
    const n = 65_535 * device.tuning.elementwiseWorkgroup * device.tuning.elementwisePerInvocation + 999;
    const bits = await randomBits(device, [n], { seed: 3 }).toArray();
    for (const i of [0, n - 1, n - 999, n - 1000, 123_456]) {
      expect(bits[i]).toBe(randomBitsReference(3, i, 1)[0]);
    }
  });

  it('rejects bad seeds, offsets, probabilities and dtypes', () => {
    expect(() => randomUniform(device, [3], { seed: -1 })).toThrow(
      /rand: seed must be a non-negative integer/,
    );
    expect(() => randomUniform(device, [3], { seed: 1.5 })).toThrow(/seed must be/);
    expect(() => randomNormal(device, [3], { seed: 1, offset: -2 })).toThrow(/randn: offset must be/);
    expect(() => randomUniform(device, [3], { seed: 1, low: 2, high: 1 })).toThrow(/low <= high/);
    const x = device.fromArray([1, 2], [2], 'f32');
    expect(() => dropout(x, 1.5, { seed: 1 })).toThrow(/dropout: p must be in \[0, 1\], got 1.5/);
    expect(() => dropout(device.fromArray([1, 2], [2], 'i32'), 0.5, { seed: 1 })).toThrow(
      /f32 or f16, got i32/,
    );
  });
});

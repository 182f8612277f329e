import { f16Usable, Rng, requireF16 } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { type DType, roundToF16 } from '../../tensor/dtype.js';
import { cast } from './cast.js';
import { castReference } from './reference.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});

/** Values of `dtype` that exercise rounding, saturation, signs, subnormals, inf and NaN. */
function valuesOf(dtype: DType, n: number, seed: number): number[] {
  const rng = new Rng(seed);
  if (dtype === 'i32') {
    const special = [0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 65504, 65519, 65520, -70000, 2 ** 24 + 1];
    return Array.from({ length: n }, (_, i) =>
      i < special.length ? special[i] : Math.floor((rng.next() - 0.5) * 2 ** (1 + 31 * rng.next())),
    );
  }
  if (dtype === 'u32') {
    const special = [0, 1, 2 ** 32 - 1, 2 ** 31, 2 ** 31 - 1, 65519, 65520, 2 ** 24 + 1];
    return Array.from({ length: n }, (_, i) =>
      i < special.length ? special[i] : Math.floor(rng.next() * 2 ** (32 * rng.next())),
    );
  }
  const special = [
    0,
    -0,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    0.5,
    -0.5,
    -1.9999,
    1 + 2 ** -11, // halfway between two f16 values: to even (1)
    1 + 3 * 2 ** -11, // halfway: to even (1 + 2^-9)
    65504,
    65519.99,
    65520,
    -1e6,
    3e9,
    5e9,
    -3e9,
    2 ** -24, // smallest f16 subnormal
    2 ** -25, // halfway to zero: to even (0)
    1.5 * 2 ** -25,
    1e-20,
    6.1e-5,
    -(2 ** 31),
    2 ** 31,
    2 ** 32,
  ];
  const values = Array.from({ length: n }, (_, i) =>
    i < special.length ? special[i] : (rng.next() - 0.5) * 2 ** (60 * rng.next() - 30),
  );
  return dtype === 'f16' ? Array.from(roundToF16(values)) : Array.from(values, Math.fround);
}

const same = (actual: ArrayLike<number>, expected: number[], label: string) => {
  const bad = expected.findIndex(
    (e, i) => !Object.is(e, actual[i]) && !(Number.isNaN(e) && Number.isNaN(actual[i])),
  );
  expect(bad, `${label}: at [${bad}] got ${actual[bad]} expected ${expected[bad]}`).toBe(-1);
};

describe('cast', () => {
  const types: DType[] = ['f32', 'f16', 'i32', 'u32'];
  for (const from of types) {
    for (const to of types) {
      it(`converts ${from} to ${to}`, async (context) => {
        if (from === 'f16' || to === 'f16') requireF16(context, device.hasF16);
        for (const shape of [[1], [7], [33, 5], [1000]]) {
          const n = shape.reduce((p, d) => p * d, 1);
          const values = valuesOf(from, n, n + from.length);
          const input = device.fromArray(values, shape, from);
          const out = cast(input, to);
          expect(out.dtype).toBe(to);
          expect(out.shape).toEqual(shape);
          expect(out.storage).not.toBe(input.storage);
          const result = await out.toArray();
          const expected = castReference(values, from, to);
          if (to === 'f32' && (from === 'i32' || from === 'u32')) {
            // WGSL leaves the rounding of integers above 2^24 to the driver: one ulp either way.
            expected.forEach((e, i) => {
              expect(Math.abs(result[i] - e), `${values[i]}`).toBeLessThanOrEqual(Math.abs(e) * 2 ** -23);
            });
            same(
              result.filter((_, i) => Math.abs(values[i]) <= 2 ** 24),
              expected.filter((_, i) => Math.abs(values[i]) <= 2 ** 24),
              `${from}->${to}`,
            );
          } else {
            same(result, expected, `${from}->${to} ${JSON.stringify(shape)}`);
          }
          input.dispose();
          out.dispose();
        }
      });
    }
  }

  it('converts chunk by chunk when the chunks of the two dtypes do not line up', async () => {
    const small = await createDevice({ maxBindingBytes: 4096 });
    // Rows of 7: f32 chunks hold 146 rows, f16 chunks 292, i32 146; offsets differ between dtypes.
    const shape = [400, 7];
    const values = valuesOf('f32', 2800, 3).map((v) => (Number.isFinite(v) ? v % 1e5 : v));
    const input = small.fromArray(values, shape, 'f32');
    for (const to of ['f16', 'i32'] as DType[]) {
      if (to === 'f16' && !f16Usable(small.hasF16)) continue;
      const out = cast(input, to);
      expect(out.chunks.length).toBeGreaterThan(1);
      same(await out.toArray(), castReference(values, 'f32', to), `chunked f32->${to}`);
      if (to === 'f16') {
        const back = cast(out, 'f32');
        same(await back.toArray(), castReference(values, 'f32', 'f16'), 'chunked f16->f32');
      }
    }
    small.destroy();
  });

  it('spreads more than 65,535 workgroups over two grid dimensions', async () => {
    const n = 65_535 * device.tuning.elementwiseWorkgroup * device.tuning.elementwisePerInvocation + 999;
    const values = new Int32Array(n).map((_, i) => (i % 2001) - 1000);
    const out = await cast(device.fromArray(values, [n], 'i32'), 'f32').toArray();
    for (const i of [0, 1, n - 1, n - 999, n - 1000, 4_194_303]) expect(out[i]).toBe(values[i]);
  });

  it('rejects unknown dtypes', () => {
    expect(() => cast(device.fromArray([1], [1], 'f32'), 'f64' as DType)).toThrow(
      /cast: unknown dtype 'f64'/,
    );
  });
});

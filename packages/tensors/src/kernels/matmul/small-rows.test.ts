import { expectClose, f16Usable, Rng, requireF16 } from '@webtune/test-utils';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device, KernelLaunch } from '../../device/device.js';
import { roundToF16 } from '../../tensor/dtype.js';
import { sizeOf } from '../../tensor/shape.js';
import { type MatmulOptions, matmul } from './matmul.js';
import { matmulReference } from './reference.js';

// The small-M path of matmul (decoding: a few rows against a weight), against the float64
// reference. Every case also checks that the small-M kernel ran, from the pipeline keys.

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** Records the pipeline keys `on` dispatches while `fn` runs. */
async function keysOf<T>(on: Device, fn: () => Promise<T>): Promise<{ result: T; keys: string[] }> {
  const keys: string[] = [];
  const original = on.dispatch.bind(on);
  const spy = vi.spyOn(on, 'dispatch').mockImplementation((launch: KernelLaunch) => {
    keys.push(launch.key);
    original(launch);
  });
  try {
    return { result: await fn(), keys };
  } finally {
    spy.mockRestore();
  }
}

interface Case {
  a: number[];
  b: number[];
  transposeB: boolean;
  bias?: boolean;
  /** Adds a residual of the output's shape (the fused epilogue on the small-M path). */
  residual?: boolean;
}

/** Runs one product on `on`, compares it with the reference and returns the kernels it used. */
async function check(
  on: Device,
  testCase: Case,
  seed: number,
  dtype: 'f32' | 'f16' = 'f32',
): Promise<string[]> {
  const rng = new Rng(seed);
  const round = (data: Float32Array) => (dtype === 'f16' ? roundToF16(data) : data);
  const aData = round(rng.uniform(sizeOf(testCase.a)));
  const bData = round(rng.uniform(sizeOf(testCase.b)));
  const { transposeB } = testCase;
  const n = transposeB ? testCase.b[testCase.b.length - 2] : testCase.b[testCase.b.length - 1];
  const biasData = testCase.bias ? round(rng.uniform(n)) : undefined;
  const expected = matmulReference(aData, testCase.a, bData, testCase.b, { transposeB, bias: biasData });
  const residualData = testCase.residual ? round(rng.uniform(expected.data.length)) : undefined;
  if (residualData) expected.data = expected.data.map((value, i) => value + residualData[i]);
  const tolerance = dtype === 'f16' ? 2e-3 : 2e-5;
  const { keys } = await keysOf(on, () =>
    on.scope(async () => {
      const options: MatmulOptions = { transposeB };
      if (biasData) options.bias = on.fromArray(biasData, [n], dtype);
      if (residualData) options.residual = on.fromArray(residualData, expected.shape, dtype);
      const out = matmul(
        on.fromArray(aData, testCase.a, dtype),
        on.fromArray(bData, testCase.b, dtype),
        options,
      );
      expect(out.shape).toEqual(expected.shape);
      const want = dtype === 'f16' ? roundToF16(expected.data) : expected.data;
      expectClose(await out.toArray(), want, {
        rtol: tolerance,
        atol: tolerance,
        label: JSON.stringify(testCase),
      });
    }),
  );
  return keys;
}

const usedSmall = (keys: string[]) => keys.some((key) => key.startsWith('matmul:small:'));

describe('matmul with a few rows (small-M kernel)', () => {
  it('multiplies 1 and 2 rows by a weight [N, K] and by b [K, N]', async () => {
    // [M, K, N, transposeB, bias]: K % 4 == 0 reads vec4 along K, odd K one value at a time;
    // N % 4 == 0 reads b [K, N] as vec4 along N. The a batch [1, M] folds into M.
    const cases: [number, number, number, boolean, boolean][] = [
      [1, 36, 41, true, true],
      [1, 17, 33, true, false],
      [1, 36, 41, false, false],
      [1, 36, 44, false, true],
      [1, 17, 44, false, false],
      [1, 17, 33, false, false],
      [2, 36, 44, true, true],
      [2, 36, 44, false, false],
    ];
    let seed = 100;
    for (const [m, k, n, transposeB, bias] of cases) {
      const keys = await check(
        device,
        { a: [1, m, k], b: transposeB ? [n, k] : [k, n], transposeB, bias },
        seed++,
      );
      expect(usedSmall(keys), `${m}x${k}x${n} transposeB ${transposeB}: ${keys}`).toBe(true);
      // The operands are read in place: no packing pass.
      expect(keys).toHaveLength(1);
    }
  });

  it('adds a residual in the epilogue, in the same one launch', async () => {
    const cases: Case[] = [
      { a: [1, 1, 36], b: [41, 36], transposeB: true, bias: true, residual: true },
      { a: [1, 17], b: [33, 17], transposeB: true, residual: true },
      { a: [2, 36], b: [36, 44], transposeB: false, residual: true },
      { a: [1, 17], b: [17, 7], transposeB: false, bias: true, residual: true },
    ];
    for (const [i, testCase] of cases.entries()) {
      const keys = await check(device, testCase, 120 + i);
      expect(keys, JSON.stringify(testCase)).toHaveLength(1);
      expect(keys[0]).toMatch(/^matmul:small:.*:residual:/);
    }
    if (f16Usable(device.hasF16)) {
      const keys = await check(
        device,
        { a: [1, 40], b: [33, 40], transposeB: true, residual: true },
        125,
        'f16',
      );
      expect(keys).toHaveLength(1);
    }
  });

  it('fuses the residual into the tiled kernel too, and adds it after a chunked output', async () => {
    const rows = device.tuning.matmulSmallRowsMax + 1;
    const keys = await check(device, { a: [rows, 36], b: [41, 36], transposeB: true, residual: true }, 130);
    expect(usedSmall(keys)).toBe(false);
    expect(keys.some((key) => key.startsWith('binary'))).toBe(false);
    expect(keys.filter((key) => key.startsWith('matmul:') && key.endsWith(':res'))).toHaveLength(1);
    const small = await createDevice({ maxBindingBytes: 4096, tuning: { matmulSmallRowsMax: 4 } });
    try {
      // Output [3, 400] (4,800 bytes) in two chunks: the residual goes in with an add.
      await check(small, { a: [3, 17], b: [400, 17], transposeB: true, bias: true, residual: true }, 131);
      // A weight in chunks, output in one binding: fused per column block.
      const fused = await check(small, { a: [1, 36], b: [100, 36], transposeB: true, residual: true }, 132);
      expect(fused.filter((key) => key.includes(':residual:'))).toHaveLength(4);
    } finally {
      small.destroy();
    }
  });

  it('rejects a residual of another shape or dtype', () => {
    device.scope(() => {
      const a = device.fromArray(new Float32Array(4), [1, 4], 'f32');
      const b = device.fromArray(new Float32Array(12), [3, 4], 'f32');
      expect(() =>
        matmul(a, b, { transposeB: true, residual: device.fromArray(new Float32Array(4), [1, 4], 'f32') }),
      ).toThrow(/residual must be f32\[1, 3\]/);
    });
  });

  it('takes up to 8 rows where the tuning says so (GPUs)', async () => {
    // Four columns per workgroup keep the 8 x 4 accumulators (and lavapipe's compile time) small.
    const other = await createDevice({ tuning: { matmulSmallRowsMax: 8, matmulSmallRowsCols: 4 } });
    try {
      const cases: Case[] = [
        { a: [3, 17], b: [33, 17], transposeB: true, bias: true },
        { a: [5, 36], b: [41, 36], transposeB: true, bias: true },
        { a: [5, 17], b: [17, 33], transposeB: false },
      ];
      for (const [i, testCase] of cases.entries()) {
        const keys = await check(other, testCase, 110 + i);
        expect(usedSmall(keys), JSON.stringify(testCase)).toBe(true);
      }
    } finally {
      other.destroy();
    }
  });

  it('leaves products with more rows to the tiled kernel', async () => {
    const rows = device.tuning.matmulSmallRowsMax + 1;
    const keys = await check(device, { a: [rows, 36], b: [41, 36], transposeB: true }, 7);
    expect(usedSmall(keys)).toBe(false);
  });

  it('runs chunk by chunk over a chunked weight and into a chunked output', async () => {
    // 4 KiB bindings: b [100, 36] f32 (14,400 bytes) splits in 4 chunks of 28 rows, at column
    // offsets that are not multiples of the kernel's column block.
    const small = await createDevice({ maxBindingBytes: 4096, tuning: { matmulSmallRowsMax: 4 } });
    try {
      for (const m of [1, 2]) {
        const keys = await check(small, { a: [m, 36], b: [100, 36], transposeB: true, bias: true }, 20 + m);
        expect(keys.filter((key) => key.startsWith('matmul:small:'))).toHaveLength(4);
      }
      // The output [3, 400] (4,800 bytes) in chunks of 2 rows, b [400, 17] in chunks of 60 rows.
      const keys = await check(small, { a: [3, 17], b: [400, 17], transposeB: true, bias: true }, 23);
      expect(keys.filter((key) => key.startsWith('matmul:small:'))).toHaveLength(2 * 7);
      // b [3, 300] in one binding, the output [4, 300] (4,800 bytes) in two.
      const plain = await check(small, { a: [4, 3], b: [3, 300], transposeB: false }, 24);
      expect(plain.filter((key) => key.startsWith('matmul:small:'))).toHaveLength(2);
    } finally {
      small.destroy();
    }
  });

  it('reduces in workgroup memory where a subgroup may not hold the workgroup', async () => {
    // 128 lanes: more than any subgroupMinSize.
    const other = await createDevice({ tuning: { matmulSmallRowsLanes: 128, matmulSmallRowsCols: 4 } });
    try {
      for (const transposeB of [true, false]) {
        const keys = await check(
          other,
          { a: [1, 600], b: transposeB ? [37, 600] : [600, 37], transposeB, bias: true },
          30,
        );
        expect(keys.some((key) => key.startsWith('matmul:small:') && key.includes(':wg:'))).toBe(true);
      }
    } finally {
      other.destroy();
    }
  });

  it('computes f16 in f32 and rounds the result', async (context) => {
    requireF16(context, device.hasF16);
    const keys = await check(device, { a: [1, 40], b: [33, 40], transposeB: true, bias: true }, 40, 'f16');
    expect(usedSmall(keys)).toBe(true);
  });

  it('spreads more than 65,535 workgroups over two grid dimensions', async () => {
    const k = 4;
    const n = 65_535 * device.tuning.matmulSmallRowsCols + 37;
    const aData = new Float32Array([1, -2, 3, 0.5]);
    const bData = new Float32Array(n * k).map((_, i) => (i % 11) - 5);
    const out = await device.scope(() =>
      matmul(device.fromArray(aData, [1, k], 'f32'), device.fromArray(bData, [n, k], 'f32'), {
        transposeB: true,
      }).toArray(),
    );
    for (const col of [0, 1, 65_535 * device.tuning.matmulSmallRowsCols, n - 2, n - 1]) {
      let sum = 0;
      for (let i = 0; i < k; i++) sum += aData[i] * bData[col * k + i];
      expect(out[col]).toBe(sum);
    }
  });
});

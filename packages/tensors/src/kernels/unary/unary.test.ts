import { expectClose, Rng, requireF16 } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { roundToF16 } from '../../tensor/dtype.js';
import { erf, erfc, unaryReference } from './reference.js';
import { UNARY_OPS, type UnaryOp, unary } from './unary.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});

/** Inputs per op: inside its domain, wide enough to reach every branch of the WGSL helpers. */
const RANGES: Partial<Record<UnaryOp, [number, number]>> = {
  exp: [-20, 20],
  log: [1e-3, 100],
  sqrt: [1e-3, 100],
  rsqrt: [1e-3, 100],
  reciprocal: [0.01, 100],
  sin: [-Math.PI, Math.PI],
  cos: [-Math.PI, Math.PI],
  erf: [-6, 6],
  'gelu-erf': [-8, 8],
};

/** f32 kernels against float64: a few ulp, more where the driver's exp error grows with |x|. */
const TOLERANCE: Partial<Record<UnaryOp, { rtol: number; atol: number }>> = {
  exp: { rtol: 4e-6, atol: 0 },
  log: { rtol: 1e-6, atol: 1e-7 },
  sin: { rtol: 1e-6, atol: 1e-7 },
  cos: { rtol: 1e-6, atol: 1e-7 },
  silu: { rtol: 3e-6, atol: 1e-7 },
  gelu: { rtol: 3e-6, atol: 1e-7 },
  'gelu-erf': { rtol: 3e-6, atol: 1e-7 },
  sigmoid: { rtol: 3e-6, atol: 0 },
};

const SHAPES = [[1], [7], [33, 5], [1000], [4, 7, 36]];

describe('unary', () => {
  for (const shape of SHAPES) {
    it(`matches the float64 reference for every op at ${JSON.stringify(shape)}`, async () => {
      const n = shape.reduce((p, d) => p * d, 1);
      for (const [k, op] of UNARY_OPS.entries()) {
        const [low, high] = RANGES[op] ?? [-12, 12];
        const x = new Rng(17 * n + k).uniform(n, low, high);
        const tolerance = TOLERANCE[op] ?? { rtol: 1e-6, atol: 1e-7 };
        await device.scope(async () => {
          const out = unary(op, device.fromArray(x, shape, 'f32'), -0.37);
          expect(out.shape).toEqual(shape);
          expect(out.dtype).toBe('f32');
          expectClose(await out.toArray(), unaryReference(op, x, -0.37), { ...tolerance, label: op });
        });
      }
    });
  }

  it('keeps relative accuracy near zero and saturates without NaN at huge inputs', async () => {
    const small = Float32Array.from({ length: 400 }, (_, i) => (i - 200) * 2.5e-3 + 1e-4);
    for (const op of ['tanh', 'erf', 'sigmoid', 'silu', 'gelu', 'gelu-erf'] as UnaryOp[]) {
      const out = await unary(op, device.fromArray(small, [400], 'f32')).toArray();
      expectClose(out, unaryReference(op, small), { rtol: 5e-7, atol: 0, label: op });
    }
    const huge = [-1e30, -1e4, -100, -30, -9, 9, 30, 100, 1e4, 1e30];
    for (const op of ['tanh', 'sigmoid', 'erf', 'silu', 'gelu', 'gelu-erf'] as UnaryOp[]) {
      const out = await unary(op, device.fromArray(huge, [huge.length], 'f32')).toArray();
      expectClose(out, unaryReference(op, huge), { rtol: 2e-5, atol: 1e-30, label: op });
    }
    const infinite = [-Infinity, Infinity];
    for (const op of ['tanh', 'sigmoid', 'erf'] as UnaryOp[]) {
      const out = await unary(op, device.fromArray(infinite, [2], 'f32')).toArray();
      expect(Array.from(out), op).toEqual([op === 'sigmoid' ? 0 : -1, 1]);
    }
  });

  it('has a float64 erf that matches tabulated values', () => {
    expect(erf(0.5)).toBeCloseTo(0.5204998778130465, 15);
    expect(erf(1)).toBeCloseTo(0.8427007929497149, 15);
    expect(erf(-2.5)).toBeCloseTo(-0.999593047982555, 15);
    expect(erfc(3) / 2.209049699858544e-5).toBeCloseTo(1, 12);
    expect(erfc(6) / 2.1519736712498913e-17).toBeCloseTo(1, 12);
    expect(erfc(-1)).toBeCloseTo(1.8427007929497148, 15);
  });

  it('runs neg, abs, square and relu on integer tensors and rejects float-only ops', async () => {
    const x = new Rng(4).integers(513, -1000, 1000);
    const signed = device.fromArray(x, [513], 'i32');
    for (const op of ['neg', 'abs', 'square', 'relu'] as UnaryOp[]) {
      const out = unary(op, signed);
      expect(out.dtype).toBe('i32');
      expect(Array.from(await out.toArray())).toEqual(Array.from(unaryReference(op, x)));
    }
    const unsigned = device.fromArray(Array.from(x, Math.abs), [513], 'u32');
    expect(Array.from(await unary('square', unsigned).toArray())).toEqual(Array.from(x, (v) => v * v));
    expect(() => unary('neg', unsigned)).toThrow(/neg.*u32/);
    expect(() => unary('exp', signed)).toThrow(/exp.*needs a float tensor/);
    expect(() => unary('scale', device.fromArray([1], [1], 'f32'), Number.NaN)).toThrow(/finite/);
  });

  it('computes f16 tensors in f32 and rounds the result', async (context) => {
    requireF16(context, device.hasF16);
    for (const n of [1000, 999]) {
      const x = roundToF16(new Rng(n).uniform(n, -4, 4));
      for (const op of ['gelu', 'exp', 'tanh', 'scale'] as UnaryOp[]) {
        const out = unary(op, device.fromArray(x, [n], 'f16'), 3);
        expect(out.dtype).toBe('f16');
        expectClose(await out.toArray(), roundToF16(unaryReference(op, x, 3)), {
          rtol: 1e-3,
          atol: 1e-4,
          label: `${op} f16 n=${n}`,
        });
      }
    }
  });

  it('works chunk by chunk on tensors larger than one binding', async () => {
    const small = await createDevice({ maxBindingBytes: 4096 });
    for (const shape of [
      [100, 36],
      [77, 33],
    ]) {
      const n = shape[0] * shape[1];
      const x = new Rng(n).uniform(n, -3, 3);
      const input = small.fromArray(x, shape, 'f32');
      expect(input.chunked).toBe(true);
      const out = unary('gelu-erf', input);
      expect(out.chunked).toBe(true);
      expectClose(await out.toArray(), unaryReference('gelu-erf', x), { rtol: 3e-6, atol: 1e-7 });
    }
    small.destroy();
  });

  it('spreads more than 65,535 workgroups over two grid dimensions', async () => {
    // Not a multiple of 4: one element per item, so this many items need over 65,535 workgroups.
    const perWorkgroup = device.tuning.elementwiseWorkgroup * device.tuning.elementwisePerInvocation;
    const n = 65_535 * perWorkgroup + 1001;
    const x = new Float32Array(n).map((_, i) => (i % 1013) - 500);
    const result = await unary('neg', device.fromArray(x, [n], 'f32')).toArray();
    for (const i of [0, n - 1, n - 1001, n - 1002, 65_535 * perWorkgroup - 1, 123_457]) {
      expect(result[i]).toBe(-x[i]);
    }
  });
});

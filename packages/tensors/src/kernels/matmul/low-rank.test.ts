import { expectClose, Rng } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { sizeOf } from '../../tensor/shape.js';
import { matmul } from './matmul.js';
import { matmulReference } from './reference.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});

interface LowRankCase {
  /** a [..., M, K] (or [K, M] with transposeA). */
  a: number[];
  /** b [K, N] or [N, K] with transposeB. */
  b: number[];
  r: number;
  transposeA?: boolean;
  transposeB?: boolean;
  alpha?: number;
  lowAlpha: number;
  bias?: boolean;
  residual?: boolean;
}

/**
 * alpha op(a) op(b) + lowAlpha L op(R) + bias + residual on `on` against float64 (the term as a
 * second reference product); returns the dispatches the product took.
 */
async function checkLowRank(on: Device, c: LowRankCase, seed: number): Promise<number> {
  const rng = new Rng(seed);
  const transposeB = c.transposeB ?? false;
  const aData = rng.uniform(sizeOf(c.a));
  const bData = rng.uniform(sizeOf(c.b));
  const main = { transposeA: c.transposeA, transposeB, alpha: c.alpha };
  const outShape = matmulReference(aData, c.a, bData, c.b, main).shape;
  const [M, N] = outShape.slice(-2);
  const lowShape = [...outShape.slice(0, -1), c.r];
  const rShape = transposeB ? [N, c.r] : [c.r, N];
  const lData = rng.uniform(sizeOf(lowShape));
  const rData = rng.uniform(sizeOf(rShape));
  const biasData = c.bias ? rng.uniform(N) : undefined;
  const residualData = c.residual ? rng.uniform(sizeOf(outShape)) : undefined;
  const first = matmulReference(aData, c.a, bData, c.b, { ...main, bias: biasData, residual: residualData });
  const expected = matmulReference(lData, [sizeOf(lowShape) / c.r, c.r], rData, rShape, {
    transposeB,
    alpha: c.lowAlpha,
    residual: first.data,
  });
  expect(M).toBeGreaterThan(0);
  return on.scope(async () => {
    const a = on.fromArray(aData, c.a, 'f32');
    const b = on.fromArray(bData, c.b, 'f32');
    const bias = biasData ? on.fromArray(biasData, [N], 'f32') : null;
    const residual = residualData ? on.fromArray(residualData, outShape, 'f32') : null;
    const lowRank = {
      a: on.fromArray(lData, lowShape, 'f32'),
      b: on.fromArray(rData, rShape, 'f32'),
      alpha: c.lowAlpha,
    };
    const before = on.stats.dispatches;
    const out = matmul(a, b, { ...main, bias, residual, lowRank });
    const dispatches = on.stats.dispatches - before;
    expect(out.shape).toEqual(outShape);
    expectClose(await out.toArray(), expected.data, { rtol: 2e-5, atol: 2e-5, label: JSON.stringify(c) });
    return dispatches;
  });
}

describe('matmul lowRank: a low-rank product added in the epilogue', () => {
  it("adds LoRA's s (x A^T) B^T onto x W^T (+ bias) in one dispatch, at odd sizes", async () => {
    // x [2, 13, 20] W [33, 20]^T + 2 (h [2, 13, 8]) B [33, 8]^T: the LoRA forward.
    expect(
      await checkLowRank(device, { a: [2, 13, 20], b: [33, 20], r: 8, transposeB: true, lowAlpha: 2 }, 1),
    ).toBe(1);
    expect(
      await checkLowRank(
        device,
        { a: [27, 64], b: [20, 64], r: 4, transposeB: true, lowAlpha: -0.5, bias: true },
        2,
      ),
    ).toBe(1);
    // Past the register tile in rows (24) and columns (32), with a residual and the product's alpha.
    expect(
      await checkLowRank(
        device,
        { a: [53, 36], b: [71, 36], r: 12, transposeB: true, alpha: 0.75, lowAlpha: 3, residual: true },
        3,
      ),
    ).toBe(1);
  });

  it('adds dh A onto dy W (b read along N) in one dispatch', async () => {
    // dy [2, 13, 36] W [36, 20] + dh [2, 13, 8] A [8, 20]: the LoRA input gradient.
    expect(await checkLowRank(device, { a: [2, 13, 36], b: [36, 20], r: 8, lowAlpha: 1 }, 4)).toBe(1);
    expect(
      await checkLowRank(device, { a: [41, 172], b: [172, 64], r: 8, lowAlpha: 1, residual: true }, 5),
    ).toBe(1);
  });

  it('falls back to a second product where the term cannot be fused, with the same result', async () => {
    // r not a multiple of 4; N not a multiple of 4 with R [r, N]; a transposed a; a batched b.
    expect(
      await checkLowRank(device, { a: [9, 20], b: [15, 20], r: 3, transposeB: true, lowAlpha: 2 }, 6),
    ).toBeGreaterThan(1);
    expect(
      await checkLowRank(device, { a: [9, 20], b: [20, 15], r: 8, lowAlpha: 2, bias: true }, 7),
    ).toBeGreaterThan(1);
    expect(
      await checkLowRank(device, { a: [20, 9], b: [20, 16], r: 4, transposeA: true, lowAlpha: 1 }, 8),
    ).toBeGreaterThan(1);
  });

  it('keeps the tiled kernels of the GPU tunings and adds the term as a second product', async () => {
    for (const matmulKernel of ['workgroup', 'subgroup'] as const) {
      const gpuLike = await createDevice({ tuning: { matmulKernel } });
      try {
        const cases: LowRankCase[] = [
          { a: [2, 13, 20], b: [33, 20], r: 8, transposeB: true, lowAlpha: 2, bias: true },
          { a: [30, 36], b: [36, 20], r: 8, lowAlpha: 1, residual: true },
        ];
        for (const [i, c] of cases.entries()) {
          gpuLike.startProfile();
          const dispatches = await checkLowRank(gpuLike, c, 9 + i);
          const profile = await gpuLike.stopProfile();
          expect(dispatches).toBeGreaterThan(1);
          expect(profile.keys.some((k) => k.name.includes('tiled'))).toBe(true);
        }
      } finally {
        gpuLike.destroy();
      }
    }
  });

  it('refuses a term of the wrong shape, naming it', () => {
    device.scope(() => {
      const x = device.fromArray(new Float32Array(12), [3, 4], 'f32');
      const w = device.fromArray(new Float32Array(20), [5, 4], 'f32');
      const h = device.fromArray(new Float32Array(6), [3, 2], 'f32');
      const bad = device.fromArray(new Float32Array(6), [3, 2], 'f32');
      expect(() => matmul(x, w, { transposeB: true, lowRank: { a: h, b: bad } })).toThrow(
        /lowRank b must be \[5, 2\]/,
      );
      expect(() => matmul(x, w, { transposeB: true, lowRank: { a: w, b: bad } })).toThrow(
        /lowRank a must be/,
      );
    });
  });
});

afterAll(() => device?.destroy());

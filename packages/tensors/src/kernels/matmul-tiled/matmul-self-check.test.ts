import { requireF16 } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import type { Tensor } from '../../tensor/tensor.js';
import { matmul } from '../matmul/matmul.js';
import {
  type CandidateMatmul,
  type CandidateOptions,
  selfCheckMatmul,
  selfCheckProducts,
} from './matmul-self-check.js';
import type { MatmulSelection } from './select-variant.js';
import { tiledProduct } from './subgroup-matrix-check.js';

// The self-check is what stands between a kernel that never ran here (subgroup matrices) and a
// user's numbers, so it is tested on kernels lavapipe does run: right ones must pass, and broken
// ones (an edge element off, the K tail dropped, tf32-like inputs) must fail with the reason.
let device: Device;
beforeAll(async () => {
  device = await createDevice({ tuning: { matmulKernel: 'workgroup' } });
});
afterAll(() => device?.destroy());

const workgroupTiled: MatmulSelection = {
  variant: 'workgroup-tiled',
  lanes: 0,
  rows: 0,
  perThread: 4,
  reason: '',
};
const subgroupTiled: MatmulSelection = {
  variant: 'subgroup-tiled',
  lanes: 8,
  rows: 8,
  perThread: 4,
  reason: '',
};
const workgroupTile = { rows: 64, cols: 64, depth: 16 };
const right = (a: Tensor, b: Tensor, options: CandidateOptions): Tensor =>
  tiledProduct(a, b, options, workgroupTiled);

/** Runs the right kernel, then changes the output on the host: the broken variants' results. */
function broken(edit: (out: Float32Array, shape: readonly number[]) => void): CandidateMatmul {
  return async (a, b, options) => {
    const out = right(a, b, options);
    const data = Float32Array.from(await out.toArray());
    edit(data, out.shape);
    return a.device.fromArray(data, out.shape, out.dtype);
  };
}

/** Runs the right kernel on altered inputs. */
function alteredInputs(
  edit: (a: Float32Array, shape: readonly number[], transposed: boolean) => void,
): CandidateMatmul {
  return async (a, b, options) => {
    const data = Float32Array.from(await a.toArray());
    edit(data, a.shape, options.transposeA);
    return right(a.device.fromArray(data, a.shape, a.dtype), b, options);
  };
}

describe('selfCheckProducts', () => {
  it('puts every axis short of a tile, whole, and across two tiles, with both transposes, a batch and a bias', () => {
    const tile = { rows: 32, cols: 16, depth: 16 };
    const products = selfCheckProducts(tile);
    const dims = products.map((p) => {
      const [aRows, aCols] = p.a.slice(-2);
      const [bRows, bCols] = p.b.slice(-2);
      return {
        M: p.transposeA ? aCols : aRows,
        K: p.transposeA ? aRows : aCols,
        N: p.transposeB ? bRows : bCols,
      };
    });
    for (const [axis, size] of [
      ['M', tile.rows],
      ['N', tile.cols],
      ['K', tile.depth],
    ] as const) {
      const extents = dims.map((d) => d[axis]);
      expect(
        extents.some((e) => e < size),
        `${axis} short of one tile`,
      ).toBe(true);
      expect(
        extents.some((e) => e % size === 0),
        `${axis} whole tiles`,
      ).toBe(true);
      expect(
        extents.some((e) => e > size && e % size !== 0),
        `${axis} a partial second tile`,
      ).toBe(true);
    }
    expect(dims.some((d) => d.K % 4 !== 0)).toBe(true);
    expect(products.some((p) => p.transposeA)).toBe(true);
    expect(products.some((p) => p.transposeB)).toBe(true);
    expect(products.some((p) => p.bias)).toBe(true);
    expect(products.some((p) => p.a.length === 3 && p.b.length === 3)).toBe(true);
  });
});

describe('selfCheckMatmul on lavapipe', () => {
  it('accepts the workgroup-tiled and subgroup-tiled kernels, f32 and f16', async () => {
    const f32 = await selfCheckMatmul(device, right, 'f32', workgroupTile);
    expect(f32).toEqual({ passed: true, reason: expect.stringContaining('match the float64 reference') });
    const subgroup = await selfCheckMatmul(
      device,
      (a, b, options) => tiledProduct(a, b, options, subgroupTiled),
      'f32',
      { rows: 8, cols: 32, depth: 4 },
    );
    expect(subgroup.passed).toBe(true);
  });

  it('accepts the workgroup-tiled kernel in f16', async (context) => {
    requireF16(context, device.hasF16);
    expect((await selfCheckMatmul(device, right, 'f16', workgroupTile)).passed).toBe(true);
  });

  it('rejects a kernel whose last edge element is off by 1e-3, naming the element', async () => {
    const outcome = await selfCheckMatmul(
      device,
      broken((out) => {
        out[out.length - 1] += 1e-3;
      }),
      'f32',
      workgroupTile,
    );
    expect(outcome.passed).toBe(false);
    expect(outcome.reason).toMatch(/^product 1 of 4 \(f32 \[65, 19\] x \[19, 127\] bias\): element 8254 is /);
  });

  it('rejects a kernel that drops the K tail (the last k when K % 4 != 0)', async () => {
    const outcome = await selfCheckMatmul(
      device,
      alteredInputs((a, shape, transposed) => {
        const [rows, cols] = shape.slice(-2);
        const k = transposed ? rows : cols;
        if (k % 4 === 0) return;
        for (let i = 0; i < a.length; i++) {
          const kIndex = transposed ? Math.floor(i / cols) % rows : i % cols;
          if (kIndex === k - 1) a[i] = 0;
        }
      }),
      'f32',
      workgroupTile,
    );
    expect(outcome.passed).toBe(false);
    expect(outcome.reason).toContain('product 1 of 4');
  });

  it('rejects f32 products computed from tf32-rounded inputs (10-bit mantissas)', async () => {
    const tf32 = (x: number) => {
      const bits = new Uint32Array(Float32Array.of(x).buffer);
      bits[0] = (bits[0] + 0x1000) & 0xffffe000;
      return new Float32Array(bits.buffer)[0];
    };
    const outcome = await selfCheckMatmul(
      device,
      alteredInputs((a) => {
        for (let i = 0; i < a.length; i++) a[i] = tf32(a[i]);
      }),
      'f32',
      workgroupTile,
    );
    expect(outcome.passed).toBe(false);
  });

  it('rejects a kernel that fails to run, and leaves the device usable', async () => {
    const outcome = await selfCheckMatmul(
      device,
      () => {
        throw new Error('no such pipeline');
      },
      'f32',
      workgroupTile,
    );
    expect(outcome).toEqual({
      passed: false,
      reason: expect.stringContaining('failed to run: no such pipeline'),
    });
    const out = matmul(
      device.fromArray([1, 2, 3, 4], [2, 2], 'f32'),
      device.fromArray([1, 0, 0, 1], [2, 2], 'f32'),
    );
    expect(Array.from(await out.toArray())).toEqual([1, 2, 3, 4]);
  });
});

import { Rng } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { expectKernel } from '../../testing/expect-kernel.js';
import { decodeRows, encodeRows } from '../packed-matmul/formats.js';
import { packedWeightFromBytes } from '../packed-matmul/packed-weight.js';
import type { DecodeEpilogue } from './decode-matvec.js';
import { prefillProduct } from './prefill-product.js';
import { forEachPrefillTile } from './prefill-tile-sweep.js';
import { normMatvecReference } from './reference.js';

let device: Device;
/** The GPU classes' register tile (4 x 4, 16 lanes here) without subgroup loads. */
let gpuLike: Device;
beforeAll(async () => {
  device = await createDevice();
  gpuLike = await createDevice({
    tuning: {
      matmulSubgroups: false,
      matmulTileRows: 4,
      matmulTileCols: 4,
      matmulWorkgroup: 16,
      prefillSubgroups: false,
      prefillTileRows: [4],
      prefillStoreCols: 4,
      prefillResidualCols: 4,
      prefillGatedCols: 2,
      prefillWorkgroup: 16,
    },
  });
});
afterAll(() => gpuLike?.destroy());

const tolerance = { rtol: 3e-5, atol: 3e-5 };

interface Case {
  rows: number;
  K: number;
  widths: number[];
  epilogue: DecodeEpilogue;
  norm?: boolean;
  bias?: boolean;
  /** LoRA rank per weight (0: none). */
  ranks?: number[];
  format?: 'f32' | 'f16' | 'bf16';
  seed: number;
}

/** Runs prefillProduct on a random case and checks it against the float64 reference of decodeMatvec's contract. */
async function check(on: Device, c: Case): Promise<void> {
  const rng = new Rng(c.seed);
  const { rows, K, widths, epilogue } = c;
  const format = c.format ?? 'f32';
  const x = rng.uniform(rows * K, -2, 2);
  const gain = rng.uniform(K, 0.5, 1.5);
  const norm = c.norm ? { weight: gain, eps: 1e-5 } : null;
  const weights = widths.map((n) => {
    const values = rng.uniform(n * K, -1, 1);
    if (format === 'f32') return { tensor: on.fromArray(values, [n, K], 'f32'), values };
    const bytes = encodeRows(values, n, K, format);
    return {
      tensor: packedWeightFromBytes(on, format, [n, K], bytes),
      values: decodeRows(bytes, n, K, format),
    };
  });
  const biases = c.bias ? widths.map((n) => rng.uniform(n, -1, 1)) : null;
  const ranks = c.ranks ?? widths.map(() => 0);
  const offsets: number[] = [];
  let uWidth = 0;
  for (const rank of ranks) {
    offsets.push(uWidth);
    uWidth += rank;
  }
  const u = rng.uniform(rows * Math.max(1, uWidth), -1, 1);
  const bs = widths.map((n, i) => rng.uniform(n * Math.max(1, ranks[i]), -1, 1));
  const scales = ranks.map((_, i) => 0.5 + i);
  const width = epilogue === 'store' ? widths.reduce((a, b) => a + b, 0) : widths[0];
  const residual = rng.uniform(rows * width, -1, 1);
  const out =
    epilogue === 'residual' ? on.fromArray(residual, [rows, width], 'f32') : on.empty([rows, width], 'f32');
  prefillProduct(on, {
    x: on.fromArray(x, [rows, K], 'f32'),
    weights: weights.map((w) => w.tensor),
    biases: biases ? biases.map((b) => on.fromArray(b, [b.length], 'f32')) : null,
    norm: norm ? { weight: on.fromArray(gain, [K], 'f32'), eps: norm.eps } : null,
    epilogue,
    out,
    lowRank:
      uWidth > 0
        ? {
            u: on.fromArray(u, [rows, uWidth], 'f32'),
            terms: ranks.map((rank, i) =>
              rank
                ? { b: on.fromArray(bs[i], [widths[i], rank], 'f32'), offset: offsets[i], scale: scales[i] }
                : null,
            ),
          }
        : null,
  });
  // Each weight's outputs: product + LoRA term + bias.
  const sums = weights.map((w, i) => {
    const product = normMatvecReference(x, rows, K, norm, w.values, widths[i]);
    return product.map((value, at) => {
      const r = Math.floor(at / widths[i]);
      const col = at % widths[i];
      let low = 0;
      for (let t = 0; t < ranks[i]; t++) low += u[r * uWidth + offsets[i] + t] * bs[i][col * ranks[i] + t];
      return value + scales[i] * low + (biases ? biases[i][col] : 0);
    });
  });
  const expected = new Float64Array(rows * width);
  for (let r = 0; r < rows; r++) {
    if (epilogue === 'store') {
      let offset = 0;
      sums.forEach((part, i) => {
        expected.set(part.subarray(r * widths[i], (r + 1) * widths[i]), r * width + offset);
        offset += widths[i];
      });
    } else {
      for (let col = 0; col < width; col++) {
        const at = r * width + col;
        const gate = sums[0][at];
        expected[at] =
          epilogue === 'residual' ? gate + residual[at] : (gate / (1 + Math.exp(-gate))) * sums[1][at];
      }
    }
  }
  await expectKernel(`${epilogue} ${format} rows ${rows}`, { out: { actual: out, expected } }, tolerance);
}

describe('prefillProduct', () => {
  it('norm + q/k/v side by side with biases: odd sizes, partial row tiles and column blocks (lavapipe tuning and a GPU-like one)', async () => {
    for (const on of [device, gpuLike]) {
      await check(on, {
        rows: 53,
        K: 36,
        widths: [37, 13, 13],
        epilogue: 'store',
        norm: true,
        bias: true,
        seed: 1,
      });
      await check(on, { rows: 3, K: 20, widths: [9, 5, 5], epilogue: 'store', norm: true, seed: 2 });
    }
  });

  it('SwiGLU (norm, gate and up) and residual (o_proj, down_proj) epilogues', async () => {
    for (const on of [device, gpuLike]) {
      await check(on, { rows: 29, K: 20, widths: [19, 19], epilogue: 'swiglu', norm: true, seed: 3 });
      await check(on, { rows: 30, K: 24, widths: [21], epilogue: 'residual', bias: true, seed: 4 });
    }
  });

  it('adds LoRA terms scale * B u to the weights that have one (q and v of three; gate and up in SwiGLU)', async () => {
    for (const on of [device, gpuLike]) {
      await check(on, {
        rows: 19,
        K: 16,
        widths: [12, 8, 8],
        epilogue: 'store',
        norm: true,
        ranks: [3, 0, 2],
        seed: 5,
      });
      await check(on, {
        rows: 17,
        K: 28,
        widths: [11, 11],
        epilogue: 'swiglu',
        norm: true,
        ranks: [2, 4],
        seed: 6,
      });
      await check(on, { rows: 9, K: 12, widths: [7], epilogue: 'residual', ranks: [5], seed: 7 });
    }
  });

  it('reads f16 and bf16 packed weights in place: norm + q/k/v, SwiGLU', async () => {
    for (const format of ['f16', 'bf16'] as const) {
      await check(device, {
        rows: 27,
        K: 44,
        widths: [12, 8, 8],
        epilogue: 'store',
        norm: true,
        format,
        seed: 8,
      });
      await check(device, {
        rows: 10,
        K: 12,
        widths: [10, 10],
        epilogue: 'swiglu',
        norm: true,
        format,
        seed: 9,
      });
    }
  });

  it('every tile the lavapipe prefill tuning can choose (each candidate height, the columns of each kind, both workgroup orders) at odd sizes', async () => {
    await forEachPrefillTile(device, async (on, height, index) => {
      // Rows: two full tiles and a partial one; widths: a partial column block.
      const rows = 2 * height + 5;
      await check(on, {
        rows,
        K: 28,
        widths: [37, 13, 13],
        epilogue: 'store',
        norm: true,
        bias: true,
        seed: 20 + index,
      });
      await check(on, {
        rows,
        K: 20,
        widths: [35, 35],
        epilogue: 'swiglu',
        norm: true,
        ranks: [2, 0],
        seed: 30 + index,
      });
      await check(on, {
        rows: height - 3,
        K: 44,
        widths: [21],
        epilogue: 'residual',
        format: 'f16',
        seed: 40 + index,
      });
    });
  });

  it("the tile height and the workgroup order change no bit of the products (each output's sum over K keeps its order)", async () => {
    const old = await createDevice({
      tuning: { prefillTileRows: [24], prefillRowsSlack: 0, prefillRowTilesInner: false },
    });
    try {
      const rng = new Rng(50);
      const rows = 45;
      const K = 36;
      const x = rng.uniform(rows * K, -2, 2);
      const gain = rng.uniform(K, 0.5, 1.5);
      const gate = rng.uniform(19 * K, -1, 1);
      const up = rng.uniform(19 * K, -1, 1);
      const results: Float32Array[] = [];
      for (const on of [device, old]) {
        const out = on.empty([rows, 19], 'f32');
        prefillProduct(on, {
          x: on.fromArray(x, [rows, K], 'f32'),
          weights: [on.fromArray(gate, [19, K], 'f32'), on.fromArray(up, [19, K], 'f32')],
          norm: { weight: on.fromArray(gain, [K], 'f32'), eps: 1e-5 },
          epilogue: 'swiglu',
          out,
        });
        results.push(await out.toArray());
      }
      expect(Array.from(results[0])).toEqual(Array.from(results[1]));
    } finally {
      old.destroy();
    }
  });

  it('rejects K not a multiple of 4, a wrong output shape and a SwiGLU of one weight of odd rows (not a stacked gate/up)', () => {
    const x = device.empty([4, 6], 'f32');
    const w = device.empty([3, 6], 'f32');
    expect(() =>
      prefillProduct(device, { x, weights: [w], epilogue: 'store', out: device.empty([4, 3], 'f32') }),
    ).toThrow(/K % 4 == 0/);
    const x4 = device.empty([4, 8], 'f32');
    const w4 = device.empty([3, 8], 'f32');
    expect(() =>
      prefillProduct(device, { x: x4, weights: [w4], epilogue: 'store', out: device.empty([4, 2], 'f32') }),
    ).toThrow(/is not \[4, 3\] f32/);
    expect(() =>
      prefillProduct(device, { x: x4, weights: [w4], epilogue: 'swiglu', out: device.empty([4, 3], 'f32') }),
    ).toThrow(/stacked gate\/up weight needs an even row count/);
  });
});

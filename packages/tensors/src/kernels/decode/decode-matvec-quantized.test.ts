import { Rng } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { f32ToF16Bits } from '../../tensor/dtype.js';
import { expectKernel } from '../../testing/expect-kernel.js';
import { decodeRows, encodeRows, type PackedFormat } from '../packed-matmul/formats.js';
import { type PackedWeight, packedWeightFromBytes } from '../packed-matmul/packed-weight.js';
import { decodeMatvec } from './decode-matvec.js';
import { normMatvecReference } from './reference.js';

/*
 * decodeMatvec over ggml-quantized weights (Q8_0, Q4_0, Q4_K), decoded in the kernel by the packed
 * matmul's shared decoders, against float64 products of the same dequantized values (decodeRows).
 * K is a whole number of blocks (the formats store nothing else): an odd count of them here.
 */

let device: Device;
let gpuLike: Device;
beforeAll(async () => {
  device = await createDevice();
  gpuLike = await createDevice({ tuning: { matmulSmallRowsLanes: 32, matmulSmallRowsCols: 4 } });
});
afterAll(() => {
  gpuLike?.destroy();
});

const FORMATS = ['q8_0', 'q4_0', 'q4_k'] as const;

/** Random Q4_K super-blocks: d and dmin f16 in [0, 1/64), random 6-bit scales, mins, nibbles. */
function randomQ4K(rows: number, cols: number, rng: Rng): Uint8Array {
  const bytes = Uint8Array.from(rng.uniform(rows * (cols / 256) * 144, 0, 256), Math.floor);
  for (let o = 0; o < bytes.length; o += 144) {
    for (const at of [o, o + 2]) {
      const bits = f32ToF16Bits(rng.next() / 64);
      bytes[at] = bits & 255;
      bytes[at + 1] = bits >> 8;
    }
  }
  return bytes;
}

/** A random quantized weight [n, K] on `on` and its dequantized values (what the kernel must use). */
function quantized(on: Device, format: PackedFormat, n: number, K: number, rng: Rng) {
  const bytes =
    format === 'q4_k' ? randomQ4K(n, K, rng) : encodeRows(rng.uniform(n * K, -1, 1), n, K, format);
  return {
    weight: packedWeightFromBytes(on, format, [n, K], bytes),
    values: decodeRows(bytes, n, K, format),
  };
}

/** f32 accumulation: the error scales with the sum of |terms| (2e-7 of the largest, as packed-tiled's tests). */
function toleranceOf(x: ArrayLike<number>, rows: number, K: number, weights: Float64Array[], gain?: number) {
  let largest = 0;
  for (const w of weights) {
    const n = w.length / K;
    for (let r = 0; r < rows; r++) {
      for (let o = 0; o < n; o++) {
        let sum = 0;
        for (let i = 0; i < K; i++) sum += Math.abs(x[r * K + i] * w[o * K + i]);
        largest = Math.max(largest, sum * (gain ?? 1));
      }
    }
  }
  return { rtol: 1e-5, atol: Math.max(2e-5, 1e-6 * largest) };
}

const Ks: Record<(typeof FORMATS)[number], number> = { q8_0: 96, q4_0: 160, q4_k: 768 };

describe('decodeMatvec over ggml-quantized weights', () => {
  for (const format of FORMATS) {
    // (Rows 1 and 3 on the software tuning, 2 on a GPU one: each case compiles its own shader.)
    it(`${format}: norm + q/k/v side by side (odd widths), rows 1 and 3, and a GPU tuning (32 lanes, 4 columns)`, async () => {
      for (const [on, rows] of [
        [device, 1],
        [device, 3],
        [gpuLike, 2],
      ] as const) {
        const rng = new Rng(rows * 31 + format.length);
        const K = Ks[format];
        const widths = [13, 5, 7];
        const x = rng.uniform(rows * K, -2, 2);
        const gain = rng.uniform(K, 0.5, 1.5);
        const norm = { weight: gain, eps: 1e-5 };
        const parts = widths.map((n) => quantized(on, format, n, K, rng));
        const width = widths.reduce((a, b) => a + b, 0);
        const out = on.empty([rows, width], 'f32');
        decodeMatvec(on, {
          x: on.fromArray(x, [rows, K], 'f32'),
          weights: parts.map((p) => p.weight),
          norm: { weight: on.fromArray(gain, [K], 'f32'), eps: 1e-5 },
          epilogue: 'store',
          out,
        });
        const products = parts.map((p, i) => normMatvecReference(x, rows, K, norm, p.values, widths[i]));
        const expected = new Float64Array(rows * width);
        for (let r = 0; r < rows; r++) {
          let offset = 0;
          products.forEach((part, i) => {
            expected.set(part.subarray(r * widths[i], (r + 1) * widths[i]), r * width + offset);
            offset += widths[i];
          });
        }
        // The normed rows have |a| up to about 3 * 1.5: the bound uses 5 as the gain.
        const tolerance = toleranceOf(
          x,
          rows,
          K,
          parts.map((p) => p.values),
          5,
        );
        await expectKernel(`${format} rows ${rows}`, { qkv: { actual: out, expected } }, tolerance);
        for (const p of parts) p.weight.dispose();
      }
    });

    it(`${format}: SwiGLU with LoRA on gate and up, and a residual product with bias`, async () => {
      const rng = new Rng(90 + format.length);
      const rows = 2;
      const K = Ks[format];
      const n = 11;
      const rank = 3;
      const x = rng.uniform(rows * K, -1, 1);
      const [gate, up] = [quantized(device, format, n, K, rng), quantized(device, format, n, K, rng)];
      const bs = [rng.uniform(n * rank, -1, 1), rng.uniform(n * rank, -1, 1)];
      const u = rng.uniform(rows * 2 * rank, -1, 1);
      const act = device.empty([rows, n], 'f32');
      const xs = device.fromArray(x, [rows, K], 'f32');
      decodeMatvec(device, {
        x: xs,
        weights: [gate.weight, up.weight],
        epilogue: 'swiglu',
        out: act,
        lowRank: {
          u: device.fromArray(u, [rows, 2 * rank], 'f32'),
          terms: bs.map((b, i) => ({
            b: device.fromArray(b, [n, rank], 'f32'),
            offset: i * rank,
            scale: 0.5,
          })),
        },
      });
      const low = (i: number, r: number, c: number) => {
        let sum = 0;
        for (let t = 0; t < rank; t++) sum += u[r * 2 * rank + i * rank + t] * bs[i][c * rank + t];
        return 0.5 * sum;
      };
      const g = normMatvecReference(x, rows, K, null, gate.values, n);
      const v = normMatvecReference(x, rows, K, null, up.values, n);
      const swiglu = new Float64Array(rows * n);
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < n; c++) {
          const a = g[r * n + c] + low(0, r, c);
          swiglu[r * n + c] = (a / (1 + Math.exp(-a))) * (v[r * n + c] + low(1, r, c));
        }
      }
      // Residual: out += x W^T + bias, in place.
      const start = rng.uniform(rows * n, -1, 1);
      const bias = rng.uniform(n, -1, 1);
      const residual = device.fromArray(start, [rows, n], 'f32');
      decodeMatvec(device, {
        x: xs,
        weights: [gate.weight],
        biases: [device.fromArray(bias, [n], 'f32')],
        epilogue: 'residual',
        out: residual,
      });
      const added = g.map((value, i) => value + start[i] + bias[i % n]);
      const tolerance = toleranceOf(x, rows, K, [gate.values, up.values], 4);
      await expectKernel(
        `${format} swiglu + residual`,
        { swiglu: { actual: act, expected: swiglu }, residual: { actual: residual, expected: added } },
        tolerance,
      );
      gate.weight.dispose();
      up.weight.dispose();
    });
  }

  it('q8_0: one stacked gate/up weight [2n, K] (Phi-3) reads up n rows after gate', async () => {
    const rng = new Rng(123);
    const [rows, K, n] = [3, 64, 9];
    const x = rng.uniform(rows * K, -1, 1);
    const stacked = quantized(device, 'q8_0', 2 * n, K, rng);
    const act = device.empty([rows, n], 'f32');
    decodeMatvec(device, {
      x: device.fromArray(x, [rows, K], 'f32'),
      weights: [stacked.weight],
      epilogue: 'swiglu',
      out: act,
    });
    const both = normMatvecReference(x, rows, K, null, stacked.values, 2 * n);
    const expected = new Float64Array(rows * n);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < n; c++) {
        const a = both[r * 2 * n + c];
        expected[r * n + c] = (a / (1 + Math.exp(-a))) * both[r * 2 * n + n + c];
      }
    }
    await expectKernel(
      'stacked q8_0',
      { act: { actual: act, expected } },
      toleranceOf(x, rows, K, [stacked.values], 4),
    );
    stacked.weight.dispose();
  });

  it('refuses weights of mixed formats, naming them', () => {
    const rng = new Rng(5);
    const a = quantized(device, 'q8_0', 4, 32, rng);
    const b = quantized(device, 'q4_0', 4, 32, rng);
    const weights: PackedWeight[] = [a.weight, b.weight];
    expect(() =>
      decodeMatvec(device, {
        x: device.fromArray(new Float32Array(32), [1, 32], 'f32'),
        weights,
        epilogue: 'store',
        out: device.empty([1, 8], 'f32'),
      }),
    ).toThrow(/q8_0, q4_0/);
  });
});

import { Rng } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { f32ToF16Bits } from '../../tensor/dtype.js';
import { expectKernel } from '../../testing/expect-kernel.js';
import { decodeRows, encodeRows } from '../packed-matmul/formats.js';
import { packedWeightFromBytes } from '../packed-matmul/packed-weight.js';
import type { DecodeEpilogue } from './decode-matvec.js';
import { prefillProduct } from './prefill-product.js';
import { forEachPrefillTile } from './prefill-tile-sweep.js';
import { normMatvecReference } from './reference.js';

/*
 * prefillProduct over ggml-quantized weights (Q8_0, Q4_0, Q4_K, through prefillQuantizedProduct)
 * and the GeGLU epilogue (every format), against float64 products of the dequantized values
 * (decodeRows: the stored rounding), at odd row counts (partial register tiles) and odd widths.
 */

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

type Format = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0' | 'q4_k';

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

function weightOf(on: Device, format: Format, n: number, K: number, rng: Rng) {
  if (format === 'f32') {
    const values = rng.uniform(n * K, -1, 1);
    return { tensor: on.fromArray(values, [n, K], 'f32'), values: Float64Array.from(values) };
  }
  const bytes =
    format === 'q4_k' ? randomQ4K(n, K, rng) : encodeRows(rng.uniform(n * K, -1, 1), n, K, format);
  return {
    tensor: packedWeightFromBytes(on, format, [n, K], bytes),
    values: decodeRows(bytes, n, K, format),
  };
}

interface Case {
  rows: number;
  K: number;
  widths: number[];
  epilogue: DecodeEpilogue;
  format: Format;
  norm?: boolean;
  bias?: boolean;
  gelu?: boolean;
  /** LoRA rank per weight (0: none). */
  ranks?: number[];
  /** DoRA: each adapted weight's factor [n] scales its sum with its LoRA term. */
  dora?: boolean;
  /** The gated epilogue over one weight [2n, K], gate rows first (Phi-3's gate_up_proj). */
  stacked?: boolean;
  seed: number;
}

const gelu = (a: number) => 0.5 * a * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (a + 0.044715 * a ** 3)));
const silu = (a: number) => a / (1 + Math.exp(-a));

async function check(on: Device, c: Case): Promise<void> {
  const rng = new Rng(c.seed);
  const { rows, K, widths, epilogue } = c;
  const x = rng.uniform(rows * K, -2, 2);
  const gain = rng.uniform(K, 0.5, 1.5);
  const norm = c.norm ? { weight: gain, eps: 1e-5 } : null;
  const weights = c.stacked
    ? (() => {
        const both = weightOf(on, c.format, 2 * widths[0], K, rng);
        const half = widths[0] * K;
        return [
          { tensor: both.tensor, values: both.values.subarray(0, half) },
          { tensor: both.tensor, values: both.values.subarray(half) },
        ];
      })()
    : widths.map((n) => weightOf(on, c.format, n, K, rng));
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
  const factors = widths.map((n, i) => (c.dora && ranks[i] ? rng.uniform(n, 0.5, 1.5) : null));
  const width = epilogue === 'store' ? widths.reduce((a, b) => a + b, 0) : widths[0];
  const residual = rng.uniform(rows * width, -1, 1);
  const out =
    epilogue === 'residual' ? on.fromArray(residual, [rows, width], 'f32') : on.empty([rows, width], 'f32');
  prefillProduct(on, {
    x: on.fromArray(x, [rows, K], 'f32'),
    weights: c.stacked ? [weights[0].tensor] : weights.map((w) => w.tensor),
    biases: biases ? biases.map((b) => on.fromArray(b, [b.length], 'f32')) : null,
    norm: norm ? { weight: on.fromArray(gain, [K], 'f32'), eps: norm.eps } : null,
    epilogue,
    ...(c.gelu ? { activation: 'gelu_tanh' as const } : {}),
    out,
    lowRank:
      uWidth > 0
        ? {
            u: on.fromArray(u, [rows, uWidth], 'f32'),
            terms: ranks.map((rank, i) =>
              rank
                ? {
                    b: on.fromArray(bs[i], [widths[i], rank], 'f32'),
                    offset: offsets[i],
                    scale: scales[i],
                    factor: factors[i] ? on.fromArray(factors[i], [widths[i]], 'f32') : null,
                  }
                : null,
            ),
          }
        : null,
  });
  // Each weight's outputs: product + LoRA term + bias, then the epilogue.
  let largest = 0;
  const sums = weights.map((w, i) => {
    const product = normMatvecReference(x, rows, K, norm, w.values, widths[i]);
    const magnitude = normMatvecReference(x.map(Math.abs), rows, K, null, w.values.map(Math.abs), widths[i]);
    for (const m of magnitude) largest = Math.max(largest, m);
    return product.map((value, at) => {
      const r = Math.floor(at / widths[i]);
      const col = at % widths[i];
      let low = 0;
      for (let t = 0; t < ranks[i]; t++) low += u[r * uWidth + offsets[i] + t] * bs[i][col * ranks[i] + t];
      const factor = factors[i]?.[col] ?? 1;
      return (value + scales[i] * low) * factor + (biases ? biases[i][col] : 0);
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
          epilogue === 'residual' ? gate + residual[at] : (c.gelu ? gelu(gate) : silu(gate)) * sums[1][at];
      }
    }
  }
  // f32 accumulation: the error scales with the sum of |terms| (the normed rows up to ~5x larger).
  const tolerance = { rtol: 3e-5, atol: Math.max(3e-5, 2e-6 * largest * (norm ? 5 : 1)) };
  const label = `${c.format} ${epilogue}${c.gelu ? ' gelu' : ''} rows ${rows}`;
  await expectKernel(label, { out: { actual: out, expected } }, tolerance);
  for (const w of c.stacked ? [weights[0]] : weights) w.tensor.dispose();
}

const Ks = { q8_0: 96, q4_0: 160, q4_k: 256 } as const;

describe('prefillProduct over ggml-quantized weights', () => {
  for (const format of ['q8_0', 'q4_0', 'q4_k'] as const) {
    const K = Ks[format];
    it(`${format}: norm + q/k/v side by side with biases, 53 and 3 rows (partial tiles; lavapipe tuning and a GPU-like one)`, async () => {
      for (const on of [device, gpuLike]) {
        await check(on, {
          rows: 53,
          K,
          widths: [37, 13, 13],
          epilogue: 'store',
          norm: true,
          bias: true,
          format,
          seed: 1 + format.length,
        });
      }
      await check(device, { rows: 3, K, widths: [9, 5, 5], epilogue: 'store', norm: true, format, seed: 2 });
    });

    it(`${format}: SwiGLU with LoRA on gate and up, a residual product with LoRA and bias`, async () => {
      await check(device, {
        rows: 29,
        K,
        widths: [19, 19],
        epilogue: 'swiglu',
        norm: true,
        ranks: [2, 3],
        format,
        seed: 3,
      });
      await check(device, {
        rows: 30,
        K,
        widths: [21],
        epilogue: 'residual',
        bias: true,
        ranks: [5],
        format,
        seed: 4,
      });
    });
  }

  it("GeGLU (Gemma's gelu_pytorch_tanh) in the gated epilogue: f32, f16 and Q8_0 weights", async () => {
    for (const format of ['f32', 'f16', 'q8_0'] as const) {
      await check(device, {
        rows: 27,
        K: format === 'q8_0' ? 64 : 44,
        widths: [15, 15],
        epilogue: 'swiglu',
        norm: true,
        gelu: true,
        ranks: format === 'f32' ? [0, 2] : undefined,
        format,
        seed: 10 + format.length,
      });
    }
  });

  it('DoRA factors scale the adapted weights (q and v of three; gate and up): f32, f16, Q8_0, Q4_K', async () => {
    // One epilogue per format (each case compiles its own shader), both tunings.
    const cases = [
      [device, 'f32', 'store'],
      [gpuLike, 'q4_k', 'store'],
      [gpuLike, 'f16', 'swiglu'],
      [device, 'q8_0', 'swiglu'],
    ] as const;
    for (const [on, format, epilogue] of cases) {
      const gated = epilogue === 'swiglu';
      await check(on, {
        rows: gated ? 7 : 26,
        K: format === 'q4_k' ? 256 : 64,
        widths: gated ? [9, 9] : [11, 6, 6],
        epilogue,
        norm: true,
        bias: !gated,
        ranks: gated ? [2, 2] : [3, 0, 2],
        dora: true,
        format,
        seed: 20 + format.length,
      });
    }
  });

  it("one stacked gate/up weight [2n, K] (Phi-3's gate_up_proj) reads up n rows after gate: f32, bf16, Q4_0, and GeGLU", async () => {
    for (const format of ['f32', 'bf16', 'q4_0'] as const) {
      await check(device, {
        rows: 31,
        K: format === 'q4_0' ? 96 : 52,
        widths: [13, 13],
        epilogue: 'swiglu',
        norm: true,
        stacked: true,
        format,
        seed: 40 + format.length,
      });
    }
    await check(gpuLike, {
      rows: 5,
      K: 64,
      widths: [10, 10],
      epilogue: 'swiglu',
      stacked: true,
      gelu: true,
      format: 'q8_0',
      seed: 50,
    });
  });

  it('every tile height the lavapipe prefill tuning can choose, in both workgroup orders: Q8_0 and Q4_K at odd row counts', async () => {
    await forEachPrefillTile(device, async (on, height, index) => {
      const rows = 2 * height + 3;
      await check(on, {
        rows,
        K: 64,
        widths: [40, 9, 9],
        epilogue: 'store',
        norm: true,
        format: 'q8_0',
        seed: 60 + index,
      });
      await check(on, {
        rows,
        K: 256,
        widths: [11, 11],
        epilogue: 'swiglu',
        norm: true,
        format: 'q4_k',
        seed: 70 + index,
      });
      await check(on, {
        rows: height - 1,
        K: 256,
        widths: [13],
        epilogue: 'residual',
        format: 'q4_k',
        seed: 80 + index,
      });
    });
  });

  it('refuses a stacked gate/up weight with a bias', () => {
    const rng = new Rng(7);
    const w = weightOf(device, 'q8_0', 8, 32, rng).tensor;
    expect(() =>
      prefillProduct(device, {
        x: device.empty([5, 32], 'f32'),
        weights: [w],
        biases: [device.empty([8], 'f32')],
        epilogue: 'swiglu',
        out: device.empty([5, 4], 'f32'),
      }),
    ).toThrow(/stacked gate\/up weight needs an even row count, and takes no bias or LoRA term/);
    w.dispose();
  });
});

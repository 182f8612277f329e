import { expectClose, Rng } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { f32ToF16Bits } from '../../tensor/dtype.js';
import { matmul } from '../matmul/matmul.js';
import { decodeRows, encodeRows, type PackedFormat } from './formats.js';
import { packedMatmul, packedMatmulInputGrad, packedTileShape, unpackWeight } from './packed-matmul.js';
import { packedWeightFromBytes } from './packed-weight.js';
import { packedInputGradReference, packedMatmulReference } from './reference.js';

/**
 * The tiled packed products (packed-tiled-wgsl.ts) at sizes that are not multiples of the tile
 * (rows 24 or 8 per invocation, 4 columns, 8 lanes) nor of the block (32 values), through every
 * path of the kernel: both tile heights, the activation read as vec4 or as masked scalars, f16
 * rows starting on odd half-words, Q8_0/Q4_0 blocks at both word alignments, chunks of the
 * weight adding into the input gradient. The reference is float64 over decodeRows() of the same
 * bytes: the weight as stored (f16/bf16 rounding, each block's scales), exact in f32.
 */
let device: Device;
/** Binding limit of 32 KiB: weights split in chunks of rows, activations still in one binding. */
let small: Device;
/** The GPU classes' tuning: no subgroups, 16 x 4 lanes of 4 x 4 outputs each. */
let gpuClass: Device;
beforeAll(async () => {
  device = await createDevice();
  small = await createDevice({ maxBindingBytes: 32768 });
  gpuClass = await createDevice({ adapterClass: 'integrated' });
});
afterAll(() => {
  small.gpu.destroy();
  gpuClass.gpu.destroy();
});

/**
 * f32 accumulation error scales with the sum of the products' magnitudes, not with the result
 * (random signs cancel): the tolerance is 2e-7 (about 3.4 f32 ulps) of the largest such sum.
 */
function accumulationTolerance(
  a: ArrayLike<number>,
  w: Float64Array,
  M: number,
  N: number,
  K: number,
  forward: boolean,
) {
  let largest = 0;
  for (let m = 0; m < M; m++) {
    for (let c = 0; c < (forward ? N : K); c++) {
      let sum = 0;
      if (forward) for (let k = 0; k < K; k++) sum += Math.abs(a[m * K + k] * w[c * K + k]);
      else for (let n = 0; n < N; n++) sum += Math.abs(a[m * N + n] * w[n * K + c]);
      largest = Math.max(largest, sum);
    }
  }
  return { rtol: 1e-6, atol: Math.max(1e-6, 2e-7 * largest) };
}

const FORMATS: PackedFormat[] = ['f16', 'bf16', 'q8_0', 'q4_0', 'q4_k'];

/** Random Q4_K super-blocks: d and dmin f16 in [0, 1/64), random 6-bit scales, mins, nibbles. */
function randomQ4K(rows: number, cols: number, seed: number): Uint8Array {
  const rng = new Rng(seed);
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

/**
 * Packed bytes of a random weight [N, K]. Halves include f16 subnormals (|v| < 6.1e-5) and
 * signed zeros, which the decoder must keep.
 */
function weightBytes(format: PackedFormat, N: number, K: number, seed: number): Uint8Array {
  if (format === 'q4_k') return randomQ4K(N, K, seed);
  const rng = new Rng(seed);
  const values = Float32Array.from(rng.uniform(N * K), (v, i) => {
    if (i % 7 === 3) return v * 4e-5;
    if (i % 11 === 5) return i % 2 === 0 ? 0 : -0;
    return v * 2;
  });
  return encodeRows(values, N, K, format);
}

/** [M, K, N] cases per format: a few rows (8-row tile), 24-row tiles with scalar and vec4 reads. */
function casesFor(format: PackedFormat): [number, number, number][] {
  if (format === 'f16' || format === 'bf16') {
    // K = 37: odd rows start mid-word, activation read by masked scalars; K = 38: every row
    // word-aligned but a partial last quad; K = 44, N = 20: vec4 reads in both layouts.
    return [
      [1, 37, 19],
      [29, 37, 19],
      [26, 38, 45],
      [27, 44, 20],
    ];
  }
  if (format === 'q4_k') {
    return [
      [1, 256, 19],
      [29, 512, 19],
      [27, 256, 20],
    ];
  }
  // 96 = 3 blocks a row: rows of 102 (Q8_0) or 54 (Q4_0) bytes, blocks at both word alignments.
  return [
    [1, 96, 19],
    [29, 96, 19],
    [27, 160, 20],
  ];
}

async function checkProducts(
  on: Device,
  format: PackedFormat,
  [M, K, N]: [number, number, number],
  seed: number,
) {
  const rng = new Rng(seed);
  const bytes = weightBytes(format, N, K, seed);
  const decoded = decodeRows(bytes, N, K, format);
  const x = rng.uniform(M * K);
  const dy = rng.uniform(M * N);
  const label = `${format} ${M}x${K}x${N}`;
  await on.scope(async () => {
    const weight = packedWeightFromBytes(on, format, [N, K], bytes);
    try {
      const out = packedMatmul(on.fromArray(x, [M, K], 'f32'), weight);
      expectClose(await out.toArray(), packedMatmulReference(x, decoded, M, N, K), {
        ...accumulationTolerance(x, decoded, M, N, K, true),
        label,
      });
      const dx = packedMatmulInputGrad(on.fromArray(dy, [M, N], 'f32'), weight);
      expectClose(await dx.toArray(), packedInputGradReference(dy, decoded, M, N, K), {
        ...accumulationTolerance(dy, decoded, M, N, K, false),
        label: `${label} input grad`,
      });
    } finally {
      weight.dispose();
    }
  });
}

describe('tiled packed matmul', () => {
  it('takes the 24-row tile beyond one subgroup of rows and the 8-row tile for a few (lavapipe)', () => {
    const few = packedTileShape(device, 'q8_0', 'forward', 3, true);
    const many = packedTileShape(device, 'q8_0', 'forward', 29, true);
    expect(few.cols).toBe(4);
    expect(many.rows).toBeGreaterThanOrEqual(few.rows);
    if (many.subgroups) {
      expect(few.rows).toBe(few.lanesN);
      expect(many.rows).toBe(device.tuning.matmulTileRows);
    }
  });

  for (const format of FORMATS) {
    it(`${format}: forward and input gradient equal float64 references at odd sizes`, async () => {
      let seed = 100;
      for (const shape of casesFor(format)) await checkProducts(device, format, shape, seed++);
    });
  }

  it('reads every stored value exactly: x = I gives the decoded weight (f16 subnormals, zeros)', async () => {
    for (const format of FORMATS) {
      const [K, N] = format === 'q4_k' ? [256, 5] : format.startsWith('q') ? [64, 9] : [37, 9];
      const bytes = weightBytes(format, N, K, 7);
      const decoded = decodeRows(bytes, N, K, format);
      const identity = new Float32Array(K * K);
      for (let i = 0; i < K; i++) identity[i * K + i] = 1;
      await device.scope(async () => {
        const weight = packedWeightFromBytes(device, format, [N, K], bytes);
        const out = await packedMatmul(device.fromArray(identity, [K, K], 'f32'), weight).toArray();
        // out[k, n] = W[n, k], a single product each: no rounding at all (a stored -0 sums to +0).
        const transposed = Float64Array.from(
          { length: K * N },
          (_, i) => decoded[(i % N) * K + Math.floor(i / N)] + 0,
        );
        expect(
          Float64Array.from(out, (v) => v + 0),
          format,
        ).toEqual(transposed);
        weight.dispose();
      });
    }
  });

  it('equals the f32 matmul of the dequantized weight, forward and input gradient, every format', async () => {
    for (const format of FORMATS) {
      const [M, K, N] = format === 'q4_k' ? [29, 256, 45] : [29, 64, 45];
      const rng = new Rng(9);
      const bytes = weightBytes(format, N, K, 9);
      const x = rng.uniform(M * K);
      const dy = rng.uniform(M * N);
      await device.scope(async () => {
        const weight = packedWeightFromBytes(device, format, [N, K], bytes);
        const dense = unpackWeight(weight);
        const input = device.fromArray(x, [M, K], 'f32');
        const gradient = device.fromArray(dy, [M, N], 'f32');
        expectClose(
          await packedMatmul(input, weight).toArray(),
          await matmul(input, dense, { transposeB: true }).toArray(),
          { rtol: 1e-5, atol: 1e-5, label: format },
        );
        expectClose(
          await packedMatmulInputGrad(gradient, weight).toArray(),
          await matmul(gradient, dense).toArray(),
          { rtol: 1e-5, atol: 1e-5, label: `${format} input grad` },
        );
        weight.dispose();
      });
    }
  });

  it("runs the GPU classes' tile (no subgroups, 16 x 4 lanes) to the same references", async () => {
    const shape = packedTileShape(gpuClass, 'q4_0', 'forward', 29, true);
    expect(shape.subgroups).toBe(false);
    expect(shape.lanesN * shape.lanesM).toBe(gpuClass.tuning.matmulWorkgroup);
    // The tile's structure does not depend on the format: f16 (masked tail quads, rows starting
    // mid-word) and q4_k (per-block scale and offset) cover both kinds of decoder.
    await checkProducts(gpuClass, 'f16', [29, 37, 45], 200);
    await checkProducts(gpuClass, 'q4_k', [70, 256, 20], 201);
  });

  it('adds the input gradient over weight chunks whose first rows are not multiples of 4', async () => {
    // q4_0 rows of 256 values are 144 bytes: 227 rows per 32 KiB chunk, chunks at rows 0 and 227.
    // f16 rows of 69 values are 138 bytes (odd rows start mid-word): 237 rows per chunk.
    await checkProducts(small, 'q4_0', [29, 256, 250], 61);
    await checkProducts(small, 'f16', [26, 69, 250], 62);
    await checkProducts(small, 'q8_0', [3, 96, 400], 63);
  });
});

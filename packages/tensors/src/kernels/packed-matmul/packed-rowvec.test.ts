import { expectClose, Rng } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { f32ToF16Bits } from '../../tensor/dtype.js';
import { decodeRows, encodeRows, type PackedFormat } from './formats.js';
import { packedMatmul, packedRowvecShape } from './packed-matmul.js';
import { packedWeightFromBytes } from './packed-weight.js';
import { packedMatmulReference } from './reference.js';

/**
 * The one-row packed product (packed-rowvec.ts: lanes split K by blocks) that packedMatmul takes
 * for at most `matmulSmallRowsMax` rows, against float64 over decodeRows() of the same bytes, at
 * sizes that are not multiples of its lanes, columns or (for halves) of the block: every format,
 * weights split over buffers, and a GPU class's tuning (32 lanes, reduced in workgroup memory).
 */
let device: Device;
/** Binding limit of 32 KiB: weights split in chunks of rows. */
let small: Device;
let gpuClass: Device;
beforeAll(async () => {
  device = await createDevice();
  small = await createDevice({ maxBindingBytes: 32768 });
  gpuClass = await createDevice({ adapterClass: 'integrated' });
});
afterAll(() => {
  small?.gpu.destroy();
  gpuClass?.gpu.destroy();
});

function weightBytes(format: PackedFormat, N: number, K: number, rng: Rng): Uint8Array {
  if (format === 'q4_k') {
    const bytes = Uint8Array.from(rng.uniform(N * (K / 256) * 144, 0, 256), Math.floor);
    for (let o = 0; o < bytes.length; o += 144) {
      for (const at of [o, o + 2]) {
        const bits = f32ToF16Bits(rng.next() / 64);
        bytes[at] = bits & 255;
        bytes[at + 1] = bits >> 8;
      }
    }
    return bytes;
  }
  return encodeRows(rng.uniform(N * K, -2, 2), N, K, format);
}

/** 2e-7 of the largest sum of |terms| (f32 accumulation), as the tiled kernel's tests. */
function tolerance(x: ArrayLike<number>, w: Float64Array, M: number, N: number, K: number) {
  let largest = 0;
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let sum = 0;
      for (let k = 0; k < K; k++) sum += Math.abs(x[m * K + k] * w[n * K + k]);
      largest = Math.max(largest, sum);
    }
  }
  return { rtol: 1e-6, atol: Math.max(1e-6, 2e-7 * largest) };
}

async function check(on: Device, format: PackedFormat, M: number, K: number, N: number, seed: number) {
  const rng = new Rng(seed);
  const bytes = weightBytes(format, N, K, rng);
  const decoded = decodeRows(bytes, N, K, format);
  const x = rng.uniform(M * K, -1, 1);
  await on.scope(async () => {
    const weight = packedWeightFromBytes(on, format, [N, K], bytes);
    try {
      const out = await packedMatmul(on.fromArray(x, [M, K], 'f32'), weight).toArray();
      expectClose(out, packedMatmulReference(x, decoded, M, N, K), {
        ...tolerance(x, decoded, M, N, K),
        label: `${format} ${M}x${K}x${N} (${weight.chunks.length} chunk(s))`,
      });
    } finally {
      weight.dispose();
    }
  });
}

/** [K, N] per format: halves with K not a multiple of 4 or of the block; whole blocks otherwise. */
const SIZES: Record<PackedFormat, [number, number][]> = {
  f16: [
    [37, 19],
    [70, 9],
  ],
  bf16: [[38, 19]],
  q8_0: [[96, 19]],
  q4_0: [[160, 21]],
  q4_k: [[512, 11]],
};

describe('one-row packed product', () => {
  it('is taken for at most matmulSmallRowsMax rows, with the small-rows lanes and columns', () => {
    const limit = device.tuning.matmulSmallRowsMax;
    expect(limit).toBeGreaterThan(0);
    expect(packedRowvecShape(device, 'q8_0', 1)).toMatchObject({
      rows: 1,
      lanes: device.tuning.matmulSmallRowsLanes,
      cols: device.tuning.matmulSmallRowsCols,
    });
    expect(packedRowvecShape(device, 'q8_0', limit)).not.toBeNull();
    expect(packedRowvecShape(device, 'q8_0', limit + 1)).toBeNull();
    expect(packedRowvecShape(gpuClass, 'q4_0', 3)?.subgroups).toBe(false);
  });

  for (const format of Object.keys(SIZES) as PackedFormat[]) {
    it(`${format}: 1 and 2 rows equal the float64 reference at odd sizes`, async () => {
      let seed = 10;
      for (const [K, N] of SIZES[format]) {
        await check(device, format, 1, K, N, seed++);
        await check(device, format, 2, K, N, seed++);
      }
    });
  }

  it('reads a weight split over several buffers (chunks of rows) into its columns', async () => {
    // Q8_0 rows of 256 values are 272 bytes: 120 rows per 32 KiB chunk, 3 chunks for 300 rows.
    await check(small, 'q8_0', 1, 256, 300, 40);
    // f16 rows of 69 values are 138 bytes, odd rows starting mid-word: 237 rows per chunk.
    await check(small, 'f16', 1, 69, 250, 41);
  });

  it("runs a GPU class's tuning (32 lanes, 4 columns, workgroup reduction) to the same reference", async () => {
    await check(gpuClass, 'q4_k', 1, 256, 13, 50);
    await check(gpuClass, 'f16', 3, 37, 9, 51);
  });
});

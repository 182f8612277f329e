import { Rng } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { expectKernel } from '../../testing/expect-kernel.js';
import { decodeRows, encodeRows, type PackedFormat } from '../packed-matmul/formats.js';
import { packedWeightFromBytes } from '../packed-matmul/packed-weight.js';
import { decodeMatvec } from './decode-matvec.js';
import { decodeEmbed } from './decode-tokens.js';
import { normMatvecReference } from './reference.js';

/*
 * A packed token table and head split in chunks of rows over several buffers (a vocabulary over
 * one binding): the fused decoder's head product and embedding lookup, against float64 references
 * that take the stored (rounded) values. A 4 KiB binding limit forces the chunks at small sizes.
 */

let device: Device;
/** The GPU classes' small-rows tuning (32 lanes, 4 columns per workgroup), same bindings. */
let gpuLike: Device;
beforeAll(async () => {
  device = await createDevice({ maxBindingBytes: 4096 });
  gpuLike = await createDevice({
    maxBindingBytes: 4096,
    tuning: { matmulSmallRowsLanes: 32, matmulSmallRowsCols: 4 },
  });
});
afterAll(() => {
  device?.destroy();
  gpuLike?.destroy();
});

const tolerance = { rtol: 2e-5, atol: 2e-5 };

describe('decodeMatvec with a packed weight split over buffers', () => {
  for (const [format, rows, tuning] of [
    ['f16', 1, 'software'],
    ['f16', 3, 'software'],
    ['bf16', 2, 'software'],
    ['f16', 1, 'GPU'],
  ] as const) {
    it(`${format}, ${rows} row(s), ${tuning} tuning: norm + head over 7 chunks (two dispatches of three, one of one) equals the float64 reference, placed at outColumn`, async () => {
      const on = tuning === 'GPU' ? gpuLike : device;
      const rng = new Rng(rows + (format === 'f16' ? 10 : 20));
      // 88-byte rows: 46 rows per 4 KiB chunk, 301 rows in 7 chunks (the last of 25).
      const [N, K] = [301, 44];
      const bytes = encodeRows(rng.uniform(N * K, -1, 1), N, K, format);
      const weight = packedWeightFromBytes(on, format, [N, K], bytes);
      expect(weight.chunks.length).toBe(7);
      const values = decodeRows(bytes, N, K, format);
      const x = rng.uniform(rows * K, -2, 2);
      const gain = rng.uniform(K, 0.5, 1.5);
      // Three columns before the head's outputs and two after, which the product leaves alone.
      const [before, width] = [3, N + 5];
      const initial = rng.uniform(rows * width, -1, 1);
      const out = on.fromArray(initial, [rows, width], 'f32');
      decodeMatvec(on, {
        x: on.fromArray(x, [rows, K], 'f32'),
        weights: [weight],
        norm: { weight: on.fromArray(gain, [K], 'f32'), eps: 1e-5 },
        epilogue: 'store',
        out,
        outColumn: before,
      });
      const product = normMatvecReference(x, rows, K, { weight: gain, eps: 1e-5 }, values, N);
      const expected = Float64Array.from(initial);
      for (let r = 0; r < rows; r++) expected.set(product.subarray(r * N, (r + 1) * N), r * width + before);
      await expectKernel(`${format} chunked head`, { out: { actual: out, expected } }, tolerance);
      weight.dispose();
    });
  }

  it('refuses a split weight with a bias, a LoRA term or another epilogue, and an out without room', () => {
    const [N, K] = [120, 44];
    const weight = packedWeightFromBytes(
      device,
      'f16',
      [N, K],
      encodeRows(new Float32Array(N * K), N, K, 'f16'),
    );
    expect(weight.chunks.length).toBeGreaterThan(1);
    const x = device.empty([1, K], 'f32');
    const out = device.empty([1, N], 'f32');
    expect(() =>
      decodeMatvec(device, {
        x,
        weights: [weight],
        biases: [device.empty([N], 'f32')],
        epilogue: 'store',
        out,
      }),
    ).toThrow(/split over \d+ buffers/);
    expect(() => decodeMatvec(device, { x, weights: [weight], epilogue: 'residual', out })).toThrow(
      /split over \d+ buffers/,
    );
    expect(() =>
      decodeMatvec(device, { x, weights: [weight], epilogue: 'store', out, outColumn: 1 }),
    ).toThrow(/no room/);
    weight.dispose();
  });
});

describe('decodeEmbed from a packed table split over buffers', () => {
  for (const format of ['f16', 'bf16', 'q8_0'] as PackedFormat[]) {
    it(`${format}: each id's stored row, exactly; an id outside the table gives zeros`, async () => {
      const rng = new Rng(format.length + 7);
      // Rows of 64 values: 128 bytes (f16, bf16) or 68 (q8_0); 203 rows in 7 or 4 chunks.
      const [vocab, K] = [203, 64];
      const bytes = encodeRows(rng.uniform(vocab * K, -1, 1), vocab, K, format);
      const table = packedWeightFromBytes(device, format, [vocab, K], bytes);
      expect(table.chunks.length).toBeGreaterThan(2);
      const values = decodeRows(bytes, vocab, K, format);
      const ids = [202, 0, 131, 64, 500];
      const hidden = device.fromArray(new Float32Array(ids.length * K).fill(3), [ids.length, K], 'f32');
      decodeEmbed(device, table, device.fromArray(ids, [ids.length], 'i32'), hidden);
      const expected = new Float64Array(ids.length * K);
      ids.forEach((id, r) => {
        if (id < vocab) expected.set(values.subarray(id * K, (id + 1) * K), r * K);
      });
      await expectKernel(`${format} embed`, { hidden: { actual: hidden, expected, exact: true } });
      table.dispose();
    });
  }
});

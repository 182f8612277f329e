import { expectClose, Rng } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { autograd, backward, gradOf, requiresGrad } from '../../autograd/index.js';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { f32ToF16Bits } from '../../tensor/dtype.js';
import { matmul } from '../matmul/matmul.js';
import { decodeRows, encodeRows, type PackedFormat } from './formats.js';
import { packedGather } from './packed-gather.js';
import { packedLinear, packedMatmul, packedMatmulInputGrad, unpackWeight } from './packed-matmul.js';
import { packedWeightFromBytes, packWeight } from './packed-weight.js';
import { packedInputGradReference, packedMatmulReference } from './reference.js';

let device: Device;
/** Binding limit of 4 KiB: weights and outputs split in several chunks of rows. */
let small: Device;
beforeAll(async () => {
  device = await createDevice();
  small = await createDevice({ maxBindingBytes: 4096 });
});
afterAll(() => {
  small.gpu.destroy();
});

const FORMATS: PackedFormat[] = ['f16', 'bf16', 'q8_0', 'q4_0', 'q4_k'];

/** Odd M and N; K a whole number of blocks for the quantized formats, ragged for halves. */
function shapeFor(format: PackedFormat): [number, number, number] {
  if (format === 'q4_k') return [5, 512, 19];
  return format === 'f16' || format === 'bf16' ? [5, 37, 19] : [5, 96, 19];
}

/**
 * Random Q4_K super-blocks (ggml's layout; every byte pattern is a valid block once d and dmin are
 * finite): d and dmin f16 in [0, 1/64), random 6-bit scales and mins, random nibbles.
 */
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

async function checkFormat(on: Device, format: PackedFormat, M: number, K: number, N: number, seed: number) {
  const rng = new Rng(seed);
  const weightValues = Float32Array.from(rng.uniform(N * K), (v) => v * 2);
  const x = rng.uniform(M * K);
  const dy = rng.uniform(M * N);
  const bytes = format === 'q4_k' ? randomQ4K(N, K, seed) : encodeRows(weightValues, N, K, format);
  const decoded = decodeRows(bytes, N, K, format);
  await on.scope(async () => {
    const weight = packedWeightFromBytes(on, format, [N, K], bytes);
    try {
      expect(await weight.decode()).toEqual(decoded);
      const label = `${format} ${M}x${K}x${N}`;
      const out = packedMatmul(on.fromArray(x, [M, K], 'f32'), weight);
      expect(out.shape).toEqual([M, N]);
      expectClose(await out.toArray(), packedMatmulReference(x, decoded, M, N, K), {
        rtol: 1e-5,
        atol: 1e-5,
        label,
      });
      const dx = packedMatmulInputGrad(on.fromArray(dy, [M, N], 'f32'), weight);
      expect(dx.shape).toEqual([M, K]);
      expectClose(await dx.toArray(), packedInputGradReference(dy, decoded, M, N, K), {
        rtol: 1e-5,
        atol: 1e-5,
        label: `${label} input grad`,
      });
      const unpacked = unpackWeight(weight);
      expect(Float64Array.from(await unpacked.toArray())).toEqual(decoded);
    } finally {
      weight.dispose();
    }
  });
}

describe('packed matmul', () => {
  for (const format of FORMATS) {
    it(`${format}: forward, input gradient and unpack equal the float64 references`, async () => {
      const [M, K, N] = shapeFor(format);
      await checkFormat(device, format, M, K, N, 11);
    });
  }

  it('equals the f32 matmul of the dequantized weight (q4_0, q8_0, f16)', async () => {
    const rng = new Rng(5);
    const [M, K, N] = [9, 64, 33];
    const values = rng.uniform(N * K);
    const x = rng.uniform(M * K);
    for (const format of ['q4_0', 'q8_0', 'f16'] as const) {
      await device.scope(async () => {
        const weight = packWeight(device, values, [N, K], format);
        const input = device.fromArray(x, [M, K], 'f32');
        const dense = unpackWeight(weight);
        const expected = await matmul(input, dense, { transposeB: true }).toArray();
        expectClose(await packedMatmul(input, weight).toArray(), expected, {
          rtol: 1e-5,
          atol: 1e-5,
          label: format,
        });
        weight.dispose();
      });
    }
  });

  it('runs weights and outputs split in chunks of rows (binding limit 4 KiB)', async () => {
    // q8_0 rows of 160 values are 170 bytes: 24 rows per chunk, 3 chunks for 61 rows; q4_0 rows
    // of 320 values 180 bytes; f16 rows of 2 KiB: 2 rows per chunk. The output [12, 240] f32 of
    // 11 KiB below: 3 chunks, with a q4_0 weight [240, 32] of 4,320 bytes in 2.
    await checkFormat(small, 'q8_0', 6, 160, 61, 21);
    await checkFormat(small, 'q4_0', 3, 320, 45, 22);
    await checkFormat(small, 'f16', 1, 1024, 9, 23);
    // q4_k rows of 512 values are 288 bytes: 14 rows per chunk, 3 chunks for 37 rows.
    await checkFormat(small, 'q4_k', 1, 512, 37, 25);
    const rng = new Rng(24);
    const [M, K, N] = [12, 32, 240];
    const values = rng.uniform(N * K);
    const x = rng.uniform(M * K);
    await small.scope(async () => {
      const weight = packWeight(small, values, [N, K], 'q4_0');
      expect(weight.chunks.length).toBeGreaterThan(1);
      const out = packedMatmul(small.fromArray(x, [M, K], 'f32'), weight);
      expect(out.chunked).toBe(true);
      const decoded = await weight.decode();
      expectClose(await out.toArray(), packedMatmulReference(x, decoded, M, N, K), {
        rtol: 1e-5,
        atol: 1e-5,
      });
      weight.dispose();
    });
  });

  it('takes ggml blocks as they are and rejects byte counts that do not fill the tensor', async () => {
    const rng = new Rng(31);
    const values = rng.uniform(3 * 64);
    const bytes = encodeRows(values, 3, 64, 'q8_0');
    // Given in uneven pieces, as a stream would.
    const weight = packedWeightFromBytes(device, 'q8_0', [3, 64], [bytes.subarray(0, 7), bytes.subarray(7)]);
    expect(await weight.readBytes()).toEqual(bytes);
    weight.dispose();
    expect(() => packedWeightFromBytes(device, 'q8_0', [3, 64], bytes.subarray(1))).toThrow(
      /got 203 bytes, the tensor holds 204/,
    );
    expect(() => packedWeightFromBytes(device, 'q4_0', [3, 40], new Uint8Array(0))).toThrow(
      /not a whole number of blocks/,
    );
  });

  it('packedGather reads rows of a packed table as decoded, chunked table and output included', async () => {
    const check = async (on: Device, format: PackedFormat, vocab: number, dim: number, seed: number) => {
      const rng = new Rng(seed);
      const bytes =
        format === 'q4_k'
          ? randomQ4K(vocab, dim, seed)
          : encodeRows(rng.uniform(vocab * dim), vocab, dim, format);
      const decoded = decodeRows(bytes, vocab, dim, format);
      // Two rows of ids; -1 and vocab are outside the table and give zeros.
      const ids = [3, vocab - 1, 0, -1, 7, vocab, 3, 1];
      await on.scope(async () => {
        const weight = packedWeightFromBytes(on, format, [vocab, dim], bytes);
        const out = packedGather(on.fromArray(ids, [2, 4], 'i32'), weight);
        expect(out.shape).toEqual([2, 4, dim]);
        const expected = ids.flatMap((id) =>
          id < 0 || id >= vocab ? new Array(dim).fill(0) : [...decoded.subarray(id * dim, (id + 1) * dim)],
        );
        expect(Float64Array.from(await out.toArray())).toEqual(Float64Array.from(expected));
        weight.dispose();
      });
    };
    for (const format of FORMATS) await check(device, format, 11, format === 'q4_k' ? 256 : 64, 51);
    // 4 KiB bindings: the q8_0 table [100, 96] in 3 chunks of 40 rows; the f16 gather's output
    // [2, 4, 160] f32 (5 KiB) in 2.
    await check(small, 'q8_0', 100, 96, 52);
    await check(small, 'f16', 9, 160, 53);
  });

  it('packedLinear differentiates x only, bias included', async () => {
    const rng = new Rng(41);
    const [B, T, K, N] = [2, 3, 64, 7];
    const values = rng.uniform(N * K);
    const x = rng.uniform(B * T * K);
    const bias = rng.uniform(N);
    const dy = rng.uniform(B * T * N);
    await device.scope(async () => {
      const weight = packWeight(device, values, [N, K], 'q4_0');
      const input = requiresGrad(device.fromArray(x, [B, T, K], 'f32'));
      const y = packedLinear(input, weight, device.fromArray(bias, [N], 'f32'));
      expect(y.shape).toEqual([B, T, N]);
      const loss = autograd.sum(autograd.mul(y, device.fromArray(dy, [B, T, N], 'f32')));
      backward(loss);
      const decoded = await weight.decode();
      expectClose(await gradOf(input)!.toArray(), packedInputGradReference(dy, decoded, B * T, N, K), {
        rtol: 1e-5,
        atol: 1e-5,
      });
      const expected = packedMatmulReference(x, decoded, B * T, N, K).map((v, i) => v + bias[i % N]);
      expectClose(await y.toArray(), expected, { rtol: 1e-5, atol: 1e-5 });
      weight.dispose();
    });
  });
});

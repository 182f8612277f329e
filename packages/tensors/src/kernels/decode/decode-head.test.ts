import { Rng } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { expectKernel } from '../../testing/expect-kernel.js';
import { decodeRows, encodeRows } from '../packed-matmul/formats.js';
import { packedWeightFromBytes } from '../packed-matmul/packed-weight.js';
import { decodeHead, streamingHeadUnsupported } from './decode-head.js';
import { normMatvecReference } from './reference.js';

let device: Device;
/** Blocks of 7 vocabulary rows: many blocks, the last one partial, at small vocabularies. */
let small: Device;
/** A GPU class's tuning (no streaming head): decode's matvec and decodeArgmax. */
let gpuLike: Device;
/** 4 KiB bindings: a half head over several buffers (a dispatch per chunk). */
let chunked: Device;
beforeAll(async () => {
  chunked = await createDevice({ maxBindingBytes: 4096, tuning: { decodeHeadRows: 16 } });
  device = await createDevice();
  small = await createDevice({ tuning: { decodeHeadRows: 7 } });
  gpuLike = await createDevice({
    tuning: { decodeHeadRows: 0, matmulSmallRowsLanes: 32, matmulSmallRowsCols: 4 },
  });
});
afterAll(() => {
  for (const d of [device, small, gpuLike, chunked]) d.destroy();
});

const tolerance = { rtol: 2e-5, atol: 2e-5 };

/** decodeArgmax's rule on the kernel's own logits: largest non-NaN, lowest index among ties, -1. */
function hostArgmax(logits: Float32Array, rows: number, vocab: number): number[] {
  return Array.from({ length: rows }, (_, r) => {
    let best = -1;
    for (let v = 0; v < vocab; v++) {
      const value = logits[r * vocab + v];
      if (Number.isNaN(value)) continue;
      if (best < 0 || value > logits[r * vocab + best]) best = v;
    }
    return best;
  });
}

async function runHead(
  on: Device,
  options: {
    rows: number;
    K: number;
    vocab: number;
    norm: boolean;
    seed: number;
    half?: 'f16' | 'bf16';
    chunks?: number;
  },
) {
  const { rows, K, vocab, norm, seed } = options;
  const rng = new Rng(seed);
  const x = rng.uniform(rows * K, -2, 2);
  const gain = rng.uniform(K, 0.5, 1.5);
  const drawn = rng.uniform(vocab * K, -1, 1);
  const weight = options.half
    ? packedWeightFromBytes(on, options.half, [vocab, K], encodeRows(drawn, vocab, K, options.half))
    : on.fromArray(drawn, [vocab, K], 'f32');
  if (options.chunks)
    expect(weight.shape[0] === vocab && 'chunks' in weight && weight.chunks.length).toBe(options.chunks);
  // Halves: the reference multiplies the stored (rounded) values.
  const table: ArrayLike<number> = options.half
    ? decodeRows(encodeRows(drawn, vocab, K, options.half), vocab, K, options.half)
    : drawn;
  const out = on.empty([rows, vocab], 'f32');
  const ids = on.fromArray(new Int32Array(rows), [rows], 'i32');
  const tokens = on.fromArray(new Int32Array(3 * rows).fill(5), [3 * rows], 'i32');
  const normSpec = { weight: gain, eps: 1e-5 };
  decodeHead(on, {
    x: on.fromArray(x, [rows, K], 'f32'),
    weight,
    ...(norm ? { norm: { weight: on.fromArray(gain, [K], 'f32'), eps: 1e-5 } } : {}),
    out,
    argmax: { ids, tokens, at: 1 },
  });
  const expected = normMatvecReference(x, rows, K, norm ? normSpec : null, table, vocab);
  await expectKernel(
    `head rows ${rows} K ${K} vocab ${vocab}`,
    { out: { actual: out, expected } },
    tolerance,
  );
  const logits = (await out.toArray()) as Float32Array;
  const chosen = hostArgmax(logits, rows, vocab);
  await expectKernel('argmax', {
    ids: { actual: ids, expected: chosen, exact: true },
    tokens: {
      actual: tokens,
      expected: [...new Array(rows).fill(5), ...chosen, ...new Array(rows).fill(5)],
      exact: true,
    },
  });
  // The float64 reference's own argmax (no near-ties at these sizes).
  const reference = hostArgmax(Float32Array.from(expected), rows, vocab);
  expect(chosen).toEqual(reference);
}

describe('decodeHead (streaming head)', () => {
  it('takes the lavapipe device and refuses what it cannot run, with the reason', () => {
    const f32 = device.empty([300, 36], 'f32');
    expect(streamingHeadUnsupported(device, f32, 1)).toBeNull();
    expect(streamingHeadUnsupported(device, f32, 5)).toMatch(/5 rows/);
    expect(streamingHeadUnsupported(device, device.empty([30, 388], 'f32'), 1)).toMatch(/K 388/);
    expect(streamingHeadUnsupported(gpuLike, f32, 1)).toMatch(/decodeHeadRows 0/);
  });

  it('matches float64 at odd sizes: vocab not a multiple of the block, K an odd multiple of 4, 1 and 3 rows, with and without the norm', async () => {
    for (const [on, rows, K, vocab, norm, seed] of [
      [device, 1, 36, 1037, true, 1],
      [device, 3, 100, 515, true, 2],
      [device, 2, 64, 300, false, 3],
      [device, 1, 380, 257, true, 12],
      [small, 1, 20, 101, true, 4],
      [small, 4, 68, 129, true, 5],
    ] as const) {
      expect(streamingHeadUnsupported(on, on.empty([vocab, K], 'f32'), rows)).toBeNull();
      await runHead(on, { rows, K, vocab, norm, seed });
    }
  });

  it('reads f16 and bf16 heads (the stored halves) like f32 ones', async () => {
    await runHead(device, { rows: 1, K: 44, vocab: 777, norm: true, seed: 6, half: 'f16' });
    await runHead(small, { rows: 2, K: 36, vocab: 61, norm: true, seed: 7, half: 'bf16' });
  });

  it('reads a half head split over buffers, a dispatch per chunk, with one argmax over every chunk', async () => {
    // 88-byte rows: 46 rows per 4 KiB chunk, 301 rows in 7 chunks (the last of 25), blocks of 16.
    await runHead(chunked, { rows: 1, K: 44, vocab: 301, norm: true, seed: 10, half: 'f16', chunks: 7 });
    await runHead(chunked, { rows: 3, K: 44, vocab: 301, norm: true, seed: 11, half: 'bf16', chunks: 7 });
  });

  it('keeps the argmax rules over blocks: lowest index among ties across blocks, NaN skipped, -1 for a NaN row', async () => {
    const rows = 3;
    const K = 12;
    const vocab = 50;
    // One-hot x rows: logits are one column of the table.
    const x = new Float32Array(rows * K);
    x[0] = 1;
    x[K + 1] = 1;
    x[2 * K + 2] = Number.NaN;
    const table = new Float32Array(vocab * K);
    for (let v = 0; v < vocab; v++) {
      table[v * K] = v === 9 || v === 30 || v === 44 ? 4 : -(v % 5); // row 0: a tie across blocks
      table[v * K + 1] = v === 3 ? Number.NaN : v === 20 ? 1 : -1; // row 1: a NaN before the best
    }
    for (const on of [small, device, gpuLike]) {
      const out = on.empty([rows, vocab], 'f32');
      const ids = on.fromArray(new Int32Array(rows), [rows], 'i32');
      const tokens = on.fromArray(new Int32Array(rows), [rows], 'i32');
      decodeHead(on, {
        x: on.fromArray(x, [rows, K], 'f32'),
        weight: on.fromArray(table, [vocab, K], 'f32'),
        out,
        argmax: { ids, tokens, at: 0 },
      });
      await expectKernel('ties and NaN', {
        ids: { actual: ids, expected: [9, 20, -1], exact: true },
        tokens: { actual: tokens, expected: [9, 20, -1], exact: true },
      });
    }
  });

  it('falls back to decode matvec + argmax where the tuning has no streaming head (GPU classes), with the same results', async () => {
    await runHead(gpuLike, { rows: 2, K: 36, vocab: 203, norm: true, seed: 8 });
    await runHead(device, { rows: 6, K: 36, vocab: 203, norm: true, seed: 9 });
  });
});

import { expectClose, Rng, requireF16 } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { roundToF16 } from '../../tensor/dtype.js';
import { scatterAddReference } from './reference.js';
import { scatterAdd } from './scatter-add.js';

let device: Device;
let small: Device;
beforeAll(async () => {
  device = await createDevice();
  // 2 KiB per binding: the targets below split in chunks, ids and rows do not.
  small = await createDevice({ maxBindingBytes: 2048 });
});
afterAll(() => small.destroy());

/** Sequential f32 sums in token order: what the kernel computes, bit for bit. */
function scatterAddF32(
  target: Float32Array,
  vocab: number,
  dim: number,
  ids: ArrayLike<number>,
  rows: Float32Array,
): Float32Array {
  const out = Float32Array.from(target);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (id < 0 || id >= vocab) continue;
    for (let c = 0; c < dim; c++) out[id * dim + c] = Math.fround(out[id * dim + c] + rows[i * dim + c]);
  }
  return out;
}

describe('scatterAdd', () => {
  const CASES: { vocab: number; dim: number; idsShape: number[] }[] = [
    { vocab: 1, dim: 1, idsShape: [1] },
    { vocab: 50, dim: 8, idsShape: [13] },
    { vocab: 10, dim: 7, idsShape: [4, 25] },
    { vocab: 1000, dim: 288, idsShape: [3, 33] },
  ];
  for (const { vocab, dim, idsShape } of CASES) {
    it(`adds rows into [${vocab}, ${dim}] at ids ${JSON.stringify(idsShape)} with repeats`, async () => {
      const rng = new Rng(vocab + dim * 17);
      const tokens = idsShape.reduce((p, d) => p * d, 1);
      const targetData = rng.uniform(vocab * dim);
      const rows = rng.uniform(tokens * dim);
      const ids = rng.integers(tokens, 0, Math.min(vocab, Math.max(1, tokens >> 2)));
      const target = device.fromArray(targetData, [vocab, dim], 'f32');
      const result = scatterAdd(
        target,
        device.fromArray(ids, idsShape, 'i32'),
        device.fromArray(rows, [...idsShape, dim], 'f32'),
      );
      expect(result).toBe(target);
      const values = await target.toArray();
      expectClose(values, scatterAddReference(targetData, vocab, dim, ids, rows), { rtol: 1e-5, atol: 1e-5 });
      expect(Array.from(values)).toEqual(Array.from(scatterAddF32(targetData, vocab, dim, ids, rows)));
    });
  }

  it('sums a long run of one id (a pad token) and skips ids outside the target', async () => {
    const vocab = 6;
    const dim = 12;
    const tokens = 700;
    const rng = new Rng(21);
    const ids = new Int32Array(tokens).fill(3);
    for (let i = 0; i < tokens; i += 9) ids[i] = [-1, 6, 0, 2 ** 31 - 1][i % 4];
    const rows = rng.uniform(tokens * dim);
    const targetData = rng.uniform(vocab * dim);
    const target = device.fromArray(targetData, [vocab, dim], 'f32');
    scatterAdd(target, device.fromArray(ids, [tokens], 'i32'), device.fromArray(rows, [tokens, dim], 'f32'));
    const values = await target.toArray();
    expect(Array.from(values)).toEqual(Array.from(scatterAddF32(targetData, vocab, dim, ids, rows)));
    expectClose(values, scatterAddReference(targetData, vocab, dim, ids, rows), { rtol: 1e-5, atol: 1e-5 });
    // Untouched rows keep their values exactly.
    expect(Array.from(values.subarray(5 * dim))).toEqual(Array.from(targetData.subarray(5 * dim)));
  });

  it('takes u32 ids and gives the same bits on every run', async () => {
    const vocab = 40;
    const dim = 16;
    const rng = new Rng(5);
    const ids = rng.integers(300, 0, 40);
    const rows = rng.normal(300 * dim);
    const run = async () => {
      const target = device.fromArray(new Float32Array(vocab * dim), [vocab, dim], 'f32');
      scatterAdd(target, device.fromArray(ids, [300], 'u32'), device.fromArray(rows, [300, dim], 'f32'));
      return target.toArray();
    };
    const first = await run();
    expect(Array.from(await run())).toEqual(Array.from(first));
    expectClose(first, scatterAddReference(new Float32Array(vocab * dim), vocab, dim, ids, rows), {
      rtol: 1e-5,
      atol: 1e-5,
    });
  });

  it('updates a target split in chunks', async () => {
    for (const dim of [12, 5]) {
      const vocab = 200;
      const rng = new Rng(dim + 100);
      const ids = rng.integers(40, -1, vocab + 1);
      const rows = rng.uniform(40 * dim);
      const targetData = rng.uniform(vocab * dim);
      await small.scope(async () => {
        const target = small.fromArray(targetData, [vocab, dim], 'f32');
        expect(target.chunks.length).toBeGreaterThan(1);
        scatterAdd(
          target,
          small.fromArray(ids, [40], 'i32'),
          small.fromArray(rows.subarray(0, 40 * dim), [40, dim], 'f32'),
        );
        expect(Array.from(await target.toArray())).toEqual(
          Array.from(scatterAddF32(targetData, vocab, dim, ids, rows)),
        );
      });
    }
  });

  it('accumulates f16 targets in f32', async (context) => {
    requireF16(context, device.hasF16);
    const vocab = 20;
    const dim = 8;
    const rng = new Rng(31);
    const ids = rng.integers(64, 0, 5);
    const rows = roundToF16(rng.uniform(64 * dim));
    const targetData = roundToF16(rng.uniform(vocab * dim));
    const target = device.fromArray(targetData, [vocab, dim], 'f16');
    scatterAdd(target, device.fromArray(ids, [64], 'i32'), device.fromArray(rows, [64, dim], 'f16'));
    expectClose(await target.toArray(), scatterAddReference(targetData, vocab, dim, ids, rows), {
      rtol: 2e-3,
      atol: 5e-3,
    });
  });

  it('handles 4096 tokens into a 32,000 x 288 table (stories15M embedding gradient)', async () => {
    const vocab = 32_000;
    const dim = 288;
    const tokens = 4096;
    const rng = new Rng(4096);
    const ids = rng.integers(tokens, 0, 2000);
    const rows = rng.uniform(tokens * dim);
    const targetData = new Float32Array(vocab * dim);
    await device.scope(async () => {
      const target = device.fromArray(targetData, [vocab, dim], 'f32');
      const idsTensor = device.fromArray(ids, [tokens], 'i32');
      const rowsTensor = device.fromArray(rows, [tokens, dim], 'f32');
      await device.sync();
      const started = performance.now();
      scatterAdd(target, idsTensor, rowsTensor);
      await device.sync();
      const elapsed = performance.now() - started;
      console.log(`scatterAdd 4096 x 288 into 32000 rows: ${elapsed.toFixed(1)} ms`);
      const values = await target.toArray();
      expectClose(values, scatterAddReference(targetData, vocab, dim, ids, rows), { rtol: 1e-5, atol: 1e-5 });
    });
  });

  it('spreads more than 65,535 workgroups over two grid dimensions', async () => {
    const dim = 2049;
    const tokens = Math.ceil((65_536 * device.tuning.elementwiseWorkgroup) / dim) + 1;
    const vocab = 300;
    const rng = new Rng(65);
    const ids = rng.integers(tokens, 0, vocab);
    const rows = rng.uniform(tokens * dim);
    const target = device.fromArray(new Float32Array(vocab * dim), [vocab, dim], 'f32');
    scatterAdd(target, device.fromArray(ids, [tokens], 'i32'), device.fromArray(rows, [tokens, dim], 'f32'));
    const values = await target.toArray();
    const expected = scatterAddF32(new Float32Array(vocab * dim), vocab, dim, ids, rows);
    let mismatches = 0;
    for (let i = 0; i < expected.length; i++) if (values[i] !== expected[i]) mismatches++;
    expect(mismatches).toBe(0);
  });

  it('rejects mismatched shapes and dtypes', () => {
    const target = device.fromArray(new Float32Array(12), [3, 4], 'f32');
    const ids = device.fromArray([0, 1], [2], 'i32');
    const rows = device.fromArray(new Float32Array(8), [2, 4], 'f32');
    expect(() => scatterAdd(target, ids, rows.reshape([4, 2]))).toThrow(
      /rows must be \[\.\.\.ids\.shape, dim\] = \[2, 4\]/,
    );
    expect(() => scatterAdd(target.reshape([12]), ids, rows)).toThrow(/\[vocab, dim\]/);
    expect(() => scatterAdd(target, device.fromArray([0, 1], [2], 'f32'), rows)).toThrow(
      /ids must be i32 or u32/,
    );
    expect(() => scatterAdd(target, ids, device.fromArray(new Int32Array(8), [2, 4], 'i32'))).toThrow(
      /dtype/,
    );
  });
});

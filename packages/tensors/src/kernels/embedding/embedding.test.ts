import { Rng, requireF16 } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import { type Device, grid } from '../../device/device.js';
import { roundToF16 } from '../../tensor/dtype.js';
import type { Tensor } from '../../tensor/tensor.js';
import { kernelSource, workgroupsFor } from '../shared/wgsl.js';
import { embedding } from './embedding.js';
import { embeddingReference } from './reference.js';

let device: Device;
let small: Device;
beforeAll(async () => {
  device = await createDevice();
  // 256 bytes per binding: tables and outputs of a few rows split into many chunks.
  small = await createDevice({ maxBindingBytes: 256 });
});
afterAll(() => small.destroy());

const size = (shape: number[]) => shape.reduce((p, d) => p * d, 1);

describe('embedding', () => {
  const CASES: { vocab: number; dim: number; idsShape: number[] }[] = [
    { vocab: 50, dim: 8, idsShape: [13] },
    { vocab: 50, dim: 7, idsShape: [2, 7] },
    { vocab: 1, dim: 1, idsShape: [1] },
    { vocab: 1000, dim: 288, idsShape: [3, 33] },
    { vocab: 33, dim: 12, idsShape: [] },
  ];
  for (const { vocab, dim, idsShape } of CASES) {
    it(`gathers [${vocab}, ${dim}] at ids ${JSON.stringify(idsShape)}`, async () => {
      const rng = new Rng(vocab * 131 + dim);
      const tableData = rng.uniform(vocab * dim);
      const ids = rng.integers(size(idsShape), 0, vocab);
      await device.scope(async () => {
        const out = embedding(
          device.fromArray(tableData, [vocab, dim], 'f32'),
          device.fromArray(ids, idsShape, 'i32'),
        );
        expect(out.shape).toEqual([...idsShape, dim]);
        expect(Array.from(await out.toArray())).toEqual(
          Array.from(embeddingReference(tableData, vocab, dim, ids)),
        );
      });
    });
  }

  it('gives zero rows for ids outside the table (i32 and u32)', async () => {
    const vocab = 20;
    const dim = 8;
    const tableData = new Rng(4).uniform(vocab * dim, 1, 2);
    const ids = [-1, 0, 19, 20, 2 ** 31 - 1, -(2 ** 31), 5];
    const table = device.fromArray(tableData, [vocab, dim], 'f32');
    // Leave nonzero values in the pooled buffer the next output will reuse, so zeros must be written.
    const dirty = embedding(table, device.fromArray([1, 2, 3, 4, 5, 6, 7], [7], 'i32'));
    expect((await dirty.toArray())[0]).not.toBe(0);
    dirty.dispose();
    device.flush();
    const expected = embeddingReference(tableData, vocab, dim, ids);
    const out = await embedding(table, device.fromArray(ids, [ids.length], 'i32')).toArray();
    expect(Array.from(out)).toEqual(Array.from(expected));
    for (const t of [0, 3, 4, 5])
      expect(Array.from(out.subarray(t * dim, (t + 1) * dim))).toEqual(new Array(dim).fill(0));
    const unsigned = [0, 20, 4_000_000_000, 19];
    const outU = await embedding(table, device.fromArray(unsigned, [4], 'u32')).toArray();
    expect(Array.from(outU)).toEqual(Array.from(embeddingReference(tableData, vocab, dim, unsigned)));
    // Also from a chunked table, where no chunk holds the id.
    const chunked = small.fromArray(tableData, [vocab, dim], 'f32');
    expect(chunked.chunked).toBe(true);
    const outC = await embedding(chunked, small.fromArray(ids, [ids.length], 'i32')).toArray();
    expect(Array.from(outC)).toEqual(Array.from(expected));
  });

  it('reads tables and writes outputs split in chunks', async () => {
    for (const dim of [24, 7]) {
      const vocab = 100;
      const rng = new Rng(dim);
      const tableData = rng.uniform(vocab * dim);
      const ids = rng.integers(60, -2, vocab + 2);
      ids[0] = vocab - 1;
      await small.scope(async () => {
        const table = small.fromArray(tableData, [vocab, dim], 'f32');
        expect(table.chunks.length).toBeGreaterThan(5);
        const out = embedding(table, small.fromArray(ids, [6, 10], 'i32'));
        expect(out.chunked).toBe(true);
        expect(Array.from(await out.toArray())).toEqual(
          Array.from(embeddingReference(tableData, vocab, dim, ids)),
        );
      });
    }
  });

  it('gathers f16 tables', async (context) => {
    requireF16(context, device.hasF16);
    const tableData = roundToF16(new Rng(8).uniform(64 * 20));
    const ids = new Rng(9).integers(31, -1, 65);
    for (const [vocab, dim] of [
      [64, 20],
      [128, 10],
    ]) {
      const out = embedding(
        device.fromArray(tableData, [vocab, dim], 'f16'),
        device.fromArray(ids, [31], 'i32'),
      );
      expect(out.dtype).toBe('f16');
      expect(Array.from(await out.toArray())).toEqual(
        Array.from(embeddingReference(tableData, vocab, dim, ids)),
      );
    }
  });

  it('spreads more than 65,535 workgroups over two grid dimensions', async () => {
    const dim = 3;
    const vocab = 97;
    const tokens = Math.ceil((65_536 * device.tuning.elementwiseWorkgroup) / dim) + 5;
    const tableData = new Float32Array(vocab * dim).map((_, i) => i);
    const ids = new Int32Array(tokens).map((_, t) => (t * 7) % vocab);
    const out = await embedding(
      device.fromArray(tableData, [vocab, dim], 'f32'),
      device.fromArray(ids, [tokens], 'i32'),
    ).toArray();
    const expected = embeddingReference(tableData, vocab, dim, ids);
    expect(out.length).toBe(expected.length);
    let mismatches = 0;
    for (let i = 0; i < expected.length; i++) if (out[i] !== expected[i]) mismatches++;
    expect(mismatches).toBe(0);
  });

  it('gathers from a 151,936 x 1,024 f32 table (594 MiB) filled on the GPU', async () => {
    const vocab = 151_936;
    const dim = 1024;
    // Element (row, column) holds (row * 1024 + column) mod 16777213: below 2^24, so exact in f32.
    const modulus = 16_777_213;
    const expectedValue = (row: number, column: number) => (row * dim + column) % modulus;
    const table = device.empty([vocab, dim], 'f32');
    try {
      if (device.maxBindingBytes < vocab * dim * 4) expect(table.chunked).toBe(true);
      fillPattern(device, table, modulus);
      const ids = [0, 1, vocab - 1, vocab - 2, 100_000, 77_777, -1, vocab];
      for (const chunk of table.chunks) {
        const first = chunk.elementOffset / dim;
        ids.push(first, first + chunk.elements / dim - 1);
      }
      const out = embedding(table, device.fromArray(ids, [ids.length], 'i32'));
      const values = await out.toArray();
      out.dispose();
      ids.forEach((id, t) => {
        for (let column = 0; column < dim; column++) {
          const expected = id < 0 || id >= vocab ? 0 : expectedValue(id, column);
          if (values[t * dim + column] !== expected) {
            throw new Error(
              `id ${id} column ${column}: got ${values[t * dim + column]}, expected ${expected}`,
            );
          }
        }
      });
    } finally {
      table.dispose();
      device.trimPool();
    }
    expect(table.disposed).toBe(true);
  });

  it('rejects bad tables and ids', () => {
    const table = device.fromArray(new Float32Array(12), [3, 4], 'f32');
    const ids = device.fromArray([0, 1], [2], 'i32');
    expect(() => embedding(table.reshape([12]), ids)).toThrow(/\[vocab, dim\]/);
    expect(() => embedding(table, device.fromArray([0, 1], [2], 'f32'))).toThrow(/ids must be i32 or u32/);
    expect(() => embedding(device.fromArray([0, 1], [1, 2], 'i32'), ids)).toThrow(/table must be f32 or f16/);
    expect(() => embedding(table, small.fromArray([0], [1], 'i32'))).toThrow(/different devices/);
  });
});

/** Test helper: writes (elementIndex mod modulus) into every element of a chunked f32 tensor. */
function fillPattern(target: Device, tensor: Tensor, modulus: number): void {
  const fields = [
    { name: 'n', type: 'u32' as const },
    { name: 'first', type: 'u32' as const },
    { name: 'modulus', type: 'u32' as const },
  ];
  const wg = target.tuning.elementwiseWorkgroup;
  for (const chunk of tensor.chunks) {
    target.dispatch({
      key: 'embedding-test-pattern',
      source: () =>
        kernelSource({
          storage: [{ name: 'out', type: 'f32', access: 'read_write' }],
          uniforms: fields,
          workgroupSize: wg,
          body: `
  let index = flat_workgroup(wid, nwg) * WG + lid.x;
  if (index >= params.n) { return; }
  out[index] = f32((params.first + index) % params.modulus);`,
        }),
      bindings: [{ buffer: chunk.buffer, offset: 0, size: chunk.buffer.size }],
      uniforms: { fields, values: { n: chunk.elements, first: chunk.elementOffset, modulus } },
      workgroups: grid(workgroupsFor(chunk.elements, wg), target.maxWorkgroupsPerDimension),
    });
  }
}

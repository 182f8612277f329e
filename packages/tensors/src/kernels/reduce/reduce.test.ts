import { expectClose, Rng, requireF16 } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { roundToF16 } from '../../tensor/dtype.js';
import { expectKernel } from '../../testing/expect-kernel.js';
import { argmax, max, mean, type ReduceOp, reduce, sum } from './reduce.js';
import { reduceReference } from './reference.js';

let device: Device;
let smallBindings: Device;
beforeAll(async () => {
  device = await createDevice();
  // 4 KiB per binding: tensors above 1024 f32 values are split into chunks of whole rows.
  smallBindings = await createDevice({ maxBindingBytes: 4096 });
});

const OPS: ReduceOp[] = ['sum', 'mean', 'max', 'argmax'];
const CASES: [number[], number | null][] = [
  [[1], 0],
  [[7], -1],
  [[33], 0],
  [[1000], 0],
  [[7, 33], 0],
  [[7, 33], 1],
  [[33, 1000], -1],
  [[3, 1000, 5], 1],
  [[2, 3, 4, 5], 2],
  [[4, 7, 1], 2],
  [[5, 7, 33], null],
];

async function check(
  op: ReduceOp,
  data: Float32Array,
  shape: number[],
  axis: number | null,
  keepDims = false,
) {
  const expected = reduceReference(op, data, shape, axis, { keepDims });
  await device.scope(async () => {
    const out = reduce(op, device.fromArray(data, shape, 'f32'), axis, { keepDims });
    if (op === 'argmax') expect(out.dtype).toBe('i32');
    await expectKernel(
      `${op} ${JSON.stringify(shape)} axis ${axis}`,
      { [op]: { actual: out, expected: expected.data, shape: expected.shape, exact: op === 'argmax' } },
      { rtol: 2e-6, atol: 1e-5 },
    );
  });
}

describe('reduce', () => {
  for (const [shape, axis] of CASES) {
    it(`sum, mean, max, argmax of ${JSON.stringify(shape)} over axis ${axis}`, async () => {
      const rng = new Rng(shape.length * 101 + shape[0] + (axis ?? 9));
      const size = shape.reduce((p, d) => p * d, 1);
      // Small integers: many exact ties, so argmax must pick the first index.
      const ties = Float32Array.from(rng.integers(size, -4, 5));
      const data = rng.uniform(size, -2, 2);
      for (const op of OPS) {
        await check(op, data, shape, axis);
        await check(op, ties, shape, axis, true);
      }
    });
  }

  it('sums 1,000,000 values with float64-like accuracy (split axis, two passes)', async () => {
    const rng = new Rng(77);
    const n = 1_000_000;
    const data = rng.uniform(n, -1, 1.5);
    const expected = reduceReference('sum', data, [n], 0).data[0];
    const x = device.fromArray(data, [n], 'f32');
    const before = device.stats.dispatches;
    const total = sum(x, 0);
    expect(device.stats.dispatches - before, 'segments, then their partial sums').toBeGreaterThanOrEqual(2);
    expectClose([await total.item()], [expected], { rtol: 1e-5, atol: 0, label: 'sum' });
    expectClose([await mean(x).item()], [expected / n], { rtol: 1e-5, atol: 0, label: 'mean' });
    data[654_321] = 9;
    data[876_543] = 9;
    device.write(x, data);
    expect(await max(x).item()).toBe(9);
    expect(await argmax(x).item()).toBe(654_321);
    // A plain f32 running sum of these values drifts well beyond 1e-5; check that the data
    // really needs the blocked, compensated summation.
    let naive = Math.fround(0);
    for (const v of data) naive = Math.fround(naive + v);
    const exactAfterWrite = reduceReference('sum', data, [n], 0).data[0];
    expect(Math.abs(naive - exactAfterWrite) / Math.abs(exactAfterWrite)).toBeGreaterThan(1e-5);
    expectClose([await sum(x).item()], [exactAfterWrite], { rtol: 1e-5, atol: 0, label: 'sum after write' });
    x.dispose();
  });

  it('reduces a long strided axis (column layout with segments)', async () => {
    const rng = new Rng(78);
    const shape = [200_003, 3];
    const data = rng.uniform(shape[0] * shape[1], -1, 1.5);
    for (const op of OPS) await check(op, data, shape, 0);
    const long = [2, 50_001, 1];
    await check('sum', data.subarray(0, 100_002), long, 1);
  });

  it('reduces more than 65,535 rows (grid split) and more than 65,535 x WG outputs', async () => {
    const rng = new Rng(79);
    const rowsShape = [70_001, 64];
    const rows = rng.uniform(rowsShape[0] * 64, -1, 1);
    await check('sum', rows, rowsShape, -1);
    await check('argmax', rows, rowsShape, -1);
    const outputs = 65_535 * device.tuning.elementwiseWorkgroup + 7;
    const columns = rng.uniform(2 * outputs, -1, 1);
    await check('max', columns, [2, outputs], 0);
  });

  it('reduces f16 tensors in f32 and returns f16', async (context) => {
    requireF16(context, device.hasF16);
    const rng = new Rng(80);
    const shape = [33, 1000];
    const data = roundToF16(rng.uniform(33_000, -1, 1));
    const x = device.fromArray(data, shape, 'f16');
    for (const op of ['sum', 'mean', 'max'] as const) {
      const out = reduce(op, x, -1);
      expect(out.dtype).toBe('f16');
      const expected = roundToF16(reduceReference(op, data, shape, -1).data);
      expectClose(await out.toArray(), expected, { rtol: 2e-3, atol: 2e-3, label: op });
    }
    const indices = await argmax(x, 0).toArray();
    expect(Array.from(indices)).toEqual(Array.from(reduceReference('argmax', data, shape, 0).data));
  });

  it('reduces the rows of chunked tensors, and all their elements', async () => {
    const rng = new Rng(81);
    for (const shape of [
      [100, 33],
      [64, 64],
    ]) {
      const data = rng.uniform(shape[0] * shape[1], -2, 2);
      const x = smallBindings.fromArray(data, shape, 'f32');
      expect(x.chunked).toBe(true);
      for (const op of OPS) {
        const out = reduce(op, x, -1);
        const expected = reduceReference(op, data, shape, -1).data;
        if (op === 'argmax') expect(Array.from(await out.toArray())).toEqual(Array.from(expected));
        else expectClose(await out.toArray(), expected, { rtol: 2e-6, atol: 1e-5, label: `${op} rows` });
      }
      for (const op of ['sum', 'mean', 'max'] as const) {
        const out = reduce(op, x, null, { keepDims: true });
        expect(out.shape).toEqual([1, 1]);
        expectClose(await out.toArray(), reduceReference(op, data, shape, null).data, {
          rtol: 2e-6,
          atol: 1e-5,
          label: `${op} all`,
        });
      }
      expect(() => sum(x, 0)).toThrow(/sum: .* is split in \d+ chunks of whole rows; only its last axis/);
      expect(() => argmax(x)).toThrow(/argmax: a flat argmax .* is not supported/);
    }
  });

  it('splits long rows of chunked tensors into segments', async () => {
    // 1 MiB per binding: 4 rows of 65,536 f32 per chunk, each row long enough to be split.
    const medium = await createDevice({ maxBindingBytes: 1 << 20 });
    const shape = [9, 65_536];
    const data = new Rng(82).uniform(9 * 65_536, -1, 1.5);
    const x = medium.fromArray(data, shape, 'f32');
    expect(x.chunks.length).toBe(3);
    for (const op of OPS) {
      const expected = reduceReference(op, data, shape, -1).data;
      const out = await reduce(op, x, -1).toArray();
      if (op === 'argmax') expect(Array.from(out)).toEqual(Array.from(expected));
      else expectClose(out, expected, { rtol: 1e-5, atol: 1e-5, label: op });
    }
    expectClose([await mean(x).item()], reduceReference('mean', data, shape, null).data, { rtol: 1e-5 });
    medium.destroy();
  });

  it('handles empty axes and rejects bad input', async () => {
    expect(Array.from(await sum(device.empty([3, 0], 'f32'), 1).toArray())).toEqual([0, 0, 0]);
    expect(Number.isNaN(await mean(device.empty([0], 'f32')).item())).toBe(true);
    expect(() => max(device.empty([0, 2], 'f32'), 0)).toThrow(/max: the reduced axis .* is empty/);
    const x = device.fromArray([1, 2, 3], [3], 'f32');
    expect(() => sum(x, 1)).toThrow(/sum: axis 1 is out of range for shape \[3\]/);
    expect(() => sum(device.fromArray([1, 2], [2], 'i32'), 0)).toThrow(/sum: input .* must be f32 or f16/);
  });
});

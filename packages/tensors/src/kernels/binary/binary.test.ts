import { expectClose, Rng, requireF16 } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { roundToF16 } from '../../tensor/dtype.js';
import { type BinaryOp, binary } from './binary.js';
import { binaryReference } from './reference.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});

const ARITHMETIC: BinaryOp[] = ['add', 'sub', 'mul', 'div', 'maximum', 'minimum'];
const COMPARISONS: BinaryOp[] = ['eq', 'ne', 'lt', 'le', 'gt', 'ge'];
const SHAPES: [number[], number[]][] = [
  [[1], [1]],
  [[7], [7]],
  [
    [33, 5],
    [33, 5],
  ],
  [[1000], [1]],
  [[4, 7, 33], [33]],
  [
    [4, 1, 33],
    [1, 7, 1],
  ],
  [
    [3, 5, 1, 2],
    [5, 7, 1],
  ],
  [
    [2, 3, 4, 5, 6],
    [3, 1, 5, 1],
  ],
];

describe('binary', () => {
  for (const [aShape, bShape] of SHAPES) {
    it(`arithmetic and comparisons at ${JSON.stringify(aShape)} x ${JSON.stringify(bShape)}`, async () => {
      const rng = new Rng(aShape.length * 31 + bShape.length);
      const aData = rng.uniform(
        aShape.reduce((p, d) => p * d, 1),
        -2,
        2,
      );
      const bData = rng.uniform(
        bShape.reduce((p, d) => p * d, 1),
        0.5,
        2,
      );
      // Some equal values so eq/le/ge see both outcomes.
      for (let i = 0; i < Math.min(aData.length, bData.length); i += 3) aData[i] = bData[i];
      for (const op of [...ARITHMETIC, ...COMPARISONS]) {
        await device.scope(async () => {
          const a = device.fromArray(aData, aShape, 'f32');
          const b = device.fromArray(bData, bShape, 'f32');
          const out = binary(op, a, b);
          const expected = binaryReference(op, aData, aShape, bData, bShape);
          expect(out.shape).toEqual(expected.shape);
          expect(out.dtype).toBe(COMPARISONS.includes(op) ? 'u32' : 'f32');
          expectClose(await out.toArray(), expected.data, { rtol: 1e-6, label: op });
        });
      }
    });
  }

  it('pow on positive bases', async () => {
    const rng = new Rng(5);
    const a = rng.uniform(777, 0.1, 3);
    const b = rng.uniform(777, -2, 2);
    const out = binary('pow', device.fromArray(a, [777], 'f32'), device.fromArray(b, [777], 'f32'));
    expectClose(await out.toArray(), binaryReference('pow', a, [777], b, [777]).data, { rtol: 1e-5 });
  });

  it('takes a number as the second operand', async () => {
    const a = new Rng(2).uniform(1001);
    const out = binary('mul', device.fromArray(a, [1001], 'f32'), 2.5);
    expectClose(
      await out.toArray(),
      Array.from(a, (x) => x * 2.5),
      { rtol: 1e-6 },
    );
    const out4 = binary('add', device.fromArray(a.subarray(0, 1000), [1000], 'f32'), -1);
    expectClose(
      await out4.toArray(),
      Array.from(a.subarray(0, 1000), (x) => x - 1),
      { rtol: 1e-6 },
    );
  });

  it('works on integer tensors', async () => {
    const a = new Rng(3).integers(513, -50, 50);
    const b = new Rng(4).integers(513, 1, 9);
    const ta = device.fromArray(a, [513], 'i32');
    const tb = device.fromArray(b, [513], 'i32');
    expect(Array.from(await binary('add', ta, tb).toArray())).toEqual(Array.from(a, (x, i) => x + b[i]));
    expect(Array.from(await binary('lt', ta, tb).toArray())).toEqual(Array.from(a, (x, i) => +(x < b[i])));
  });

  it('computes f16 tensors in f32 and rounds the result', async (context) => {
    requireF16(context, device.hasF16);
    const rng = new Rng(9);
    const a = roundToF16(rng.uniform(1000));
    const b = roundToF16(rng.uniform(1000));
    const out = binary('mul', device.fromArray(a, [10, 100], 'f16'), device.fromArray(b, [10, 100], 'f16'));
    expect(out.dtype).toBe('f16');
    expectClose(await out.toArray(), roundToF16(Array.from(a, (x, i) => x * b[i])), {
      rtol: 1e-3,
      atol: 1e-4,
    });
  });

  it('spreads more than 65,535 workgroups over two grid dimensions', async () => {
    const n = 65_535 * device.tuning.elementwiseWorkgroup * 4 + 4 * 1001;
    const a = new Float32Array(n).map((_, i) => i % 1013);
    // Flat path: a length that is not a multiple of 4 takes one element per item, and each
    // invocation handles elementwisePerInvocation items.
    const flat = 65_535 * device.tuning.elementwiseWorkgroup * device.tuning.elementwisePerInvocation + 1001;
    const out = binary('add', device.fromArray(a.subarray(0, flat), [flat], 'f32'), 1);
    const result = await out.toArray();
    expect(result[flat - 1]).toBe(((flat - 1) % 1013) + 1);
    expect(result[flat - 4096]).toBe(((flat - 4096) % 1013) + 1);
    const strided = binary(
      'sub',
      device.fromArray(a, [n / 4, 4], 'f32'),
      device.fromArray([1, 2, 3, 4], [4], 'f32'),
    );
    const s = await strided.toArray();
    expect(s[n - 1]).toBe(((n - 1) % 1013) - 4);
    expect(s[n - 2]).toBe(((n - 2) % 1013) - 3);
  });

  it('rejects shapes that do not broadcast and mixed dtypes', () => {
    const a = device.fromArray([1, 2, 3], [3], 'f32');
    expect(() => binary('add', a, device.fromArray([1, 2], [2], 'f32'))).toThrow(/cannot be broadcast/);
    expect(() => binary('add', a, device.fromArray([1, 2, 3], [3], 'i32'))).toThrow(/dtypes differ/);
  });
});

import { expectClose, Rng, requireF16 } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device, KernelLaunch } from '../../device/device.js';
import { roundToF16 } from '../../tensor/dtype.js';
import { sizeOf } from '../../tensor/shape.js';
import { matmul } from '../matmul/matmul.js';
import { matmulReference } from '../matmul/reference.js';
import { matmulCapabilities, selectMatmulVariant } from './select-variant.js';

// The GPU kernels run on lavapipe by asking for them through the tuning (the software class
// prefers the register kernel). Each device records the matmul pipelines it dispatches, so a test
// fails if the tiled kernel was not the one that ran.
interface Recorded {
  device: Device;
  keys: string[];
}
type Kind = 'workgroup' | 'subgroup';
const devices: Record<Kind, Recorded> = {} as never;

beforeAll(async () => {
  for (const kind of ['workgroup', 'subgroup'] as const) {
    const device = await createDevice({ tuning: { matmulKernel: kind } });
    const keys: string[] = [];
    const dispatch = device.dispatch.bind(device);
    device.dispatch = (launch: KernelLaunch) => {
      keys.push(launch.key);
      return dispatch(launch);
    };
    devices[kind] = { device, keys };
  }
});
afterAll(() => {
  for (const { device } of Object.values(devices)) device.destroy();
});

interface Case {
  a: number[];
  b: number[];
  transposeA?: boolean;
  transposeB?: boolean;
  bias?: boolean;
}

async function check(kind: Kind, c: Case, seed: number, dtype: 'f32' | 'f16' = 'f32', tile = '') {
  const { device, keys } = devices[kind];
  const rng = new Rng(seed);
  const round = (data: Float32Array) => (dtype === 'f16' ? roundToF16(data) : data);
  const aData = round(rng.uniform(sizeOf(c.a)));
  const bData = round(rng.uniform(sizeOf(c.b)));
  const n = c.transposeB ? c.b[c.b.length - 2] : c.b[c.b.length - 1];
  const biasData = c.bias ? round(rng.uniform(n)) : undefined;
  const options = { transposeA: c.transposeA, transposeB: c.transposeB };
  const expected = matmulReference(aData, c.a, bData, c.b, { ...options, bias: biasData });
  keys.length = 0;
  await device.scope(async () => {
    const out = matmul(device.fromArray(aData, c.a, dtype), device.fromArray(bData, c.b, dtype), {
      ...options,
      bias: biasData ? device.fromArray(biasData, [n], dtype) : null,
    });
    expect(out.shape).toEqual(expected.shape);
    expect(out.dtype).toBe(dtype);
    const label = `${kind} ${dtype} ${JSON.stringify(c)}`;
    const tolerance = dtype === 'f16' ? 2e-3 : 2e-5;
    const want = dtype === 'f16' ? roundToF16(expected.data) : expected.data;
    expectClose(await out.toArray(), want, { rtol: tolerance, atol: tolerance, label });
  });
  expect(keys.filter((key) => key.startsWith('matmul:tiled:'))).toHaveLength(1);
  const tiled = keys.find((key) => key.startsWith('matmul:tiled:')) ?? '';
  expect(tiled).toContain(`:${kind}:${tile}`);
}

describe.each(['workgroup', 'subgroup'] as const)('%s-tiled matmul', (kind) => {
  it('is the variant this tuning selects', () => {
    const selection = selectMatmulVariant(matmulCapabilities(devices[kind].device), {
      dtype: 'f32',
      rows: 64,
      cols: 64,
      folded: true,
      transposeA: false,
      chunked: false,
    });
    expect(selection.variant).toBe(`${kind}-tiled`);
  });

  it('matches the float64 reference at odd sizes in all four transpose layouts', async () => {
    // K = 17 reads every layout one value at a time; K = 64 reads k-contiguous operands as vec4.
    const shapes: [number, number, number][] = [
      [33, 17, 65],
      [70, 64, 33],
    ];
    for (const [m, k, n] of shapes) {
      for (const transposeA of [false, true]) {
        for (const transposeB of [false, true]) {
          const c = {
            a: transposeA ? [k, m] : [m, k],
            b: transposeB ? [n, k] : [k, n],
            transposeA,
            transposeB,
          };
          await check(kind, c, m * 1000 + k * 10 + n + (transposeA ? 1 : 0) + (transposeB ? 2 : 0));
        }
      }
    }
  });

  it('adds a bias and broadcasts batch dimensions', async () => {
    await check(kind, { a: [33, 20], b: [20, 45], bias: true }, 1);
    await check(kind, { a: [2, 9, 24], b: [48, 24], transposeB: true, bias: true }, 2);
    await check(kind, { a: [2, 1, 9, 12], b: [3, 12, 12] }, 3);
    await check(kind, { a: [4, 12, 9], b: [4, 10, 12], transposeA: true, transposeB: true }, 4);
    await check(kind, { a: [2, 3, 12, 9], b: [3, 12, 10], transposeA: true }, 6);
  });

  it('gives the bias, or zeros, when K is 0', async () => {
    const { device } = devices[kind];
    await device.scope(async () => {
      const bias = device.fromArray([1, 2, 3], [3], 'f32');
      const out = matmul(device.empty([5, 0], 'f32'), device.empty([0, 3], 'f32'), { bias });
      expect(Array.from(await out.toArray())).toEqual([1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3]);
    });
  });

  it('reads f16 operands in place (vec4<f16> where K is contiguous) and accumulates in f32', async (context) => {
    requireF16(context, devices[kind].device.hasF16);
    // K = 40: a and a transposed b are read as vec4<f16>; the other layouts one f16 at a time.
    await check(kind, { a: [21, 40], b: [33, 40], transposeB: true, bias: true }, 7, 'f16');
    await check(kind, { a: [40, 21], b: [40, 33], transposeA: true }, 8, 'f16');
    await check(kind, { a: [3, 10, 13], b: [3, 13, 9] }, 9, 'f16');
  });
});

it('runs the 128 x 128 tile (8 x 8 per invocation) of large products', async () => {
  // 1,030 x 1,024 rows and columns select the large tile; K = 9 keeps the product cheap on lavapipe,
  // odd sizes leave partial tiles on both axes.
  await check('workgroup', { a: [1030, 9], b: [1025, 9], transposeB: true, bias: true }, 11, 'f32', 't128');
});

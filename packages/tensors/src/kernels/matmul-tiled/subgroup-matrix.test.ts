import { requireF16 } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device, KernelLaunch } from '../../device/device.js';
import { matmul } from '../matmul/matmul.js';
import { selfCheckMatmul } from './matmul-self-check.js';
import { matmulCapabilities, SUBGROUP_MATRIX_FEATURE, selectMatmulVariant } from './select-variant.js';
import { subgroupMatrixSelection, tiledProduct, verifySubgroupMatrix } from './subgroup-matrix-check.js';
import type { SubgroupMatrixConfig } from './subgroup-matrix-config.js';
import { subgroupMatrixLayout, subgroupMatrixTile } from './subgroup-matrix-wgsl.js';

// No adapter here exposes chromium-experimental-subgroup-matrix (docs/architecture/kernel-selection.md),
// so the subgroup-matrix builtins have not run. What runs here: the whole kernel with the builtins
// swapped for plain-WGSL emulations (subgroup-matrix-ops.ts) through the self-check against
// float64; the real kernel being refused by lavapipe's Dawn and the refusal recorded; and a device
// that claims the feature falling back, with the reason, when its check fails.
let device: Device;
const keys: string[] = [];
beforeAll(async () => {
  device = await createDevice({ tuning: { matmulKernel: 'workgroup' } });
  const dispatch = device.dispatch.bind(device);
  device.dispatch = (launch: KernelLaunch) => {
    keys.push(launch.key);
    return dispatch(launch);
  };
});
afterAll(() => device?.destroy());

const lanes = 8;
async function checkEmulated(config: SubgroupMatrixConfig) {
  const selection = subgroupMatrixSelection(config, lanes);
  selection.subgroupMatrix = { config, lanes, emulated: true };
  keys.length = 0;
  const tile = subgroupMatrixTile({ config, ...subgroupMatrixLayout(config) });
  const outcome = await selfCheckMatmul(
    device,
    (a, b, o) => tiledProduct(a, b, o, selection),
    config.componentType as 'f32',
    tile,
  );
  expect(outcome.reason).toContain('match the float64 reference');
  expect(outcome.passed).toBe(true);
  expect(keys.length).toBeGreaterThanOrEqual(4);
  expect(keys.every((key) => key.startsWith('matmul:sgmatrix:') && key.endsWith(':emulated'))).toBe(true);
}

// Lavapipe compiles each pipeline at its first dispatch, and the emulated products are inlined
// loops: configurations with few result matrices per tile keep that to seconds (8 x 8 x 8, with
// 16 result matrices and two K steps, compiles for minutes). The kernel's layout code is the same
// for every configuration; subgroup-matrix-wgsl.test.ts reads the others' WGSL back.
describe('the subgroup-matrix kernel with emulated builtins, against float64 on lavapipe', () => {
  it('f32 32x32x8: one result matrix, two K steps per panel', async () => {
    await checkEmulated({ componentType: 'f32', resultComponentType: 'f32', M: 32, N: 32, K: 8 });
  });

  it('f32 16x32x16: two result matrices down the tile', async () => {
    await checkEmulated({ componentType: 'f32', resultComponentType: 'f32', M: 16, N: 32, K: 16 });
  });

  it('f16 32x16x16 with an f32 result: two result matrices across the tile', async (context) => {
    requireF16(context, device.hasF16);
    await checkEmulated({ componentType: 'f16', resultComponentType: 'f32', M: 32, N: 16, K: 16 });
  });
});

describe('the real subgroup-matrix kernel where the adapter lacks the feature', () => {
  it('is refused by Dawn, the self-check says so, and the device keeps working', async () => {
    const config: SubgroupMatrixConfig = {
      componentType: 'f32',
      resultComponentType: 'f32',
      M: 8,
      N: 8,
      K: 8,
    };
    const selection = subgroupMatrixSelection(config, lanes);
    const outcome = await selfCheckMatmul(device, (a, b, o) => tiledProduct(a, b, o, selection), 'f32', {
      rows: 32,
      cols: 32,
      depth: 16,
    });
    expect(outcome.passed).toBe(false);
    expect(outcome.reason).toMatch(
      /^product 1 of 4 .* failed to run: .*chromium_experimental_subgroup_matrix/s,
    );
    const out = matmul(
      device.fromArray([1, 2, 3, 4], [2, 2], 'f32'),
      device.fromArray([0, 1, 1, 0], [2, 2], 'f32'),
    );
    expect(Array.from(await out.toArray())).toEqual([2, 1, 4, 3]);
  });

  it('verifySubgroupMatrix checks nothing on an adapter without the feature', async () => {
    expect(device.gpu.features.has(SUBGROUP_MATRIX_FEATURE)).toBe(false);
    expect(await verifySubgroupMatrix(device)).toEqual({});
    expect(matmulCapabilities(device).subgroupMatrix).toBeUndefined();
  });

  it('a device claiming the feature records the failed check and falls back, naming why', async () => {
    // The same device, with the feature and configurations added to what it reports.
    const gpu = device.gpu;
    const configs = [{ componentType: 'f32', resultComponentType: 'f32', M: 8, N: 8, K: 8 }];
    const claiming = new Proxy(gpu, {
      get(target, property) {
        if (property === 'features') return new Set([...target.features, SUBGROUP_MATRIX_FEATURE]);
        if (property === 'adapterInfo') {
          return { subgroupMinSize: 8, subgroupMaxSize: lanes, subgroupMatrixConfigs: configs };
        }
        const value = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const fake = Object.create(device, { gpu: { value: claiming } }) as Device;
    const summary = {
      dtype: 'f32',
      rows: 256,
      cols: 256,
      folded: true,
      transposeA: false,
      chunked: false,
    } as const;
    expect(selectMatmulVariant(matmulCapabilities(fake), summary).reason).toContain(
      'has not been self-checked',
    );
    const checks = await verifySubgroupMatrix(fake);
    expect(checks.f32?.passed).toBe(false);
    expect(checks.f32?.reason).toContain('f32 8x8x8 -> f32, 8 lanes: product 1 of 4');
    if (device.hasF16) expect(checks.f16?.reason).toContain('no subgroup-matrix configuration takes f16');
    const selection = selectMatmulVariant(matmulCapabilities(fake), summary);
    expect(selection.variant).toBe('workgroup-tiled');
    expect(selection.reason).toContain('subgroup-matrix not used: f32 8x8x8 -> f32 failed the self-check');
    // And a matmul on it gives the right numbers through the fallback.
    const out = matmul(
      fake.fromArray([1, 2, 3, 4], [2, 2], 'f32'),
      fake.fromArray([1, 1, 1, 1], [2, 2], 'f32'),
    );
    expect(Array.from(await out.toArray())).toEqual([3, 3, 7, 7]);
  });
});

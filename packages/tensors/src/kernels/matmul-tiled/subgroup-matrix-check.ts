import { broadcastShapes } from '../../tensor/shape.js';
import type { Device, Tensor } from '../../tensor/tensor.js';
import { type CandidateOptions, type CheckTile, selfCheckMatmul } from './matmul-self-check.js';
import { runTiledMatmul } from './matmul-tiled.js';
import { type MatmulSelection, matmulCapabilities, SUBGROUP_MATRIX_FEATURE } from './select-variant.js';
import { chooseSubgroupMatrixConfig, describeSubgroupMatrixConfig } from './subgroup-matrix-config.js';
import {
  recordSubgroupMatrixCheck,
  type SubgroupMatrixCheck,
  subgroupMatrixCheckOf,
} from './subgroup-matrix-state.js';
import { subgroupMatrixLayout, subgroupMatrixTile } from './subgroup-matrix-wgsl.js';

/**
 * a x b with one tiled variant, whatever the selection would pick: the self-check's way to run a
 * candidate kernel (also the tests' way to run the variants lavapipe has).
 */
export function tiledProduct(
  a: Tensor,
  b: Tensor,
  options: CandidateOptions,
  selection: MatmulSelection,
): Tensor {
  const [aRows, aCols] = a.shape.slice(-2);
  const [bRows, bCols] = b.shape.slice(-2);
  const M = options.transposeA ? aCols : aRows;
  const K = options.transposeA ? aRows : aCols;
  const N = options.transposeB ? bRows : bCols;
  if ((options.transposeB ? bCols : bRows) !== K)
    throw new Error(`tiledProduct: inner dimensions differ (${K})`);
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const out = a.device.empty([...batch, M, N], a.dtype);
  runTiledMatmul({ a, b, out, ...options, M, K, N }, selection);
  return out;
}

/** The selection that runs the subgroup-matrix kernel with a configuration and workgroup size. */
export function subgroupMatrixSelection(
  config: NonNullable<MatmulSelection['subgroupMatrix']>['config'],
  lanes: number,
): MatmulSelection {
  return {
    variant: 'subgroup-matrix',
    lanes: 0,
    rows: 0,
    perThread: 4,
    reason: 'self-check',
    subgroupMatrix: { config, lanes },
  };
}

/**
 * The first time a device could select the subgroup-matrix variant (createDevice, where the adapter
 * has chromium-experimental-subgroup-matrix), this runs its self-check for f32 and, with
 * shader-f16, f16, and records the outcome on the device: `selectMatmulVariant` picks the variant
 * only for a dtype whose check passed, and otherwise names the failure in its reason. Checks run
 * once per device; without the feature nothing runs and nothing is recorded.
 */
export async function verifySubgroupMatrix(
  device: Device,
): Promise<Partial<Record<'f32' | 'f16', SubgroupMatrixCheck>>> {
  const caps = matmulCapabilities(device);
  const offered = caps.subgroupMatrix;
  if (!offered || !caps.features.has(SUBGROUP_MATRIX_FEATURE)) return {};
  const dtypes: ('f32' | 'f16')[] = device.hasF16 ? ['f32', 'f16'] : ['f32'];
  for (const dtype of dtypes) {
    if (subgroupMatrixCheckOf(device)[dtype]) continue;
    const chosen = chooseSubgroupMatrixConfig(offered.configs, dtype);
    if (!chosen.config) {
      recordSubgroupMatrixCheck(device, dtype, { passed: false, reason: chosen.reason });
      continue;
    }
    const { config } = chosen;
    const lanes = offered.subgroupMaxSize;
    const tile: CheckTile = subgroupMatrixTile({ config, ...subgroupMatrixLayout(config) });
    const selection = subgroupMatrixSelection(config, lanes);
    const outcome = await selfCheckMatmul(
      device,
      (a, b, options) => tiledProduct(a, b, options, selection),
      dtype,
      tile,
    );
    recordSubgroupMatrixCheck(device, dtype, {
      passed: outcome.passed,
      reason: `${describeSubgroupMatrixConfig(config)}, ${lanes} lanes: ${outcome.reason}`,
    });
  }
  return subgroupMatrixCheckOf(device);
}

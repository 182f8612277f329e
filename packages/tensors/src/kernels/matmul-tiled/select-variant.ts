import type { AdapterClass, Tuning } from '../../device/adapter-class.js';
import type { Device } from '../../tensor/tensor.js';
import {
  chooseSubgroupMatrixConfig,
  describeSubgroupMatrixConfig,
  parseSubgroupMatrixConfigs,
  type SubgroupMatrixConfig,
} from './subgroup-matrix-config.js';
import { type SubgroupMatrixCheck, subgroupMatrixCheckOf } from './subgroup-matrix-state.js';
import { subgroupMatrixLayout, subgroupMatrixWorkgroupBytes } from './subgroup-matrix-wgsl.js';

/**
 * The matmul kernels, by where they pay:
 * - 'small-rows': a few rows (decoding), K split over the lanes (kernels/matmul/small-rows.ts);
 *   falls back to 'register' where it does not apply.
 * - 'register': register tiles, no workgroup memory, operands packed to f32 panels where they are
 *   not row-major in K (kernels/matmul/); the only kernel for operands split in chunks. Best on
 *   CPU rasterisers (lavapipe, SwiftShader).
 * - 'workgroup-tiled': 64 x 64 tiles (128 x 128 for large products where 16 KiB of workgroup
 *   memory is allowed) staged in workgroup memory, operands read in place in their own dtype
 *   (vec4<f16> loads with shader-f16), f32 accumulation (kernels/matmul-tiled/).
 * - 'subgroup-tiled': one subgroup per workgroup, A rows shared with subgroupBroadcast instead of
 *   workgroup memory, operands read in place (kernels/matmul-tiled/).
 * - 'subgroup-matrix': the adapter's subgroup matrices (`chromium-experimental-subgroup-matrix`,
 *   tensor cores) multiply panels staged in workgroup memory (subgroup-matrix-wgsl.ts); chosen only
 *   after the device's self-check of that kernel passed (subgroup-matrix-check.ts).
 */
export type MatmulVariant =
  | 'small-rows'
  | 'register'
  | 'workgroup-tiled'
  | 'subgroup-tiled'
  | 'subgroup-matrix';

/** What the adapter offers for the subgroup-matrix variant, and what its self-check found. */
export interface SubgroupMatrixCapabilities {
  /** From adapter.info.subgroupMatrixConfigs (subgroup-matrix-config.ts). */
  configs: readonly SubgroupMatrixConfig[];
  /** The adapter's largest subgroup: the kernel's workgroup size. */
  subgroupMaxSize: number;
  /** Per dtype, the device's self-check; absent until it ran (then never selected). */
  check: Partial<Record<'f32' | 'f16', SubgroupMatrixCheck>>;
}

/** What the selection looks at: features, limits and the adapter class's tuning; never the vendor. */
export interface MatmulCapabilities {
  adapterClass: AdapterClass;
  features: ReadonlySet<string>;
  /** The adapter's smallest subgroup size; 0 when unknown. */
  subgroupMinSize: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  tuning: Pick<Tuning, 'matmulKernel' | 'matmulSmallRowsMax'>;
  /** Absent where the adapter lacks chromium-experimental-subgroup-matrix. */
  subgroupMatrix?: SubgroupMatrixCapabilities;
}

export interface MatmulProblemSummary {
  dtype: 'f32' | 'f16';
  /** Output rows once a's batch is folded in (when it folds: b 2-D, no transposeA). */
  rows: number;
  /** Output columns (N). */
  cols: number;
  /** a's batch folds into M, the only case the small-rows kernel takes. */
  folded: boolean;
  transposeA: boolean;
  /** An operand or the output is split in chunks (larger than one storage binding). */
  chunked: boolean;
}

export interface MatmulSelection {
  variant: MatmulVariant;
  /** Subgroup-tiled only: lanes per workgroup and rows per tile. */
  lanes: number;
  rows: number;
  /** Workgroup-tiled only: outputs per invocation along each axis (tile 16 x perThread square). */
  perThread: 4 | 8;
  /** Why this variant, in words (the GPU benchmark prints it). */
  reason: string;
  /**
   * Subgroup-matrix only: the configuration and the workgroup size (subgroupMaxSize); `emulated`
   * (tests only) swaps the builtins for plain WGSL (subgroup-matrix-ops.ts).
   */
  subgroupMatrix?: { config: SubgroupMatrixConfig; lanes: number; emulated?: boolean };
}

/** Workgroup memory the workgroup-tiled kernel needs: two 64 x 16 f32 panels (128 x 16 for the large tile). */
export const WORKGROUP_TILED_BYTES = 2 * 64 * 16 * 4;
export const WORKGROUP_TILED_LARGE_BYTES = 2 * 128 * 16 * 4;
/** Products at least this many rows and columns take the 128 x 128 tile where it fits (64 tiles or more). */
export const LARGE_TILE_MIN = 1024;
const WORKGROUP_TILED_INVOCATIONS = 256;

export const SUBGROUP_MATRIX_FEATURE = 'chromium-experimental-subgroup-matrix';

export function matmulCapabilities(device: Device): MatmulCapabilities {
  const info = (
    device.gpu as {
      adapterInfo?: { subgroupMinSize?: number; subgroupMaxSize?: number; subgroupMatrixConfigs?: unknown };
    }
  ).adapterInfo;
  const features = device.gpu.features as ReadonlySet<string>;
  return {
    adapterClass: device.info.adapterClass,
    features,
    subgroupMinSize: info?.subgroupMinSize ?? 0,
    maxComputeWorkgroupStorageSize: device.gpu.limits.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: device.gpu.limits.maxComputeInvocationsPerWorkgroup,
    tuning: device.tuning,
    ...(features.has(SUBGROUP_MATRIX_FEATURE) && {
      subgroupMatrix: {
        configs: parseSubgroupMatrixConfigs(info?.subgroupMatrixConfigs).configs,
        subgroupMaxSize: info?.subgroupMaxSize ?? 0,
        check: subgroupMatrixCheckOf(device),
      },
    }),
  };
}

/**
 * The subgroup-matrix selection for a problem, or why it is not used (null where the adapter lacks
 * the feature, so the other variants' reasons stay as they were).
 */
export function subgroupMatrixChoice(
  caps: MatmulCapabilities,
  dtype: 'f32' | 'f16',
): { config: SubgroupMatrixConfig; lanes: number; reason: string } | { why: string } | null {
  const offered = caps.subgroupMatrix;
  if (!offered || !caps.features.has(SUBGROUP_MATRIX_FEATURE)) return null;
  const chosen = chooseSubgroupMatrixConfig(offered.configs, dtype);
  if (!chosen.config) return { why: chosen.reason };
  const lanes = offered.subgroupMaxSize;
  if (lanes < 1 || lanes > caps.maxComputeInvocationsPerWorkgroup) {
    return { why: `subgroupMaxSize ${lanes} is not a usable workgroup size` };
  }
  const layout = subgroupMatrixLayout(chosen.config);
  const bytes = subgroupMatrixWorkgroupBytes({ config: chosen.config, dtype, ...layout });
  if (bytes > caps.maxComputeWorkgroupStorageSize) {
    return { why: `its tile needs ${bytes} bytes of workgroup memory` };
  }
  const check = offered.check[dtype];
  const name = describeSubgroupMatrixConfig(chosen.config);
  if (!check) return { why: `${name} has not been self-checked on this device` };
  if (!check.passed) return { why: `${name} failed the self-check: ${check.reason}` };
  return { config: chosen.config, lanes, reason: `subgroup matrices ${name}, self-check passed` };
}

/**
 * Picks the matmul kernel for a problem from the adapter's capabilities. The adapter class's
 * tuning says which kernel it prefers (`matmulKernel`); a preferred kernel the adapter cannot run
 * (no `subgroups`, too little workgroup memory, too few invocations, no `shader-f16` for f16) gives
 * way to the next: subgroup-tiled -> workgroup-tiled -> register.
 */
export function selectMatmulVariant(
  caps: MatmulCapabilities,
  problem: MatmulProblemSummary,
): MatmulSelection {
  const pick = (
    variant: MatmulVariant,
    reason: string,
    lanes = 0,
    rows = 0,
    perThread: 4 | 8 = 4,
  ): MatmulSelection => ({ variant, lanes, rows, perThread, reason });
  if (problem.folded && !problem.transposeA && problem.rows <= caps.tuning.matmulSmallRowsMax) {
    return pick(
      'small-rows',
      `${problem.rows} row(s) <= matmulSmallRowsMax ${caps.tuning.matmulSmallRowsMax}`,
    );
  }
  const preference = caps.tuning.matmulKernel;
  if (preference === 'register') return pick('register', `the ${caps.adapterClass} tuning prefers it`);
  if (problem.chunked)
    return pick('register', 'an operand exceeds one storage binding (only it splits them)');
  if (problem.dtype === 'f16' && !caps.features.has('shader-f16')) {
    return pick('register', 'f16 operands without shader-f16');
  }
  const matrices = subgroupMatrixChoice(caps, problem.dtype);
  if (matrices && 'config' in matrices) {
    return {
      ...pick('subgroup-matrix', matrices.reason),
      subgroupMatrix: { config: matrices.config, lanes: matrices.lanes },
    };
  }
  const fallback = selectFallback(caps, problem, pick, preference);
  if (matrices) fallback.reason += `; subgroup-matrix not used: ${matrices.why}`;
  return fallback;
}

function selectFallback(
  caps: MatmulCapabilities,
  problem: MatmulProblemSummary,
  pick: (
    variant: MatmulVariant,
    reason: string,
    lanes?: number,
    rows?: number,
    perThread?: 4 | 8,
  ) => MatmulSelection,
  preference: Tuning['matmulKernel'],
): MatmulSelection {
  const subgroupOk = caps.features.has('subgroups') && caps.subgroupMinSize >= 4;
  const workgroupOk =
    caps.maxComputeWorkgroupStorageSize >= WORKGROUP_TILED_BYTES &&
    caps.maxComputeInvocationsPerWorkgroup >= WORKGROUP_TILED_INVOCATIONS;
  const subgroup = (reason: string) => {
    const lanes = 2 ** Math.floor(Math.log2(Math.min(caps.subgroupMinSize, 32)));
    return pick('subgroup-tiled', reason, lanes, Math.min(lanes, 8));
  };
  if (preference === 'subgroup' && subgroupOk)
    return subgroup(`subgroups with subgroupMinSize ${caps.subgroupMinSize}`);
  if (workgroupOk) {
    const why =
      preference === 'subgroup'
        ? 'no usable subgroups (feature or subgroupMinSize >= 4 missing)'
        : `the ${caps.adapterClass} tuning prefers it`;
    const large =
      caps.maxComputeWorkgroupStorageSize >= WORKGROUP_TILED_LARGE_BYTES &&
      problem.rows >= LARGE_TILE_MIN &&
      problem.cols >= LARGE_TILE_MIN;
    return large
      ? pick('workgroup-tiled', `${why}; 128 x 128 tiles for a large product`, 0, 0, 8)
      : pick('workgroup-tiled', why);
  }
  if (subgroupOk) return subgroup('too little workgroup memory or too few invocations for 64 x 64 tiles');
  return pick('register', 'neither subgroups nor enough workgroup memory');
}

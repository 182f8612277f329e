import type { AdapterClass, Tuning } from '../../device/adapter-class.js';
import type { Device } from '../../tensor/tensor.js';

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
 */
export type MatmulVariant = 'small-rows' | 'register' | 'workgroup-tiled' | 'subgroup-tiled';

/** What the selection looks at: features, limits and the adapter class's tuning; never the vendor. */
export interface MatmulCapabilities {
  adapterClass: AdapterClass;
  features: ReadonlySet<string>;
  /** The adapter's smallest subgroup size; 0 when unknown. */
  subgroupMinSize: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  tuning: Pick<Tuning, 'matmulKernel' | 'matmulSmallRowsMax'>;
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
}

/** Workgroup memory the workgroup-tiled kernel needs: two 64 x 16 f32 panels (128 x 16 for the large tile). */
export const WORKGROUP_TILED_BYTES = 2 * 64 * 16 * 4;
export const WORKGROUP_TILED_LARGE_BYTES = 2 * 128 * 16 * 4;
/** Products at least this many rows and columns take the 128 x 128 tile where it fits (64 tiles or more). */
export const LARGE_TILE_MIN = 1024;
const WORKGROUP_TILED_INVOCATIONS = 256;

export function matmulCapabilities(device: Device): MatmulCapabilities {
  const info = (device.gpu as { adapterInfo?: { subgroupMinSize?: number } }).adapterInfo;
  return {
    adapterClass: device.info.adapterClass,
    features: device.gpu.features as ReadonlySet<string>,
    subgroupMinSize: info?.subgroupMinSize ?? 0,
    maxComputeWorkgroupStorageSize: device.gpu.limits.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: device.gpu.limits.maxComputeInvocationsPerWorkgroup,
    tuning: device.tuning,
  };
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

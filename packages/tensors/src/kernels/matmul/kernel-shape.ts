import type { Device } from '../../device/device.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { MatmulKernelShape } from './matmul-wgsl.js';

/** Picks the kernel variant for this device and problem. */
export function kernelShape(
  device: Device,
  rows: number,
  problem: { N: number; bias: Tensor | null; dtype: 'f32' | 'f16' },
  columnOffsets: readonly number[],
): MatmulKernelShape {
  const tuning = device.tuning;
  const lanes = tuning.matmulWorkgroup;
  const info = (device.gpu as { adapterInfo?: { subgroupMinSize?: number } }).adapterInfo;
  const subgroups =
    tuning.matmulSubgroups &&
    device.gpu.features.has('subgroups') &&
    (info?.subgroupMinSize ?? 0) >= lanes &&
    tuning.matmulTileRows % lanes === 0;
  const common = {
    cols: tuning.matmulTileCols,
    vectorStore:
      tuning.matmulTileCols % 4 === 0 &&
      problem.N % 4 === 0 &&
      columnOffsets.every((offset) => offset % 4 === 0),
    bias: problem.bias !== null,
    accumulate: false,
    outType: problem.dtype,
  };
  if (subgroups) {
    // A few rows (decoding a token): one row per lane wastes less work on clamped rows. Only two
    // heights, so lavapipe compiles few variants (each takes seconds).
    const tile = rows <= lanes ? lanes : tuning.matmulTileRows;
    return { ...common, rows: tile, lanesN: lanes, lanesM: 1, subgroups: true };
  }
  const lanesN = gcd(lanes, 16);
  const lanesM = lanes / lanesN;
  const tile = Math.max(1, Math.min(tuning.matmulTileRows, Math.ceil(rows / lanesM)));
  return { ...common, rows: tile, lanesN, lanesM, subgroups: false };
}

function gcd(x: number, y: number): number {
  return y === 0 ? x : gcd(y, x % y);
}

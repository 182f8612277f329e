import type { Tuning } from '../../device/adapter-class.js';
import type { Device } from '../../device/device.js';
import { subgroupsCover } from './product-inputs.js';

/** Which ending a prefill product has: its columns are tuned apart (the gated one keeps two sums per output). */
export type PrefillProductKind = 'store' | 'residual' | 'gated';

/** The register tile a prefill product of a prompt runs with. */
export interface PrefillTileChoice {
  rows: number;
  cols: number;
  lanes: number;
  subgroups: boolean;
  /** Row tiles along x (neighbouring workgroups share a weight slice), weight blocks along y (and z). */
  rowTilesInner: boolean;
}

/**
 * The tile height for a prompt of `promptRows` rows: the first candidate (preferred first) whose
 * padded rows (promptRows rounded up to the height) exceed the least padding of any candidate by
 * at most `slack` x promptRows. Heights are rounded down to a multiple of `multiple` (the lanes,
 * with subgroup loads), at least one multiple.
 */
export function prefillTileRows(
  candidates: readonly number[],
  promptRows: number,
  slack: number,
  multiple = 1,
): number {
  const heights = (candidates.length > 0 ? candidates : [multiple]).map(
    (r) => Math.max(1, Math.floor(Math.max(1, r) / multiple)) * multiple,
  );
  const padded = (r: number) => Math.ceil(promptRows / r) * r;
  const least = Math.min(...heights.map(padded));
  return heights.find((r) => padded(r) - least <= slack * promptRows) ?? heights[0];
}

/**
 * The tile of a prefill product from the device's prefill tuning (prefillTileRows, the columns of
 * its kind, prefillWorkgroup, prefillSubgroups, prefillRowTilesInner), chosen apart from the
 * training matmul's tile. Shared by the f32/half and the ggml products.
 */
export function prefillTileChoice(
  device: Device,
  kind: PrefillProductKind,
  promptRows: number,
): PrefillTileChoice {
  const tuning: Tuning = device.tuning;
  const lanes = Math.max(1, tuning.prefillWorkgroup);
  const subgroups = tuning.prefillSubgroups && subgroupsCover(device, lanes);
  const cols =
    kind === 'gated'
      ? tuning.prefillGatedCols
      : kind === 'residual'
        ? tuning.prefillResidualCols
        : tuning.prefillStoreCols;
  return {
    rows: prefillTileRows(tuning.prefillTileRows, promptRows, tuning.prefillRowsSlack, subgroups ? lanes : 1),
    cols: Math.max(1, cols),
    lanes,
    subgroups,
    rowTilesInner: tuning.prefillRowTilesInner,
  };
}

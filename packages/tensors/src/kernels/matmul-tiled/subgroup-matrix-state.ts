import type { Device } from '../../tensor/tensor.js';

/** The outcome of a device's self-check of one kernel variant for one dtype. */
export interface SubgroupMatrixCheck {
  passed: boolean;
  /** What passed ('4 products ... within tolerance') or the first failure, in words. */
  reason: string;
}

const checks = new WeakMap<Device, Partial<Record<'f32' | 'f16', SubgroupMatrixCheck>>>();

/** The subgroup-matrix self-checks a device has run, per dtype ({} before any). */
export function subgroupMatrixCheckOf(device: Device): Partial<Record<'f32' | 'f16', SubgroupMatrixCheck>> {
  return checks.get(device) ?? {};
}

export function recordSubgroupMatrixCheck(
  device: Device,
  dtype: 'f32' | 'f16',
  check: SubgroupMatrixCheck,
): void {
  checks.set(device, { ...subgroupMatrixCheckOf(device), [dtype]: check });
}

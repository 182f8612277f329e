import { concat, globalNorm, type Tensor } from '@webtune/tensors';

/**
 * The first named tensor holding a NaN or an infinity, or null. Each tensor's norm is computed on
 * the device and all of them come back in one readback (only used once something went wrong).
 */
export async function firstNonFinite(named: readonly [string, Tensor][]): Promise<string | null> {
  if (named.length === 0) return null;
  const device = named[0][1].device;
  const norms = device.scope(() =>
    concat(
      named.map(([, tensor]) => globalNorm([tensor]).reshape([1])),
      0,
    ).keep(),
  );
  const values = await norms.toArray();
  norms.dispose();
  const index = Array.from(values).findIndex((value) => !Number.isFinite(value));
  return index < 0 ? null : named[index][0];
}

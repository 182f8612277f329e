import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';

/**
 * For the prefill products' tests: runs `check` on a device per tile height the given device's
 * tuning can choose (`prefillTileRows`), in the tuning's own workgroup order, and for the first
 * height in the other order too. `index` is the height's place in the tuning's list (seeds).
 */
export async function forEachPrefillTile(
  device: Device,
  check: (on: Device, height: number, index: number) => Promise<void>,
): Promise<void> {
  const { prefillTileRows: heights, prefillRowTilesInner: inner } = device.tuning;
  for (const [index, height] of heights.entries()) {
    for (const rowTilesInner of index === 0 ? [inner, !inner] : [inner]) {
      const on = await createDevice({
        tuning: { prefillTileRows: [height], prefillRowTilesInner: rowTilesInner },
      });
      try {
        await check(on, height, index);
      } finally {
        on.destroy();
      }
    }
  }
}

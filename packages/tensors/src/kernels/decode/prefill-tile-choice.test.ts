import { describe, expect, it } from 'vitest';
import { tuningFor } from '../../device/adapter-class.js';
import { prefillTileRows } from './prefill-tile-choice.js';

describe('prefillTileRows', () => {
  it('takes the first candidate whose padded rows are within the slack of the least padding', () => {
    // 128 rows: 32 and 16 pad nothing, 24 pads to 144.
    expect(prefillTileRows([24, 32, 16], 128, 0)).toBe(32);
    expect(prefillTileRows([32, 24, 16], 128, 0)).toBe(32);
    // 200 rows: 32 pads to 224, 24 to 216, 16 to 208 (the least).
    expect(prefillTileRows([32, 24, 16], 200, 0)).toBe(16);
    expect(prefillTileRows([32, 24, 16], 200, 0.05)).toBe(24);
    expect(prefillTileRows([32, 24, 16], 200, 0.08)).toBe(32);
    expect(prefillTileRows([32, 16], 200, 0.125)).toBe(32);
    // A prompt shorter than every tile takes the one closest to it.
    expect(prefillTileRows([32, 24, 16], 9, 0)).toBe(16);
    expect(prefillTileRows([32, 16], 1, 0)).toBe(16);
  });

  it("the software class's rule: 32-row tiles unless 16-row ones pad over 15% fewer rows", () => {
    const {
      prefillTileRows: heights,
      prefillRowsSlack: slack,
      prefillWorkgroup: lanes,
    } = tuningFor('software');
    const chosen = [40, 64, 100, 110, 128, 200, 512].map((m) => prefillTileRows(heights, m, slack, lanes));
    expect(chosen).toEqual([16, 32, 16, 32, 32, 32, 32]);
  });

  it('rounds heights down to a multiple of the lanes (subgroup loads), at least one multiple', () => {
    expect(prefillTileRows([30], 64, 0, 8)).toBe(24);
    expect(prefillTileRows([5], 64, 0, 8)).toBe(8);
    expect(prefillTileRows([], 64, 0, 8)).toBe(8);
  });

  it("the GPU classes keep the register matmul's tile for prefill (4 rows, 4 columns, 64 lanes, no subgroup loads)", () => {
    for (const adapterClass of ['integrated', 'discrete'] as const) {
      const t = tuningFor(adapterClass);
      expect([t.prefillTileRows, t.prefillStoreCols, t.prefillGatedCols, t.prefillWorkgroup]).toEqual([
        [t.matmulTileRows],
        t.matmulTileCols,
        t.matmulTileCols / 2,
        t.matmulWorkgroup,
      ]);
      expect(t.prefillSubgroups).toBe(false);
    }
  });
});

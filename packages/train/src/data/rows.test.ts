import { describe, expect, it } from 'vitest';
import { epochOrder, microBatchesOf } from './epoch-order.js';
import { collateRows, trainedTokensOf } from './rows.js';

describe('rows and order', () => {
  it('collates right-padded with shifted targets, lengths and per-token weights', () => {
    const batch = collateRows(
      [
        { inputIds: [5, 6, 7], labels: [-100, 6, 7], lossWeight: 2 },
        { inputIds: [8, 9], labels: [8, 9] },
      ],
      { padTokenId: 0, padToMultipleOf: 4 },
    );
    expect(batch).toMatchObject({ rows: 2, seq: 4 });
    expect(Array.from(batch.inputIds)).toEqual([5, 6, 7, 0, 8, 9, 0, 0]);
    expect(Array.from(batch.targets)).toEqual([6, 7, -100, -100, 9, -100, -100, -100]);
    expect(Array.from(batch.lengths)).toEqual([3, 2]);
    expect(Array.from(batch.weights!)).toEqual([2, 2, 0, 0, 1, 0, 0, 0]);
    expect(collateRows([{ inputIds: [1, 2], labels: [1, 2] }]).weights).toBeUndefined();
    expect(trainedTokensOf({ inputIds: [5, 6, 7], labels: [-100, 6, 7] })).toBe(2);
    expect(() => collateRows([{ inputIds: [1, 2], labels: [1] }])).toThrow(/2 input ids but 1 labels/);
  });

  it('orders each epoch by a seeded permutation: repeatable, different per epoch and seed', () => {
    const a = epochOrder(50, 42, 0);
    expect(a).toEqual(epochOrder(50, 42, 0));
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(epochOrder(50, 42, 1)).not.toEqual(a);
    expect(epochOrder(50, 43, 0)).not.toEqual(a);
    expect(epochOrder(5, 42, 0, false)).toEqual([0, 1, 2, 3, 4]);
    expect(microBatchesOf([0, 1, 2, 3, 4], 2)).toEqual([[0, 1], [2, 3], [4]]);
  });
});

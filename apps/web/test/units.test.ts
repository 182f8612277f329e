/* The board's pure helpers, in Node: chart ticks, histogram bins, formatting, preference pairs. */
import { describe, expect, it } from 'vitest';
import { PreferenceStore } from '../src/preferences.js';
import { formatBytes, formatDuration, formatNumber } from '../src/ui/format.js';
import { histogramBins } from '../src/ui/histogram.js';
import { niceTicks, smoothLoss, stepTicks, tickLabels } from '../src/ui/training-chart.js';

function memoryStorage(): Storage {
  const items = new Map<string, string>();
  return {
    get length() {
      return items.size;
    },
    clear: () => items.clear(),
    getItem: (key) => items.get(key) ?? null,
    key: (index) => [...items.keys()][index] ?? null,
    removeItem: (key) => void items.delete(key),
    setItem: (key, value) => void items.set(key, value),
  };
}

describe('niceTicks', () => {
  it('covers the range with round steps', () => {
    expect(niceTicks(0.05, 3.72, 4)).toEqual([0, 1, 2, 3, 4]);
    expect(niceTicks(1.42, 2.58, 4)).toEqual([1, 1.5, 2, 2.5, 3]);
    expect(niceTicks(0, 0.01, 4)).toEqual([0, 0.005, 0.01]);
  });
  it('handles an empty range', () => {
    const ticks = niceTicks(2, 2, 4);
    expect(ticks[0]).toBeLessThanOrEqual(2);
    expect(ticks[ticks.length - 1]).toBeGreaterThanOrEqual(2);
  });
});

describe('histogramBins', () => {
  it('counts every value once, the largest in the last bin', () => {
    const bins = histogramBins([0, 1, 9, 10, 29, 1000], 3, 30);
    expect(bins.map((bin) => [bin.start, bin.end, bin.count])).toEqual([
      [0, 10, 3],
      [10, 20, 1],
      [20, 30, 2],
    ]);
  });
});

describe('formatting', () => {
  it('writes bytes, durations and numbers for people', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(3 * 1024 ** 3)).toBe('3.0 GiB');
    expect(formatDuration(65_000)).toBe('1m05s');
    expect(formatDuration(3_723_000)).toBe('1h02m');
    expect(formatNumber(0.33191)).toBe('0.3319');
    expect(formatNumber(0.00001)).toBe('1.00e-5');
  });
});

describe('PreferenceStore', () => {
  it('keeps pairs across instances and writes a preference dataset', () => {
    const storage = memoryStorage();
    const store = new PreferenceStore(storage);
    let changes = 0;
    store.subscribe(() => changes++);
    store.add({
      prompt: 'Hi',
      chosen: 'Hello!',
      rejected: 'Go away.',
      chosenModel: 'tuned',
      createdAt: '2026-01-01T00:00:00Z',
    });
    expect(changes).toBe(1);
    const again = new PreferenceStore(storage);
    expect(again.all).toHaveLength(1);
    expect(JSON.parse(again.toDatasetJson())).toEqual([
      { instruction: 'Hi', input: '', chosen: 'Hello!', rejected: 'Go away.' },
    ]);
    again.clear();
    expect(new PreferenceStore(storage).all).toHaveLength(0);
  });
  it('starts empty when the stored value is not a list', () => {
    const storage = memoryStorage();
    storage.setItem('webtune.preference-pairs', '{"not": "a list"}');
    expect(new PreferenceStore(storage).all).toEqual([]);
  });
});

describe('chart axes (issue 18)', () => {
  it('labels ticks distinctly with the fewest digits', () => {
    // toExponential(0) made 1e-4, 2e-4, 2e-4 (2.5e-4 rounds) and 3e-4.
    expect(tickLabels([0, 5e-5, 1e-4, 1.5e-4, 2e-4, 2.5e-4], true)).toEqual([
      '0',
      '5.0e-5',
      '1.0e-4',
      '1.5e-4',
      '2.0e-4',
      '2.5e-4',
    ]);
    expect(tickLabels([0, 1e-4, 2e-4], true)).toEqual(['0', '1e-4', '2e-4']);
    expect(tickLabels([1, 1.5, 2], false)).toEqual(['1', '1.5', '2']);
  });
  it('puts step ticks on whole, evenly spaced steps', () => {
    expect(stepTicks(20, 6)).toEqual([1, 5, 10, 15, 20]);
    expect(stepTicks(6, 6)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(stepTicks(1, 6)).toEqual([1]);
    const ticks = stepTicks(137, 6);
    const gaps = ticks.slice(2).map((step, i) => step - ticks[i + 1]);
    expect(new Set(gaps).size).toBe(1);
  });
  it('smooths the loss with a weight that grows with the number of points', () => {
    expect(smoothLoss([])).toEqual([]);
    expect(smoothLoss([2])).toEqual([2]);
    const values = Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? 1 : 3));
    const smoothed = smoothLoss(values);
    // Alternating 1/3 settles near its mean 2 with a much smaller swing.
    expect(Math.abs(smoothed[199] - 2)).toBeLessThan(0.2);
    const weight = 1.8 * (1 / (1 + Math.exp(-0.05 * 3)) - 0.5);
    expect(smoothLoss([1, 2, 4])[2]).toBeCloseTo(
      (1 * weight + (1 - weight) * 2) * weight + (1 - weight) * 4,
      12,
    );
  });
});

import { describe, expect, it } from 'vitest';
import { DataConfigError } from '../issues.js';
import { mixDatasets } from './mix.js';
import { drawSamples, splitValidation, takeFirst } from './sampling.js';

const letters = ['a', 'b', 'c'];
const numbers = [1, 2, 3, 4, 5, 6, 7];

describe('mixDatasets', () => {
  it('concatenates', () => {
    expect(mixDatasets<string | number>([letters, numbers])).toEqual({
      items: ['a', 'b', 'c', 1, 2, 3, 4, 5, 6, 7],
      taken: [3, 7],
    });
  });

  it('interleave_under takes turns and stops when the first dataset runs out', () => {
    expect(mixDatasets<string | number>([letters, numbers], { strategy: 'interleave_under' })).toEqual({
      items: ['a', 1, 'b', 2, 'c'],
      taken: [3, 2],
    });
  });

  it('interleave_over takes turns until every dataset ran out once, repeating the small ones', () => {
    const { items, taken } = mixDatasets<string | number>([letters, numbers], {
      strategy: 'interleave_over',
    });
    expect(items).toEqual(['a', 1, 'b', 2, 'c', 3, 'a', 4, 'b', 5, 'c', 6, 'a', 7]);
    expect(taken).toEqual([7, 7]);
  });

  it('draws with the given probabilities, the same way for the same seed', () => {
    const domain = Array.from({ length: 9000 }, (_, index) => `d${index}`);
    const general = Array.from({ length: 5000 }, (_, index) => `g${index}`);
    const mixed = mixDatasets([domain, general], {
      strategy: 'interleave_under',
      probabilities: [0.9, 0.1],
      seed: 3,
    });
    // Stops when the domain set runs out: about 9000 domain and 1000 general rows.
    expect(mixed.taken[0]).toBe(9000);
    expect(mixed.taken[1] / mixed.items.length).toBeGreaterThan(0.08);
    expect(mixed.taken[1] / mixed.items.length).toBeLessThan(0.12);
    expect(
      mixDatasets([domain, general], { strategy: 'interleave_under', probabilities: [0.9, 0.1], seed: 3 }),
    ).toEqual(mixed);
    expect(
      mixDatasets([domain, general], { strategy: 'interleave_under', probabilities: [0.9, 0.1], seed: 4 })
        .items,
    ).not.toEqual(mixed.items);
  });

  it('refuses bad probabilities and empty datasets', () => {
    expect(() =>
      mixDatasets<string | number>([letters, numbers], { strategy: 'interleave_over', probabilities: [0.5] }),
    ).toThrow('1 probabilities for 2 datasets');
    expect(() =>
      mixDatasets<string | number>([letters, numbers], {
        strategy: 'interleave_over',
        probabilities: [0.5, 0.6],
      }),
    ).toThrow(/sum to 1/);
    expect(() => mixDatasets<string>([letters, []], { strategy: 'interleave_under' })).toThrow(
      'dataset 1 is empty',
    );
  });
});

describe('sampling and splitting', () => {
  it('takes the first max_samples rows', () => {
    expect(takeFirst(numbers, 3)).toEqual([1, 2, 3]);
    expect(takeFirst(numbers, 30)).toEqual(numbers);
    expect(() => takeFirst(numbers, 0)).toThrow(/positive integer/);
  });

  it('draws num_samples rows, repeating rows only past the dataset size', () => {
    const three = drawSamples(numbers, 3, 5);
    expect(new Set(three).size).toBe(3);
    const many = drawSamples(numbers, 20, 5);
    expect(many).toHaveLength(20);
    expect(new Set(many.slice(0, 7))).toEqual(new Set(numbers));
    expect(drawSamples(numbers, 20, 5)).toEqual(many);
  });

  it('splits a seeded validation set by fraction or count', () => {
    const items = Array.from({ length: 100 }, (_, index) => index);
    const split = splitValidation(items, 0.1, 42);
    expect(split.validation).toHaveLength(10);
    expect(split.train).toHaveLength(90);
    expect([...split.train, ...split.validation].sort((a, b) => a - b)).toEqual(items);
    expect(splitValidation(items, 0.1, 42)).toEqual(split);
    expect(splitValidation(items, 0.1, 7).validation).not.toEqual(split.validation);
    expect(splitValidation(items, 25, 42).validation).toHaveLength(25);
    expect(splitValidation(items, 0.001, 42).validation).toHaveLength(1);
    expect(() => splitValidation(items, 100, 42)).toThrow(/leaving none to train on/);
  });
});

describe('settings that do not fit the data', () => {
  it('are DataConfigErrors naming the LLaMA-Factory key', () => {
    const items = [1, 2, 3, 4];
    expect(() => splitValidation(items, 50)).toThrow(DataConfigError);
    expect(() => splitValidation(items, 50)).toThrow(
      /^val_size: 50 takes 50 of the 4 examples, leaving none/,
    );
    expect(() => splitValidation(items, 4)).toThrow(DataConfigError);
    expect(() => splitValidation(items, -1)).toThrow(/^val_size: must be > 0/);
    expect(() => takeFirst(items, 0)).toThrow(/^max_samples: /);
    expect(() => mixDatasets([[1], []], { strategy: 'interleave_under' })).toThrow(DataConfigError);
  });
});

describe('interleave_over with a tiny probability', () => {
  it('is refused instead of looping for ever (found by the fuzzer)', () => {
    expect(() =>
      mixDatasets([[1, 2], [3]], { strategy: 'interleave_over', probabilities: [1e-300, 1], seed: 1 }),
    ).toThrow(/interleave_probs: probability 1e-300 for dataset 0 \(2 rows\) needs about/);
  });
});

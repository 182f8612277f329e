/** Taking part of a dataset: `max_samples`, `num_samples`, and the seeded validation split. */
import { DataConfigError } from '../issues.js';
import { SeededRandom } from '../random.js';

/** The first `maxSamples` items (LLaMA-Factory's `max_samples`, applied to each dataset). */
export function takeFirst<T>(items: readonly T[], maxSamples: number | undefined): T[] {
  if (maxSamples === undefined) return [...items];
  if (!Number.isInteger(maxSamples) || maxSamples <= 0)
    throw new DataConfigError('max_samples', `must be a positive integer, got ${maxSamples}`);
  return items.slice(0, maxSamples);
}

/**
 * `count` items drawn at random (dataset_info's `num_samples`): a seeded permutation, extended with
 * random repeats when `count` exceeds the number of items.
 */
export function drawSamples<T>(items: readonly T[], count: number, seed = 42): T[] {
  if (items.length === 0) return [];
  const random = new SeededRandom(seed);
  const order = random.permutation(items.length).slice(0, count);
  while (order.length < count) order.push(random.nextInt(items.length));
  return order.map((index) => items[index]);
}

/** Train and validation parts of a dataset. */
export interface Split<T> {
  train: T[];
  validation: T[];
}

/**
 * Splits off a validation set after a seeded shuffle: `valSize` below 1 is a fraction (rounded up),
 * otherwise a count. Throws `DataConfigError` (val_size) when nothing would be left to train on.
 */
export function splitValidation<T>(items: readonly T[], valSize: number | undefined, seed = 42): Split<T> {
  if (valSize === undefined || valSize === 0) return { train: [...items], validation: [] };
  if (!(valSize > 0)) throw new DataConfigError('val_size', `must be > 0, got ${valSize}`);
  const count = valSize < 1 ? Math.ceil(valSize * items.length) : Math.floor(valSize);
  if (count >= items.length) {
    throw new DataConfigError(
      'val_size',
      `${valSize} takes ${count} of the ${items.length} examples, leaving none to train on; lower it (below 1 it is a fraction)`,
    );
  }
  const order = new SeededRandom(seed).permutation(items.length);
  const validation = order
    .slice(0, count)
    .sort((a, b) => a - b)
    .map((index) => items[index]);
  const train = order.slice(count).map((index) => items[index]);
  return { train, validation };
}

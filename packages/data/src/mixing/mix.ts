/**
 * Mixing datasets as LLaMA-Factory's `mix_strategy` does: `concat` one after another;
 * `interleave_under` draws from the datasets (in turn, or with `interleave_probs`) until the first one
 * runs out; `interleave_over` draws until every one has run out at least once, restarting those that
 * did (oversampling the small ones). A 0.9/0.1 mix of domain and general data is the usual guard
 * against catastrophic forgetting.
 */
import { DataConfigError } from '../issues.js';
import { SeededRandom } from '../random.js';

/** The most draws an interleave_over mix may be expected to take (rows / probability). */
const MAX_EXPECTED_DRAWS = 1e8;

export type MixStrategy = 'concat' | 'interleave_under' | 'interleave_over';

/** Options of `mixDatasets`. */
export interface MixOptions {
  strategy?: MixStrategy;
  /** For interleaving: the chance of drawing from each dataset; must sum to 1. Default: take turns. */
  probabilities?: readonly number[];
  /** Seed of the draws. Default 42. */
  seed?: number;
}

/** Mixed items and how many were taken from each dataset. */
export interface MixResult<T> {
  items: T[];
  taken: number[];
}

/** Mixes lists of items. Throws `DataConfigError` for bad probabilities. */
export function mixDatasets<T>(datasets: readonly (readonly T[])[], options: MixOptions = {}): MixResult<T> {
  const strategy = options.strategy ?? 'concat';
  const taken = datasets.map(() => 0);
  if (strategy === 'concat' || datasets.length === 1) {
    const items = datasets.flat() as T[];
    datasets.forEach((dataset, index) => {
      taken[index] = dataset.length;
    });
    return { items, taken };
  }
  if (strategy !== 'interleave_under' && strategy !== 'interleave_over') {
    throw new DataConfigError(
      'mix_strategy',
      `unknown strategy "${strategy}" (concat, interleave_under, interleave_over)`,
    );
  }
  const { probabilities } = options;
  if (probabilities !== undefined) {
    if (probabilities.length !== datasets.length) {
      throw new DataConfigError(
        'interleave_probs',
        `${probabilities.length} probabilities for ${datasets.length} datasets`,
      );
    }
    const sum = probabilities.reduce((total, value) => total + value, 0);
    if (probabilities.some((value) => !(value >= 0)) || Math.abs(sum - 1) > 1e-6) {
      throw new DataConfigError(
        'interleave_probs',
        `probabilities must be >= 0 and sum to 1, got ${probabilities.join(', ')}`,
      );
    }
  }
  const empty = datasets.findIndex((dataset) => dataset.length === 0);
  if (empty >= 0)
    throw new DataConfigError('mix_strategy', `dataset ${empty} is empty; it cannot be interleaved`);
  if (strategy === 'interleave_over' && probabilities !== undefined) {
    // Every drawable dataset must run out once: about rows / probability draws. Refuse a mix that
    // would take longer than any real one (a tiny probability), instead of looping for ever.
    datasets.forEach((dataset, index) => {
      const p = probabilities[index];
      if (p > 0 && dataset.length / p > MAX_EXPECTED_DRAWS) {
        throw new DataConfigError(
          'interleave_probs',
          `probability ${p} for dataset ${index} (${dataset.length} rows) needs about ${(dataset.length / p).toExponential(1)} draws before it runs out with interleave_over; raise it, set it to 0, or use interleave_under`,
        );
      }
    });
  }
  const random = new SeededRandom(options.seed ?? 42);
  const positions = datasets.map(() => 0);
  // Datasets that can never be drawn (probability 0) do not have to run out.
  const exhausted = datasets.map((_, index) => probabilities !== undefined && probabilities[index] === 0);
  const items: T[] = [];
  let turn = 0;
  for (;;) {
    const pick = probabilities ? random.pickWeighted(probabilities) : turn++ % datasets.length;
    const dataset = datasets[pick];
    items.push(dataset[positions[pick]]);
    taken[pick]++;
    positions[pick]++;
    if (positions[pick] === dataset.length) {
      exhausted[pick] = true;
      if (strategy === 'interleave_under' || exhausted.every(Boolean)) break;
      positions[pick] = 0;
    }
  }
  return { items, taken };
}

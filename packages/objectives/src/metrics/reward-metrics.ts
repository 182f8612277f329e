import { MeanMetric } from './mean-metric.js';

/** Reward-model metrics over the pairs seen since the last reset: accuracy and mean margin. */
export class RewardMetrics {
  private readonly accuracy = new MeanMetric();
  private readonly margin = new MeanMetric();

  /** `margins`: score(chosen) - score(rejected) per pair. */
  update(margins: ArrayLike<number>): void {
    for (let i = 0; i < margins.length; i++) {
      this.accuracy.update(margins[i] > 0 ? 1 : 0);
      this.margin.update(margins[i]);
    }
  }

  compute(prefix = ''): Record<string, number> {
    if (this.accuracy.count === 0) return {};
    return { [`${prefix}accuracy`]: this.accuracy.compute()!, [`${prefix}margin`]: this.margin.compute()! };
  }

  reset(): void {
    this.accuracy.reset();
    this.margin.reset();
  }
}

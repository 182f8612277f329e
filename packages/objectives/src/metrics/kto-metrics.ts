import type { KtoStatisticsValues } from '../kto-loss.js';
import { MeanMetric } from './mean-metric.js';

/**
 * The metrics LLaMA-Factory logs for KTO, over every example since the last reset: rewards/chosen
 * and logps/chosen (means over desirable answers), rewards/rejected and logps/rejected (over
 * undesirable ones), rewards/margins (chosen - rejected), and kl (the mean KL estimate). A side
 * with no example yet is left out, as LLaMA-Factory does. Eval metrics carry the prefix `eval_`.
 */
export class KtoMetrics {
  private readonly means = {
    chosenRewards: new MeanMetric(),
    rejectedRewards: new MeanMetric(),
    chosenLogps: new MeanMetric(),
    rejectedLogps: new MeanMetric(),
    kl: new MeanMetric(),
  };

  update(values: KtoStatisticsValues): void {
    for (let i = 0; i < values.losses.length; i++) {
      const desirable = values.desirable[i] > 0.5;
      (desirable ? this.means.chosenRewards : this.means.rejectedRewards).update(values.rewards[i]);
      (desirable ? this.means.chosenLogps : this.means.rejectedLogps).update(values.logps[i]);
      this.means.kl.update(values.kl[i]);
    }
  }

  compute(prefix = ''): Record<string, number> {
    const out: Record<string, number> = {};
    const chosen = this.means.chosenRewards.compute();
    const rejected = this.means.rejectedRewards.compute();
    if (chosen !== null) {
      out[`${prefix}rewards/chosen`] = chosen;
      out[`${prefix}logps/chosen`] = this.means.chosenLogps.compute()!;
    }
    if (rejected !== null) {
      out[`${prefix}rewards/rejected`] = rejected;
      out[`${prefix}logps/rejected`] = this.means.rejectedLogps.compute()!;
    }
    if (chosen !== null && rejected !== null) out[`${prefix}rewards/margins`] = chosen - rejected;
    const kl = this.means.kl.compute();
    if (kl !== null) out[`${prefix}kl`] = kl;
    return out;
  }

  reset(): void {
    for (const metric of Object.values(this.means)) metric.reset();
  }
}

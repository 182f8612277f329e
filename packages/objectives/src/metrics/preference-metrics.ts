import type { PreferenceLossType, PreferenceStatisticsValues } from '../preference-loss.js';
import { MeanMetric } from './mean-metric.js';

/**
 * The metrics LLaMA-Factory logs for preference training, over every pair seen since the last
 * reset: rewards/chosen, rewards/rejected, rewards/accuracies (share of pairs whose chosen reward
 * is higher), rewards/margins, logps/chosen, logps/rejected, and for ORPO sft_loss and
 * odds_ratio_loss. Eval metrics carry the prefix `eval_`.
 */
export class PreferenceMetrics {
  private readonly means = {
    chosen: new MeanMetric(),
    rejected: new MeanMetric(),
    accuracies: new MeanMetric(),
    margins: new MeanMetric(),
    chosenLogps: new MeanMetric(),
    rejectedLogps: new MeanMetric(),
    sftLoss: new MeanMetric(),
    oddsRatioLoss: new MeanMetric(),
  };

  constructor(private readonly options: { loss?: PreferenceLossType; beta?: number; ftx?: number } = {}) {}

  update(values: PreferenceStatisticsValues): void {
    const beta = this.options.beta ?? 0.1;
    const ftx = this.options.ftx ?? 0;
    for (let i = 0; i < values.losses.length; i++) {
      const chosen = values.chosenRewards[i];
      const rejected = values.rejectedRewards[i];
      this.means.chosen.update(chosen);
      this.means.rejected.update(rejected);
      this.means.accuracies.update(chosen > rejected ? 1 : 0);
      this.means.margins.update(chosen - rejected);
      this.means.chosenLogps.update(values.chosenLogps[i]);
      this.means.rejectedLogps.update(values.rejectedLogps[i]);
      this.means.sftLoss.update(values.sftLosses[i]);
      // ORPO's loss is sft + beta * odds ratio loss (+ ftx * sft).
      this.means.oddsRatioLoss.update((values.losses[i] - (1 + ftx) * values.sftLosses[i]) / beta);
    }
  }

  /** The metrics by LLaMA-Factory's names (empty before any update). */
  compute(prefix = ''): Record<string, number> {
    if (this.means.chosen.count === 0) return {};
    const out: Record<string, number> = {
      [`${prefix}rewards/chosen`]: this.means.chosen.compute()!,
      [`${prefix}rewards/rejected`]: this.means.rejected.compute()!,
      [`${prefix}rewards/accuracies`]: this.means.accuracies.compute()!,
      [`${prefix}rewards/margins`]: this.means.margins.compute()!,
      [`${prefix}logps/chosen`]: this.means.chosenLogps.compute()!,
      [`${prefix}logps/rejected`]: this.means.rejectedLogps.compute()!,
    };
    if (this.options.loss === 'orpo') {
      out[`${prefix}sft_loss`] = this.means.sftLoss.compute()!;
      out[`${prefix}odds_ratio_loss`] = this.means.oddsRatioLoss.compute()!;
    }
    return out;
  }

  reset(): void {
    for (const metric of Object.values(this.means)) metric.reset();
  }
}

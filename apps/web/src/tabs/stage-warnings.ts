import { formatNumber } from '../ui/format.js';
import type { ChartMarker } from '../ui/training-chart.js';

/** What the stage warnings know about the run besides its metrics. */
export interface StageWarningOptions {
  /** ppo_target: the KL the adaptive penalty steers to (LLaMA-Factory's default 6). */
  klTarget?: number;
}

/** A warning about a stage's metrics, with what to do. */
export interface StageWarning extends ChartMarker {
  advice: string;
}

/** Steps over which a PPO reward that does not move counts as flat. */
export const FLAT_WINDOW = 4;

/**
 * Watches the stage metrics of preference and RL runs, step by step, and says when they mean
 * trouble (each kind once per run):
 * - `reward-flat` (PPO): the mean reward moved less than 1e-3 (relative to its size) over the last
 *   FLAT_WINDOW steps: the reward model scores every answer alike, or the policy is not learning.
 * - `kl-exploding` (PPO): ppo/kl above twice ppo_target: the policy runs away from the reference
 *   (the reward model is being gamed). (KTO): its kl estimate more than doubled three steps in a
 *   row (from at least 0.05) and is above 1.
 * - `margins-negative` (KTO, DPO): rewards/margins below 0 on three steps in a row from step 3:
 *   the undesirable answers gain on the desirable ones.
 */
export class StageWarnings {
  private readonly history = new Map<string, number[]>();
  private readonly raised = new Set<string>();

  constructor(private readonly options: StageWarningOptions = {}) {}

  /** Takes one step's metrics; returns the warnings this step raises. */
  observe(step: number, metrics: Readonly<Record<string, number>>): StageWarning[] {
    for (const [name, value] of Object.entries(metrics)) {
      if (!Number.isFinite(value)) continue;
      let values = this.history.get(name);
      if (!values) {
        values = [];
        this.history.set(name, values);
      }
      values.push(value);
    }
    const found: StageWarning[] = [];
    const raise = (kind: string, message: string, advice: string) => {
      if (this.raised.has(kind)) return;
      this.raised.add(kind);
      found.push({ step, kind, severity: 'warning', message, advice });
    };
    const rewards = 'reward' in metrics ? (this.history.get('reward') ?? []) : [];
    if (rewards.length >= FLAT_WINDOW) {
      const window = rewards.slice(-FLAT_WINDOW);
      const low = Math.min(...window);
      const high = Math.max(...window);
      if (high - low < 1e-3 * Math.max(1, Math.abs(high))) {
        raise(
          'reward-flat',
          `PPO reward flat: ${formatNumber(low)} to ${formatNumber(high)} over the last ${FLAT_WINDOW} steps.`,
          'The reward model may score every answer alike (check its run’s accuracy), or the policy does not change: raise learning_rate or allow longer answers.',
        );
      }
    }
    const target = this.options.klTarget ?? 6;
    const ppoKl = metrics['ppo/kl'];
    if (Number.isFinite(ppoKl) && ppoKl > 2 * target) {
      raise(
        'kl-exploding',
        `PPO KL exploding: ${formatNumber(ppoKl)}, over twice the target of ${formatNumber(target)}.`,
        'The policy drifts away from the reference and may be gaming the reward model: lower learning_rate, or a lower ppo_target to tighten the KL penalty.',
      );
    }
    const kl = 'kl' in metrics ? (this.history.get('kl') ?? []) : [];
    if (kl.length >= 4) {
      const last = kl.slice(-4);
      // From at least 0.05: a KL that starts at 0 (policy = reference) doubles trivially at first.
      const doubling = [1, 2, 3].every((i) => last[i - 1] >= 0.05 && last[i] > 2 * last[i - 1]);
      if (doubling && last[3] > 1) {
        raise(
          'kl-exploding',
          `KL to the reference exploding: ${last.map(formatNumber).join(' → ')} over the last 4 steps.`,
          'The policy moves away from the reference fast: lower learning_rate or raise pref_beta.',
        );
      }
    }
    const margins = 'rewards/margins' in metrics ? (this.history.get('rewards/margins') ?? []) : [];
    if (step >= 3 && margins.length >= 3 && margins.slice(-3).every((value) => value < 0)) {
      raise(
        'margins-negative',
        `rewards/margins below 0 for 3 steps (now ${formatNumber(margins[margins.length - 1])}): the undesirable answers gain on the desirable ones.`,
        'Check the labels (kto_tag true marks a desirable answer; chosen must be the better answer), or lower learning_rate.',
      );
    }
    return found;
  }
}

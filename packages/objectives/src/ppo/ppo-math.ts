/*
 * The host-side arithmetic of PPO as LLaMA-Factory runs it (TRL 0.9's PPOTrainer, which its
 * CustomPPOTrainer extends): per-token rewards with the KL penalty, generalised advantage
 * estimation, whitening, the adaptive KL coefficient and the running score moments. Everything
 * works on one rollout's small arrays (response tokens of a few sequences), in float64.
 */

/** One sequence's per-token rewards: -kl_coef * (logprob - ref_logprob), plus the score on the last token. */
export function tokenRewards(
  score: number,
  logprobs: ArrayLike<number>,
  referenceLogprobs: ArrayLike<number>,
  klCoefficient: number,
): { rewards: Float64Array; kl: Float64Array } {
  const length = logprobs.length;
  if (referenceLogprobs.length !== length) {
    throw new Error(`tokenRewards: ${length} logprobs but ${referenceLogprobs.length} reference logprobs`);
  }
  if (length === 0) throw new Error('tokenRewards: a response needs at least one token');
  const kl = new Float64Array(length);
  const rewards = new Float64Array(length);
  for (let t = 0; t < length; t++) {
    kl[t] = logprobs[t] - referenceLogprobs[t];
    rewards[t] = -klCoefficient * kl[t];
  }
  rewards[length - 1] += score;
  return { rewards, kl };
}

/**
 * Generalised advantage estimation over one response: delta_t = r_t + gamma V_{t+1} - V_t (V after
 * the last token is 0), A_t = delta_t + gamma lambda A_{t+1}; returns = A + V (before whitening).
 */
export function generalizedAdvantages(
  rewards: ArrayLike<number>,
  values: ArrayLike<number>,
  gamma: number,
  lambda: number,
): { advantages: Float64Array; returns: Float64Array } {
  const length = rewards.length;
  if (values.length !== length)
    throw new Error(`generalizedAdvantages: ${length} rewards but ${values.length} values`);
  const advantages = new Float64Array(length);
  const returns = new Float64Array(length);
  let last = 0;
  for (let t = length - 1; t >= 0; t--) {
    const next = t < length - 1 ? values[t + 1] : 0;
    const delta = rewards[t] + gamma * next - values[t];
    last = delta + gamma * lambda * last;
    advantages[t] = last;
    returns[t] = last + values[t];
  }
  return { advantages, returns };
}

/**
 * Whitening over every token of a rollout (TRL's masked_whiten): (x - mean) / sqrt(var + 1e-8),
 * var unbiased (n - 1); with shiftMean false the mean is added back (what whiten_rewards uses).
 * Whitens `sequences` in place.
 */
export function whiten(sequences: Float64Array[], shiftMean = true): void {
  let count = 0;
  let total = 0;
  for (const values of sequences) {
    for (const value of values) total += value;
    count += values.length;
  }
  if (count < 2) throw new Error(`whiten: needs at least 2 values, got ${count}`);
  const mean = total / count;
  let squares = 0;
  for (const values of sequences) for (const value of values) squares += (value - mean) ** 2;
  const variance = (squares / count) * (count / (count - 1));
  const scale = 1 / Math.sqrt(variance + 1e-8);
  for (const values of sequences) {
    for (let i = 0; i < values.length; i++) {
      values[i] = (values[i] - mean) * scale + (shiftMean ? 0 : mean);
    }
  }
}

/**
 * TRL's AdaptiveKLController (Ziegler et al.): after each step the KL coefficient is multiplied by
 * 1 + clip(kl / target - 1, -0.2, 0.2) * n / horizon, steering the measured KL toward `target`
 * (LLaMA-Factory's ppo_target). A null target keeps the coefficient fixed.
 */
export class AdaptiveKlController {
  constructor(
    public value: number,
    readonly target: number | null,
    readonly horizon = 10000,
  ) {}

  update(currentKl: number, samples: number): void {
    if (this.target === null) return;
    const error = Math.min(0.2, Math.max(-0.2, currentKl / this.target - 1));
    this.value *= 1 + (error * samples) / this.horizon;
  }
}

/**
 * Running mean and standard deviation of the scores (TRL's RunningMoments), for ppo_score_norm:
 * scores become (score - mean) / (std + eps) with the moments after this batch.
 */
export class RunningMoments {
  mean = 0;
  std = 1;
  private variance = 1;
  private count = 1e-24;

  /** Adds a batch; returns the batch's own mean and (unbiased) standard deviation. */
  update(scores: ArrayLike<number>): { mean: number; std: number } {
    const n = scores.length;
    let total = 0;
    for (let i = 0; i < n; i++) total += scores[i];
    const batchMean = total / n;
    let squares = 0;
    for (let i = 0; i < n; i++) squares += (scores[i] - batchMean) ** 2;
    const batchVariance = squares / n;
    const delta = batchMean - this.mean;
    const totalCount = this.count + n;
    const newSum =
      this.variance * this.count + batchVariance * n + (delta * delta * this.count * n) / totalCount;
    this.mean += (delta * n) / totalCount;
    this.variance = newSum / totalCount;
    this.std = Math.sqrt((this.variance * totalCount) / (totalCount - 1));
    this.count = totalCount;
    return { mean: batchMean, std: Math.sqrt((batchVariance * n) / (n - 1)) };
  }

  /** The moments as plain numbers (saved in PPO checkpoints). */
  state(): { mean: number; std: number; variance: number; count: number } {
    return { mean: this.mean, std: this.std, variance: this.variance, count: this.count };
  }

  /** Continues from a saved `state()`. */
  restore(state: { mean: number; std: number; variance: number; count: number }): void {
    this.mean = state.mean;
    this.std = state.std;
    this.variance = state.variance;
    this.count = state.count;
  }

  /** ppo_score_norm: (score - mean) / (std + eps) with the running moments (updated with `scores` first). */
  normalize(scores: ArrayLike<number>): Float64Array {
    this.update(scores);
    const factor = this.std + 1.1920928955078125e-7;
    return Float64Array.from(scores, (score) => (score - this.mean) / factor);
  }
}

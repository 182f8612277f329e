import { autograd, concat, noGrad, type Tensor, TensorError } from '@webtune/tensors';

/**
 * KTO (Kahneman-Tversky optimisation, LLaMA-Factory's `stage: kto`), as TRL's KTOTrainer computes
 * it for `loss_type: kto`. Each example is one answer labelled desirable or undesirable; with
 * r = policy - reference (summed log-probabilities of the answer) and z the KL estimate,
 *
 *     desirable     w_d (1 - sigmoid(beta (r - z)))
 *     undesirable   w_u (1 - sigmoid(beta (z - r)))
 *
 * z = max(0, mean over the batch of (policy - reference) on the mismatched KL pairs (each prompt
 * with another example's answer)), a constant: it takes no gradient. Rewards are beta r, detached.
 * With `ftx` > 0, ftx times the SFT loss (-average log-prob) of each desirable answer is added.
 */
export interface KtoLossOptions {
  /** `pref_beta` (default 0.1). */
  beta?: number;
  /** `kto_chosen_weight`, w_d (default 1). */
  desirableWeight?: number;
  /** `kto_rejected_weight`, w_u (default 1). */
  undesirableWeight?: number;
  /** `pref_ftx` (default 0). */
  ftx?: number;
  /** The per-example losses are summed and divided by this (default: the examples given, a mean). */
  normalizer?: number;
}

/** What the KTO loss reads ([examples] each). */
export interface KtoInputs {
  /** The policy's summed log-probabilities of each answer (differentiable). */
  policy: Tensor;
  /** The reference's, constants. */
  reference: Tensor;
  /** Policy and reference log-probabilities of the KL pairs, constants (computed under noGrad). */
  policyKl: Tensor;
  referenceKl: Tensor;
  /** 1 for a desirable answer, 0 for an undesirable one (f32). */
  desirable: Tensor;
  /** Trained tokens of each answer (f32), for `ftx`'s average; needed only when ftx > 0. */
  lengths?: Tensor;
}

/** Per-example values behind the metrics, detached ([examples] each). */
export interface KtoStatistics {
  losses: Tensor;
  /** beta (policy - reference). */
  rewards: Tensor;
  /** The policy's summed log-probabilities. */
  logps: Tensor;
  desirable: Tensor;
  /** The batch's KL estimate, repeated per example. */
  kl: Tensor;
}

export interface KtoLossResult {
  loss: Tensor;
  statistics: KtoStatistics;
}

export function ktoLoss(inputs: KtoInputs, options: KtoLossOptions = {}): KtoLossResult {
  const beta = options.beta ?? 0.1;
  const desirableWeight = options.desirableWeight ?? 1;
  const undesirableWeight = options.undesirableWeight ?? 1;
  const ftx = options.ftx ?? 0;
  const examples = inputs.policy.size;
  if (!(beta > 0)) throw new TensorError(`ktoLoss: beta ${beta} must be > 0`);
  if (!(desirableWeight >= 0) || !(undesirableWeight >= 0)) {
    throw new TensorError(
      `ktoLoss: kto_chosen_weight ${desirableWeight} and kto_rejected_weight ${undesirableWeight} must be >= 0`,
    );
  }
  if (options.normalizer !== undefined && !(options.normalizer > 0)) {
    throw new TensorError(`ktoLoss: normalizer ${options.normalizer} must be > 0`);
  }
  for (const name of ['reference', 'policyKl', 'referenceKl', 'desirable', 'lengths'] as const) {
    const t = inputs[name];
    if (t && t.size !== examples) {
      throw new TensorError(`ktoLoss: ${name} ${t.describe()} must have ${examples} values like policy`);
    }
  }
  if (ftx > 0 && !inputs.lengths) throw new TensorError('ktoLoss: ftx > 0 needs the answer lengths');

  const policy = autograd.reshape(inputs.policy, [examples]);
  const desirable = inputs.desirable.reshape([examples]);
  // The KL estimate: a constant of the batch, clamped at 0 (TRL's clamp(min=0)).
  const kl = noGrad(() =>
    autograd.maximum(
      autograd.mean(
        autograd.sub(inputs.policyKl.reshape([examples]), inputs.referenceKl.reshape([examples])),
      ),
      0,
    ),
  );
  const logRatio = autograd.sub(policy, inputs.reference.reshape([examples]));
  // sign +1 (desirable) or -1 (undesirable); weight w_d or w_u.
  const sign = noGrad(() => autograd.sub(autograd.scale(desirable, 2), 1));
  const weight = noGrad(() =>
    autograd.add(autograd.scale(desirable, desirableWeight - undesirableWeight), undesirableWeight),
  );
  const z = autograd.scale(autograd.mul(autograd.sub(logRatio, kl), sign), beta);
  let losses = autograd.mul(autograd.add(autograd.neg(autograd.sigmoid(z)), 1), weight);
  if (ftx > 0) {
    const sft = autograd.neg(autograd.div(policy, inputs.lengths!.reshape([examples])));
    losses = autograd.add(losses, autograd.scale(autograd.mul(sft, desirable), ftx));
  }
  const loss = autograd.scale(autograd.sum(losses, null), 1 / (options.normalizer ?? examples));
  const statistics = noGrad(() => ({
    losses: autograd.scale(losses, 1),
    rewards: autograd.scale(logRatio, beta),
    logps: autograd.scale(policy, 1),
    desirable: autograd.scale(desirable, 1),
    kl: autograd.add(autograd.scale(policy, 0), kl),
  }));
  return { loss, statistics };
}

/** The statistics as one tensor [5 * examples] (one readback): losses, rewards, logps, desirable, kl. */
export function packKtoStatistics(statistics: KtoStatistics): Tensor {
  const n = statistics.losses.size;
  return noGrad(() =>
    concat(
      [statistics.losses, statistics.rewards, statistics.logps, statistics.desirable, statistics.kl].map(
        (t) => t.reshape([n]),
      ),
      0,
    ),
  );
}

/** Host copies of the statistics. */
export interface KtoStatisticsValues {
  losses: Float32Array;
  rewards: Float32Array;
  logps: Float32Array;
  desirable: Float32Array;
  kl: Float32Array;
}

/** packKtoStatistics' values, read back, as named arrays. */
export function unpackKtoStatistics(values: Float32Array): KtoStatisticsValues {
  if (values.length % 5 !== 0)
    throw new TensorError(`unpackKtoStatistics: ${values.length} values is not 5 per example`);
  const n = values.length / 5;
  const part = (i: number) => values.subarray(i * n, (i + 1) * n);
  return { losses: part(0), rewards: part(1), logps: part(2), desirable: part(3), kl: part(4) };
}

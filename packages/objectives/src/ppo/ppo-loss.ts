import { autograd, cast, concat, gt, noGrad, type Tensor, TensorError } from '@webtune/tensors';

/** PPO's clipping and weighting (TRL 0.9's PPOConfig defaults, which LLaMA-Factory keeps). */
export interface PpoLossOptions {
  /** cliprange: the policy ratio is clipped to [1 - c, 1 + c] (default 0.2). */
  clipRange?: number;
  /** cliprange_value: value predictions move at most this far from the rollout's (default 0.2). */
  clipRangeValue?: number;
  /** vf_coef: weight of the value loss (default 0.1). */
  valueCoefficient?: number;
  /** The masked sums are divided by this (default: the mask's count in this call, a masked mean). */
  normalizer?: number;
}

/** What the PPO loss reads: [rows, seq] each, aligned with next-token targets. */
export interface PpoLossInputs {
  /** The policy's log-probability of each response token now (differentiable). */
  logprobs: Tensor;
  /** The value head's prediction at each position now (differentiable). */
  values: Tensor;
  /** From the rollout, constants: log-probabilities, values, whitened advantages and returns. */
  oldLogprobs: Tensor;
  oldValues: Tensor;
  advantages: Tensor;
  returns: Tensor;
  /** 1 on response tokens, 0 elsewhere (f32). */
  mask: Tensor;
}

export interface PpoLossResult {
  /** policy loss + vf_coef * value loss. */
  loss: Tensor;
  /** Detached: [policy loss, value loss, policy clip fraction, value clip fraction, approx KL]. */
  statistics: Tensor;
}

/**
 * The clipped PPO objective as TRL's PPOTrainer.loss computes it, with masked means over the
 * response tokens:
 *
 *     ratio = exp(logprobs - old)
 *     policy = mean(max(-A ratio, -A clip(ratio, 1 - c, 1 + c)))
 *     value  = 0.5 mean(max((v - R)^2, (clip(v, v_old - c_v, v_old + c_v) - R)^2))
 *     loss   = policy + vf_coef value
 */
export function ppoLoss(inputs: PpoLossInputs, options: PpoLossOptions = {}): PpoLossResult {
  const clip = options.clipRange ?? 0.2;
  const clipValue = options.clipRangeValue ?? 0.2;
  const coefficient = options.valueCoefficient ?? 0.1;
  const shape = inputs.logprobs.shape;
  for (const [name, t] of Object.entries(inputs)) {
    if (t.size !== inputs.logprobs.size) {
      throw new TensorError(
        `ppoLoss: ${name} ${t.describe()} must match logprobs ${inputs.logprobs.describe()}`,
      );
    }
  }
  if (!(clip > 0) || !(clipValue > 0)) {
    throw new TensorError(`ppoLoss: cliprange ${clip} and cliprange_value ${clipValue} must be > 0`);
  }
  const reshaped = (t: Tensor) => (t.shape.join() === shape.join() ? t : t.reshape(shape));
  const mask = reshaped(inputs.mask);
  const advantages = reshaped(inputs.advantages);
  const returns = reshaped(inputs.returns);
  const oldValues = reshaped(inputs.oldValues);
  const values =
    inputs.values.shape.join() === shape.join() ? inputs.values : autograd.reshape(inputs.values, shape);
  const count = noGrad(() => autograd.maximum(autograd.sum(mask, null), 1));
  const maskedMean = (x: Tensor) => {
    const total = autograd.sum(autograd.mul(x, mask), null);
    return options.normalizer !== undefined
      ? autograd.scale(total, 1 / options.normalizer)
      : autograd.div(total, count);
  };

  // Masked positions hold anything; zero the log-ratio there so exp never overflows.
  const logRatio = autograd.mul(autograd.sub(inputs.logprobs, reshaped(inputs.oldLogprobs)), mask);
  const ratio = autograd.exp(logRatio);
  const clipped = autograd.minimum(autograd.maximum(ratio, 1 - clip), 1 + clip);
  const negativeAdvantages = noGrad(() => autograd.neg(advantages));
  const policyLosses = autograd.maximum(
    autograd.mul(ratio, negativeAdvantages),
    autograd.mul(clipped, negativeAdvantages),
  );
  const policyLoss = maskedMean(policyLosses);

  const moved = autograd.sub(values, oldValues);
  const valuesClipped = autograd.add(
    autograd.minimum(autograd.maximum(moved, -clipValue), clipValue),
    oldValues,
  );
  const valueLosses = autograd.maximum(
    autograd.square(autograd.sub(values, returns)),
    autograd.square(autograd.sub(valuesClipped, returns)),
  );
  const valueLoss = autograd.scale(maskedMean(valueLosses), 0.5);
  const loss = autograd.add(policyLoss, autograd.scale(valueLoss, coefficient));

  const statistics = noGrad(() => {
    const mean = (x: Tensor) => autograd.div(autograd.sum(autograd.mul(x, mask), null), count);
    const share = (a: Tensor, b: Tensor) => mean(cast(gt(a, b), 'f32'));
    const pieces = [
      policyLoss,
      valueLoss,
      // TRL's pg_clipfrac and vf_clipfrac: where the clipped term is the larger one.
      share(autograd.mul(clipped, negativeAdvantages), autograd.mul(ratio, negativeAdvantages)),
      share(
        autograd.square(autograd.sub(valuesClipped, returns)),
        autograd.square(autograd.sub(values, returns)),
      ),
      // approx KL: 0.5 mean((logprobs - old)^2)
      autograd.scale(mean(autograd.square(logRatio)), 0.5),
    ];
    return concat(
      pieces.map((piece) => piece.reshape([1])),
      0,
    );
  });
  return { loss, statistics };
}

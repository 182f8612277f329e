import { autograd, cast, maximum, ne, noGrad, sum, type Tensor, TensorError } from '@webtune/tensors';
import { IGNORE_INDEX, type LogitsSource, tokenCrossEntropy } from './token-cross-entropy.js';

/**
 * Next-token targets from labels laid out [rows, seq] (row-major): target[r, t] = label[r, t + 1],
 * and the last position of each row is IGNORE_INDEX. Pretraining passes the input ids as labels;
 * SFT passes labels with IGNORE_INDEX on the prompt and padding.
 */
export function shiftLabels(labels: ArrayLike<number>, rows: number, seq: number): Int32Array {
  if (labels.length !== rows * seq) {
    throw new TensorError(`shiftLabels: ${labels.length} labels for ${rows} rows of ${seq} tokens`);
  }
  const targets = new Int32Array(rows * seq).fill(IGNORE_INDEX);
  for (let r = 0; r < rows; r++) {
    for (let t = 0; t + 1 < seq; t++) targets[r * seq + t] = labels[r * seq + t + 1];
  }
  return targets;
}

/** Targets that count in the loss (not IGNORE_INDEX). */
export function countTrainedTokens(targets: ArrayLike<number>): number {
  let count = 0;
  for (let i = 0; i < targets.length; i++) if (targets[i] !== IGNORE_INDEX) count++;
  return count;
}

/**
 * Per-token loss weights from per-row weights (a row's `loss_weight`), aligned with shifted
 * targets: every trained target of row r gets rowWeights[r], ignored ones 0.
 */
export function rowTokenWeights(
  targets: ArrayLike<number>,
  rows: number,
  rowWeights: ArrayLike<number>,
): Float32Array {
  const seq = targets.length / rows;
  const weights = new Float32Array(targets.length);
  for (let i = 0; i < targets.length; i++) {
    if (targets[i] !== IGNORE_INDEX) weights[i] = rowWeights[Math.floor(i / seq)];
  }
  return weights;
}

export interface CausalLmLossOptions {
  /**
   * Per-token weights (f32, the targets' shape), for rows that carry `loss_weight`: the loss is
   * sum(w * ce) / normalizer. Default: 1 on every token.
   */
  weights?: Tensor;
  /**
   * What the (weighted) sum of token losses is divided by. Default: the targets counted in this
   * call, i.e. the mean over trained tokens (PyTorch's and LLaMA-Factory's SFT loss). A trainer
   * that accumulates micro-batches passes the trained tokens of the whole optimizer step, so that
   * the accumulated gradient equals the gradient of one big batch.
   */
  normalizer?: number;
  /**
   * LLaMA-Factory's `use_dft_loss` (dynamic fine-tuning): each token's cross-entropy is weighted
   * by the probability the model gives its target, exp(-ce), detached (no gradient through the
   * weight), then summed and normalised as usual.
   */
  dft?: boolean;
}

/**
 * The causal language-modelling loss (pretraining) and the SFT loss: cross-entropy of the next
 * token over the targets that are not IGNORE_INDEX (use `shiftLabels`), optionally weighted per
 * token, as a differentiable scalar. Logits may be given directly or as hidden states plus the
 * classifier (fused and chunked, see `LogitsSource`).
 */
export function causalLmLoss(
  source: LogitsSource,
  targets: Tensor,
  options: CausalLmLossOptions = {},
): Tensor {
  let losses = tokenCrossEntropy(source, targets);
  if (options.dft) {
    const probabilities = noGrad(() => autograd.exp(autograd.neg(losses)));
    losses = autograd.mul(losses, probabilities);
  }
  if (options.weights) {
    if (options.weights.size !== targets.size) {
      throw new TensorError(
        `causalLmLoss: weights ${options.weights.describe()} do not match targets ${targets.describe()}`,
      );
    }
    losses = autograd.mul(losses, options.weights.reshape(targets.shape));
  }
  const total = autograd.sum(losses, null);
  if (options.normalizer !== undefined) {
    if (!(options.normalizer > 0)) {
      throw new TensorError(`causalLmLoss: normalizer ${options.normalizer} must be > 0`);
    }
    return autograd.scale(total, 1 / options.normalizer);
  }
  // Counted on the GPU (no readback); an all-ignored batch gives 0, not 0/0.
  const counted = maximum(sum(cast(ne(targets, IGNORE_INDEX), 'f32'), null), 1);
  return autograd.div(total, counted);
}

/** The SFT loss: `causalLmLoss` over labels masked with IGNORE_INDEX, with optional token weights. */
export const sftLoss = causalLmLoss;

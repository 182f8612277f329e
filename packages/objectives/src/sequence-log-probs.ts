import { autograd, type Tensor, TensorError } from '@webtune/tensors';
import { IGNORE_INDEX, type LogitsSource, tokenCrossEntropy } from './token-cross-entropy.js';

/**
 * log p(sequence) of each row: the sum over trained positions of log softmax(logits)[target],
 * for targets [rows, seq] (i32, shifted, IGNORE_INDEX elsewhere) and logits [rows, seq, vocab]
 * (or hidden states and a classifier). Returns [rows], differentiable. This is what the DPO family
 * compares (LLaMA-Factory's get_batch_logps).
 */
export function sequenceLogProbs(source: LogitsSource, targets: Tensor): Tensor {
  if (targets.rank !== 2) {
    throw new TensorError(`sequenceLogProbs: targets ${targets.describe()} must be [rows, seq]`);
  }
  const losses = tokenCrossEntropy(source, targets);
  return autograd.neg(autograd.sum(losses, 1));
}

/** Trained targets of each row of [rows, seq] targets (host arrays): the lengths averaged over. */
export function trainedLengths(targets: ArrayLike<number>, rows: number): Float32Array {
  const seq = targets.length / rows;
  const lengths = new Float32Array(rows);
  for (let i = 0; i < targets.length; i++) if (targets[i] !== IGNORE_INDEX) lengths[Math.floor(i / seq)]++;
  return lengths;
}

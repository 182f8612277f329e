import { autograd, type Device, noGrad, rand, type Tensor, TensorError } from '@webtune/tensors';
import { logSigmoid } from './log-sigmoid.js';

/**
 * A value head: one linear unit on the last hidden state, the reward model's score. Its
 * parameters use TRL's and LLaMA-Factory's names (value_head.safetensors).
 */
export interface ValueHead {
  /** [1, hidden] */
  weight: Tensor;
  /** [1] */
  bias: Tensor;
}

export const VALUE_HEAD_NAMES = { weight: 'v_head.summary.weight', bias: 'v_head.summary.bias' } as const;

/** A value head initialised like torch.nn.Linear (uniform in +-1/sqrt(hidden)), from a seed. */
export function createValueHead(device: Device, hiddenSize: number, seed: number): ValueHead {
  const bound = 1 / Math.sqrt(hiddenSize);
  return {
    weight: rand(device, [1, hiddenSize], { seed, low: -bound, high: bound }),
    bias: rand(device, [1], { seed: seed + 1, low: -bound, high: bound }),
  };
}

/**
 * Flat positions of each row's last real token in a right-padded [rows, seq] batch: r * seq +
 * length - 1 (what `valueHeadScores` gathers).
 */
export function lastTokenPositions(lengths: ArrayLike<number>, seq: number): Int32Array {
  const positions = new Int32Array(lengths.length);
  for (let r = 0; r < lengths.length; r++) {
    if (!(lengths[r] >= 1 && lengths[r] <= seq)) {
      throw new TensorError(`lastTokenPositions: row ${r} has length ${lengths[r]}, outside [1, ${seq}]`);
    }
    positions[r] = r * seq + lengths[r] - 1;
  }
  return positions;
}

/**
 * The value head's score of each row at its last real token: hidden [rows, seq, hidden], positions
 * [rows] i32 from `lastTokenPositions`. Returns [rows], differentiable with respect to the hidden
 * states and the head (the gather is an embedding lookup into the flattened hidden states).
 */
export function valueHeadScores(hidden: Tensor, positions: Tensor, head: ValueHead): Tensor {
  if (hidden.rank !== 3 || positions.size !== hidden.shape[0]) {
    throw new TensorError(
      `valueHeadScores: hidden ${hidden.describe()} must be [rows, seq, hidden] with one position per row (${positions.describe()})`,
    );
  }
  const [rows, seq, width] = hidden.shape;
  const last = autograd.embedding(autograd.reshape(hidden, [rows * seq, width]), positions.reshape([rows]));
  const scores = autograd.matmul(last, head.weight, { transposeB: true, bias: head.bias });
  return autograd.reshape(scores, [rows]);
}

export interface PairwiseRewardResult {
  /** mean (or sum / normalizer) of -log sigmoid(chosen - rejected). */
  loss: Tensor;
  /** chosen - rejected per pair, detached (accuracy: the share above 0). */
  margins: Tensor;
}

/**
 * The pairwise (Bradley-Terry) reward-model loss of LLaMA-Factory's PairwiseTrainer:
 * -log sigmoid(score_chosen - score_rejected), averaged over pairs (or summed and divided by
 * `normalizer`, the pairs of an accumulated step).
 */
export function pairwiseRewardLoss(
  chosenScores: Tensor,
  rejectedScores: Tensor,
  options: { normalizer?: number } = {},
): PairwiseRewardResult {
  if (chosenScores.size !== rejectedScores.size) {
    throw new TensorError(
      `pairwiseRewardLoss: ${chosenScores.describe()} and ${rejectedScores.describe()} must have one score per pair`,
    );
  }
  const difference = autograd.sub(chosenScores, rejectedScores);
  const losses = autograd.neg(logSigmoid(difference));
  const loss = autograd.scale(autograd.sum(losses, null), 1 / (options.normalizer ?? chosenScores.size));
  const margins = noGrad(() => autograd.scale(difference, 1));
  return { loss, margins };
}

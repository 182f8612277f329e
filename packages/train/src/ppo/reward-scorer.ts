import { lastTokenPositions, type ValueHead, valueHeadScores } from '@webtune/objectives';
import { noGrad } from '@webtune/tensors';
import type { TrainableModel } from '../model/trainable-model.js';
import type { PpoSample } from './ppo-rollout.js';

/** Scores answers for PPO: a reward model's value head on the last token of query + answer. */
export type RewardScorer = (samples: readonly PpoSample[]) => Promise<number[]>;

/**
 * The scorer of a reward model trained with `stage: rm` (its model, or base + adapter, and its
 * value_head.safetensors), as LLaMA-Factory's get_rewards reads the score at the last token.
 */
export function rewardScorer(
  model: Pick<TrainableModel, 'device' | 'hiddenStates'>,
  valueHead: ValueHead,
  options: { padTokenId: number; batchSize: number },
): RewardScorer {
  return async (samples) => {
    const scores: number[] = [];
    for (let start = 0; start < samples.length; start += options.batchSize) {
      const part = samples.slice(start, start + options.batchSize);
      const sequences = part.map((s) => [...s.query, ...s.response]);
      const seq = Math.max(...sequences.map((s) => s.length));
      const ids = new Int32Array(part.length * seq).fill(options.padTokenId);
      sequences.forEach((tokens, r) => {
        ids.set(tokens, r * seq);
      });
      const device = model.device;
      const result = device.scope(() =>
        noGrad(() => {
          const hidden = model.hiddenStates(device.fromArray(ids, [part.length, seq], 'i32'));
          const positions = lastTokenPositions(
            sequences.map((s) => s.length),
            seq,
          );
          return valueHeadScores(hidden, device.fromArray(positions, [part.length], 'i32'), valueHead).keep();
        }),
      );
      scores.push(...Array.from((await result.toArray()) as Float32Array));
      result.dispose();
    }
    return scores;
  };
}

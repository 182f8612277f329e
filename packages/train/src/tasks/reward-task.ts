import {
  createValueHead,
  lastTokenPositions,
  pairwiseRewardLoss,
  RewardMetrics,
  VALUE_HEAD_NAMES,
  type ValueHead,
  valueHeadScores,
} from '@webtune/objectives';
import { autograd, type Tensor } from '@webtune/tensors';
import { type CollateOptions, collateRows, type PreferenceRow } from '../data/rows.js';
import type { TrainingTask } from './training-task.js';
import { saveValueHead } from './value-head-file.js';

export interface RewardTaskOptions {
  /** Seed of the value head's initialisation (default 0). */
  seed?: number;
  /** A value head to start from (see loadValueHead) instead of a fresh one; training updates it. */
  valueHead?: ValueHead;
  collate?: CollateOptions;
}

/**
 * Reward-model training (LLaMA-Factory's `stage: rm`): a value head scores each answer at its
 * last token, trained with the pairwise loss; the head trains beside the model's parameters
 * and is saved under TRL's names (v_head.summary.*): in checkpoints, and as value_head.safetensors
 * beside the exported adapter or model (loadValueHead reads it back).
 */
export function rewardTask(
  options: RewardTaskOptions = {},
): TrainingTask<PreferenceRow> & { valueHead(): ValueHead | null } {
  const metrics = new RewardMetrics();
  let head: ValueHead | null = null;
  return {
    stage: 'rm',
    unitsOf: () => 1,
    tokensOf: (row) => row.chosen.inputIds.length + row.rejected.inputIds.length,
    valueHead: () => head,
    parameters(model) {
      if (!head && options.valueHead) {
        const [rows, hidden] = options.valueHead.weight.shape;
        if (rows !== 1 || hidden !== model.hiddenSize || options.valueHead.bias.size !== 1) {
          throw new Error(
            `rewardTask: the value head is ${options.valueHead.weight.describe()} + ${options.valueHead.bias.describe()}; ` +
              `the model needs [1, ${model.hiddenSize}] + [1]`,
          );
        }
      }
      head ??= options.valueHead ?? createValueHead(model.device, model.hiddenSize, options.seed ?? 0);
      head.weight.keep();
      head.bias.keep();
      return [
        [VALUE_HEAD_NAMES.weight, head.weight],
        [VALUE_HEAD_NAMES.bias, head.bias],
      ] as [string, Tensor][];
    },
    exportFiles: async (sink) => (head ? saveValueHead(head, sink) : []),
    metrics: {
      update: (values) => metrics.update(values),
      compute: (prefix) => metrics.compute(prefix),
      reset: () => metrics.reset(),
    },
    forward(model, batch, normalizer, forwardOptions) {
      if (!head) throw new Error('rewardTask: parameters() must be called before forward()');
      const host = collateRows(
        [...batch.rows.map((r) => r.chosen), ...batch.rows.map((r) => r.rejected)],
        options.collate,
      );
      const device = model.device;
      const pairs = batch.rows.length;
      const ids = device.fromArray(host.inputIds, [host.rows, host.seq], 'i32');
      const positions = device.fromArray(lastTokenPositions(host.lengths, host.seq), [host.rows], 'i32');
      const scores = valueHeadScores(model.hiddenStates(ids, forwardOptions), positions, head);
      const { loss, margins } = pairwiseRewardLoss(
        autograd.slice(scores, [0], [pairs]),
        autograd.slice(scores, [pairs], [2 * pairs]),
        { normalizer },
      );
      return { loss, statistics: margins };
    },
  };
}

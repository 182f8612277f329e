import { causalLmLoss } from '@webtune/objectives';
import { type CollateOptions, collateRows, type SupervisedRow, trainedTokensOf } from '../data/rows.js';
import { classifierSource, type LogitsChunking } from './logits-chunks.js';
import type { TrainingTask } from './training-task.js';

export interface SupervisedTaskOptions {
  /** 'sft' (labels mask the prompt) or 'pt' (labels are the input ids); the loss is the same. */
  stage?: 'sft' | 'pt';
  /**
   * Rows of logits computed at once by the fused classifier + loss: 'auto' (default) follows
   * logitsChunkRows' rule, 0 computes them all at once.
   */
  chunkRows?: LogitsChunking;
  collate?: CollateOptions;
  /** use_dft_loss: each token's loss weighted by its detached target probability (see causalLmLoss). */
  dft?: boolean;
}

/**
 * Causal language modelling and SFT: cross-entropy of the next token over the trained labels,
 * each row's tokens weighted by its lossWeight, normalised by the trained tokens of the whole
 * optimizer step (so accumulating micro-batches equals one large batch).
 */
export function supervisedTask(options: SupervisedTaskOptions = {}): TrainingTask<SupervisedRow> {
  return {
    stage: options.stage ?? 'sft',
    unitsOf: (row) => trainedTokensOf(row) * (row.lossWeight ?? 1),
    tokensOf: (row) => row.inputIds.length,
    parameters: () => [],
    metrics: null,
    forward(model, batch, normalizer, forwardOptions) {
      const host = collateRows(batch.rows, options.collate);
      const device = model.device;
      const ids = device.fromArray(host.inputIds, [host.rows, host.seq], 'i32');
      const targets = device.fromArray(host.targets, [host.rows, host.seq], 'i32');
      const weights = host.weights ? device.fromArray(host.weights, [host.rows, host.seq], 'f32') : undefined;
      // Packed rows: positions restart per example; under neat_packing, segment ids keep the
      // examples from attending to each other.
      const segmentIds = host.segmentIds
        ? device.fromArray(host.segmentIds, [host.rows, host.seq], 'i32')
        : undefined;
      const hidden = model.hiddenStates(ids, { ...forwardOptions, positions: host.positions, segmentIds });
      const loss = causalLmLoss(classifierSource(model, hidden, options.chunkRows), targets, {
        normalizer,
        weights,
        dft: options.dft,
      });
      return { loss, statistics: null };
    },
  };
}

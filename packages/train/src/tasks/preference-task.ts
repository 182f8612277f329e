import {
  needsReference,
  type PreferenceLossOptions,
  PreferenceMetrics,
  preferenceLoss,
  type ReferenceModel,
  sequenceLogProbs,
  trainedLengths,
} from '@webtune/objectives';
import { autograd, concat, type Device, type Tensor } from '@webtune/tensors';
import { type CollateOptions, collateRows, type PreferenceRow } from '../data/rows.js';
import type { TrainableModel, TrainingForwardOptions } from '../model/trainable-model.js';
import { chooseReference, type ReferenceChoice } from './choose-reference.js';
import { classifierSource, type LogitsChunking } from './logits-chunks.js';
import type { TaskBatch, TrainingTask } from './training-task.js';

export type { ReferenceChoice };

export interface PreferenceTaskOptions extends Omit<PreferenceLossOptions, 'normalizer'> {
  /**
   * 'auto' (default): the same model with its adapters off when it has adapters, else the frozen
   * copy when one is given, else values precomputed once before training.
   */
  reference?: ReferenceChoice;
  /** The starting model, frozen (for 'frozen-copy'). */
  frozenCopy?: TrainableModel;
  /** Rows of logits computed at once by the fused classifier ('auto' by default, see logitsChunkRows). */
  chunkRows?: LogitsChunking;
  collate?: CollateOptions;
}

/** A collated pair batch on the device: rows 0..pairs-1 chosen, pairs..2 pairs-1 rejected. */
interface PairBatch {
  device: Device;
  exampleIds: readonly number[];
  pairs: number;
  ids: Tensor;
  targets: Tensor;
  lengths: Float32Array;
}

/**
 * DPO-family training (LLaMA-Factory's `stage: dpo`): one forward over the chosen and rejected
 * answers side by side, the preference loss against the reference, and the rewards/* and logps/*
 * metrics.
 */
export function preferenceTask(options: PreferenceTaskOptions = {}): TrainingTask<PreferenceRow> {
  const lossType = options.loss ?? 'sigmoid';
  const metrics = new PreferenceMetrics({ loss: lossType, beta: options.beta, ftx: options.ftx });
  let reference: ReferenceModel<PairBatch> | null = null;

  const logProbsOf = (
    model: TrainableModel,
    batch: PairBatch,
    forwardOptions: TrainingForwardOptions = {},
  ) => {
    const hidden = model.hiddenStates(batch.ids, forwardOptions);
    const sums = sequenceLogProbs(classifierSource(model, hidden, options.chunkRows), batch.targets);
    return {
      chosen: autograd.slice(sums, [0], [batch.pairs]),
      rejected: autograd.slice(sums, [batch.pairs], [2 * batch.pairs]),
    };
  };

  const collate = (device: Device, batch: TaskBatch<PreferenceRow>): PairBatch => {
    const host = collateRows(
      [...batch.rows.map((r) => r.chosen), ...batch.rows.map((r) => r.rejected)],
      options.collate,
    );
    return {
      device,
      exampleIds: batch.ids,
      pairs: batch.rows.length,
      ids: device.fromArray(host.inputIds, [host.rows, host.seq], 'i32'),
      targets: device.fromArray(host.targets, [host.rows, host.seq], 'i32'),
      lengths: trainedLengths(host.targets, host.rows),
    };
  };

  return {
    stage: 'dpo',
    unitsOf: () => 1,
    tokensOf: (row) => row.chosen.inputIds.length + row.rejected.inputIds.length,
    parameters: () => [],
    metrics: {
      update: (values) => metrics.update(unpack(values)),
      compute: (prefix) => metrics.compute(prefix),
      reset: () => metrics.reset(),
    },

    async prepare(model, splits, batchSize) {
      if (!needsReference(lossType)) return;
      reference = await chooseReference({
        task: 'preferenceTask',
        choice: options.reference,
        model,
        frozenCopy: options.frozenCopy,
        splits,
        batchSize,
        collate: (batch) => collate(model.device, batch),
        logProbs: logProbsOf,
      });
    },

    forward(model, batch, normalizer, forwardOptions) {
      const pairs = collate(model.device, batch);
      let referenceValues = null;
      if (needsReference(lossType)) {
        if (!reference) throw new Error('preferenceTask: prepare() was not called before forward()');
        referenceValues = reference.logProbs(pairs);
      }
      const policy = logProbsOf(model, pairs, forwardOptions);
      const count = pairs.pairs;
      const { loss, statistics } = preferenceLoss(
        {
          ...policy,
          chosenLengths: model.device.fromArray(pairs.lengths.subarray(0, count), [count], 'f32'),
          rejectedLengths: model.device.fromArray(pairs.lengths.subarray(count), [count], 'f32'),
        },
        referenceValues,
        { ...options, loss: lossType, normalizer },
      );
      const packed = concat(
        [
          statistics.losses,
          statistics.chosenRewards,
          statistics.rejectedRewards,
          statistics.chosenLogps,
          statistics.rejectedLogps,
          statistics.sftLosses,
        ],
        0,
      );
      return { loss, statistics: packed };
    },
  };
}

/** Statistics packed by forward() ([6 * pairs]) back into named arrays. */
function unpack(values: Float32Array) {
  const pairs = values.length / 6;
  const part = (i: number) => values.subarray(i * pairs, (i + 1) * pairs);
  return {
    losses: part(0),
    chosenRewards: part(1),
    rejectedRewards: part(2),
    chosenLogps: part(3),
    rejectedLogps: part(4),
    sftLosses: part(5),
  };
}

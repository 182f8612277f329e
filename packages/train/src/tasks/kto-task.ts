import {
  type KtoLossOptions,
  KtoMetrics,
  ktoLoss,
  packKtoStatistics,
  type ReferenceModel,
  sequenceLogProbs,
  trainedLengths,
  unpackKtoStatistics,
} from '@webtune/objectives';
import { autograd, type Device, noGrad, slice, type Tensor } from '@webtune/tensors';
import { type CollateOptions, collateRows, type KtoRow } from '../data/rows.js';
import type { TrainableModel, TrainingForwardOptions } from '../model/trainable-model.js';
import { chooseReference, type ReferenceChoice } from './choose-reference.js';
import { classifierSource, type LogitsChunking } from './logits-chunks.js';
import type { TaskBatch, TrainingTask } from './training-task.js';

export interface KtoTaskOptions extends Omit<KtoLossOptions, 'normalizer'> {
  /** Where the reference comes from; 'auto' as for preferenceTask. */
  reference?: ReferenceChoice;
  frozenCopy?: TrainableModel;
  /** Rows of logits computed at once by the fused classifier ('auto' by default, see logitsChunkRows). */
  chunkRows?: LogitsChunking;
  collate?: CollateOptions;
}

/**
 * A collated KTO batch: rows 0..n-1 the examples, n..2n-1 their KL pairs (the reference reads
 * both in one pass; its `chosen` is the examples', its `rejected` the KL pairs').
 */
interface KtoBatch {
  device: Device;
  exampleIds: readonly number[];
  examples: number;
  ids: Tensor;
  targets: Tensor;
  lengths: Float32Array;
  desirable: Float32Array;
}

/**
 * KTO training (LLaMA-Factory's `stage: kto`): the policy's log-probabilities of each answer
 * (with gradient) and of the KL pairs (without, as TRL computes them), the reference's of both,
 * the KTO loss, and the rewards/*, logps/* and kl metrics.
 */
export function ktoTask(options: KtoTaskOptions = {}): TrainingTask<KtoRow> {
  const metrics = new KtoMetrics();
  let reference: ReferenceModel<KtoBatch> | null = null;

  const collate = (device: Device, batch: TaskBatch<KtoRow>): KtoBatch => {
    const host = collateRows([...batch.rows, ...batch.rows.map((row) => row.kl)], options.collate);
    return {
      device,
      exampleIds: batch.ids,
      examples: batch.rows.length,
      ids: device.fromArray(host.inputIds, [host.rows, host.seq], 'i32'),
      targets: device.fromArray(host.targets, [host.rows, host.seq], 'i32'),
      lengths: trainedLengths(host.targets, host.rows),
      desirable: Float32Array.from(batch.rows, (row) => (row.desirable ? 1 : 0)),
    };
  };
  const half = (batch: KtoBatch, which: 0 | 1) => ({
    ids: slice(batch.ids, [which * batch.examples, 0], [(which + 1) * batch.examples, batch.ids.shape[1]]),
    targets: slice(
      batch.targets,
      [which * batch.examples, 0],
      [(which + 1) * batch.examples, batch.targets.shape[1]],
    ),
  });
  const logProbs = (
    model: TrainableModel,
    ids: Tensor,
    targets: Tensor,
    forward: TrainingForwardOptions = {},
  ) =>
    sequenceLogProbs(classifierSource(model, model.hiddenStates(ids, forward), options.chunkRows), targets);
  // Both halves in one pass (no gradient is taken through the reference).
  const bothOf = (model: TrainableModel, batch: KtoBatch) => {
    const sums = logProbs(model, batch.ids, batch.targets);
    return {
      chosen: autograd.slice(sums, [0], [batch.examples]),
      rejected: autograd.slice(sums, [batch.examples], [2 * batch.examples]),
    };
  };

  return {
    stage: 'kto',
    unitsOf: () => 1,
    tokensOf: (row) => row.inputIds.length + row.kl.inputIds.length,
    parameters: () => [],
    metrics: {
      update: (values) => metrics.update(unpackKtoStatistics(values)),
      compute: (prefix) => metrics.compute(prefix),
      reset: () => metrics.reset(),
    },

    async prepare(model, splits, batchSize) {
      reference = await chooseReference({
        task: 'ktoTask',
        choice: options.reference,
        model,
        frozenCopy: options.frozenCopy,
        splits,
        batchSize,
        collate: (batch) => collate(model.device, batch),
        logProbs: bothOf,
      });
    },

    forward(model, batch, normalizer, forwardOptions) {
      if (!reference) throw new Error('ktoTask: prepare() was not called before forward()');
      const collated = collate(model.device, batch);
      const n = collated.examples;
      const referenceValues = reference.logProbs(collated);
      const main = half(collated, 0);
      const kl = half(collated, 1);
      const policy = logProbs(model, main.ids, main.targets, forwardOptions);
      const policyKl = noGrad(() => logProbs(model, kl.ids, kl.targets));
      const { loss, statistics } = ktoLoss(
        {
          policy,
          reference: referenceValues.chosen,
          policyKl,
          referenceKl: referenceValues.rejected,
          desirable: model.device.fromArray(collated.desirable, [n], 'f32'),
          lengths: model.device.fromArray(collated.lengths.subarray(0, n), [n], 'f32'),
        },
        { ...options, normalizer },
      );
      return { loss, statistics: packKtoStatistics(statistics) };
    },
  };
}

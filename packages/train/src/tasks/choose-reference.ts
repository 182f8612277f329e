/**
 * Where a preference-style task (DPO family, KTO) gets its reference log-probabilities, chosen
 * once before training in one place: the policy with its adapters off when it has adapters, a
 * frozen copy when one is given, else values precomputed over every row with the starting weights.
 */
import {
  adaptersDisabledReference,
  frozenCopyReference,
  precomputedReference,
  precomputeReferenceLogProbs,
  type ReferenceBatch,
  type ReferenceLogProbs,
  type ReferenceModel,
} from '@webtune/objectives';
import type { Tensor } from '@webtune/tensors';
import type { TrainableModel } from '../model/trainable-model.js';
import type { TaskBatch } from './training-task.js';

/** Where the reference log-probabilities come from (see @webtune/objectives). */
export type ReferenceChoice = 'auto' | 'adapters-disabled' | 'frozen-copy' | 'precomputed';

export interface ReferenceSetup<Row, Batch extends ReferenceBatch & { ids: Tensor; targets: Tensor }> {
  /** The task's name, for errors. */
  task: string;
  /** 'auto' (default): adapters off when the model has adapters, else the frozen copy, else precomputed. */
  choice?: ReferenceChoice;
  model: TrainableModel;
  frozenCopy?: TrainableModel;
  /** The rows the precomputed table covers (train ids i, validation ids -(i + 1)). */
  splits: { train: readonly Row[]; validation: readonly Row[] };
  batchSize: number;
  collate: (batch: TaskBatch<Row>) => Batch;
  /** The log-probabilities a model gives a batch (`chosen` and `rejected` halves). */
  logProbs: (model: TrainableModel, batch: Batch) => ReferenceLogProbs;
}

/** The task's reference model, as `setup.choice` says. */
export async function chooseReference<Row, Batch extends ReferenceBatch & { ids: Tensor; targets: Tensor }>(
  setup: ReferenceSetup<Row, Batch>,
): Promise<ReferenceModel<Batch>> {
  const { model } = setup;
  const choice = setup.choice ?? 'auto';
  if (choice === 'adapters-disabled' || (choice === 'auto' && model.withAdaptersDisabled)) {
    if (!model.withAdaptersDisabled) {
      throw new Error(`${setup.task}: reference 'adapters-disabled' needs a model with adapters`);
    }
    const disabled = model.withAdaptersDisabled.bind(model) as <R>(fn: () => R) => R;
    return adaptersDisabledReference(disabled, (batch) => setup.logProbs(model, batch));
  }
  if (choice === 'frozen-copy' || (choice === 'auto' && setup.frozenCopy)) {
    const copy = setup.frozenCopy;
    if (!copy) throw new Error(`${setup.task}: reference 'frozen-copy' needs options.frozenCopy`);
    return frozenCopyReference((batch) => setup.logProbs(copy, batch));
  }
  // The trainer hands a stream's task no rows: there is nothing to precompute over.
  if (setup.splits.train.length === 0) {
    throw new Error(
      `${setup.task}: a precomputed reference needs every training row before training; streamed rows arrive during it (give the model adapters, or a frozen copy)`,
    );
  }
  // Once, with the starting weights, before any optimizer step; each batch freed when the next is asked for.
  const batches = function* () {
    for (const [split, rows] of [
      ['train', setup.splits.train],
      ['validation', setup.splits.validation],
    ] as const) {
      for (let start = 0; start < rows.length; start += setup.batchSize) {
        const slice = rows.slice(start, start + setup.batchSize);
        const ids = slice.map((_, i) => (split === 'train' ? start + i : -(start + i + 1)));
        const batch = model.device.scope(() => {
          const collated = setup.collate({ rows: slice, ids });
          collated.ids.keep();
          collated.targets.keep();
          return collated;
        });
        try {
          yield batch;
        } finally {
          batch.ids.dispose();
          batch.targets.dispose();
        }
      }
    }
  };
  return precomputedReference(
    await precomputeReferenceLogProbs(batches(), (batch) => setup.logProbs(model, batch)),
  );
}

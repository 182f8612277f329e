import { concat, type Device, noGrad, type Tensor, TensorError } from '@webtune/tensors';

/** Reference log-probabilities of the chosen and rejected answers of a batch ([pairs] each). */
export interface ReferenceLogProbs {
  chosen: Tensor;
  rejected: Tensor;
}

/** What a batch must say for precomputed reference values to be looked up. */
export interface ReferenceBatch {
  device: Device;
  /** A stable id per pair (its index in the dataset), the key of precomputed values. */
  exampleIds: readonly number[];
}

/**
 * Where the reference model's log-probabilities come from. Every kind computes under noGrad: the
 * reference is a constant of the loss.
 */
export interface ReferenceModel<B> {
  readonly kind: 'adapters-disabled' | 'frozen-copy' | 'precomputed';
  logProbs(batch: B): ReferenceLogProbs;
}

/**
 * The policy itself with its adapters switched off (LoRA, DoRA, Adapter): the base model is the
 * reference and no second copy is held in memory. `withAdaptersDisabled` is PEFT's scope (runs a
 * function with every adapter bypassed); `forward` is the policy's own forward on a batch.
 */
export function adaptersDisabledReference<B>(
  withAdaptersDisabled: <R>(fn: () => R) => R,
  forward: (batch: B) => ReferenceLogProbs,
): ReferenceModel<B> {
  return {
    kind: 'adapters-disabled',
    logProbs: (batch) => noGrad(() => withAdaptersDisabled(() => forward(batch))),
  };
}

/** A frozen copy of the starting model (full or freeze tuning with memory to spare). */
export function frozenCopyReference<B>(forward: (batch: B) => ReferenceLogProbs): ReferenceModel<B> {
  return { kind: 'frozen-copy', logProbs: (batch) => noGrad(() => forward(batch)) };
}

/** Reference values computed once before training, by pair id. */
export type PrecomputedLogProbs = ReadonlyMap<number, { chosen: number; rejected: number }>;

/**
 * Runs `forward` (under noGrad) over every batch once and keeps the values on the host: the
 * reference for full or freeze tuning without a second model in memory. Call it before the first
 * optimizer step. One readback per batch.
 */
export async function precomputeReferenceLogProbs<B extends ReferenceBatch>(
  batches: Iterable<B>,
  forward: (batch: B) => ReferenceLogProbs,
): Promise<Map<number, { chosen: number; rejected: number }>> {
  const table = new Map<number, { chosen: number; rejected: number }>();
  for (const batch of batches) {
    const pairs = batch.exampleIds.length;
    const packed = batch.device.scope(() =>
      noGrad(() => {
        const { chosen, rejected } = forward(batch);
        return concat([chosen.reshape([pairs]), rejected.reshape([pairs])], 0).keep();
      }),
    );
    const values = await packed.toArray();
    packed.dispose();
    batch.exampleIds.forEach((id, i) => {
      table.set(id, { chosen: values[i], rejected: values[pairs + i] });
    });
  }
  return table;
}

/** Looks up precomputed values (see precomputeReferenceLogProbs) for each batch. */
export function precomputedReference<B extends ReferenceBatch>(
  table: PrecomputedLogProbs,
): ReferenceModel<B> {
  return {
    kind: 'precomputed',
    logProbs: (batch) => {
      const chosen: number[] = [];
      const rejected: number[] = [];
      for (const id of batch.exampleIds) {
        const entry = table.get(id);
        if (!entry) throw new TensorError(`precomputedReference: no reference values for pair ${id}`);
        chosen.push(entry.chosen);
        rejected.push(entry.rejected);
      }
      const shape = [batch.exampleIds.length];
      return {
        chosen: batch.device.fromArray(chosen, shape, 'f32'),
        rejected: batch.device.fromArray(rejected, shape, 'f32'),
      };
    },
  };
}

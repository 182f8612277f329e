import { IGNORE_INDEX } from '@webtune/objectives';

/**
 * A tokenized SFT or pretraining row: what @webtune/data's encoded examples hold. Labels carry
 * IGNORE_INDEX (-100) on tokens the loss skips (prompt, padding).
 */
export interface SupervisedRow {
  inputIds: ArrayLike<number>;
  labels: ArrayLike<number>;
  /** Weight of this row's trained tokens in the loss (LLaMA-Factory's loss_weight; default 1). */
  lossWeight?: number;
}

/** A preference pair: the same prompt with the chosen and the rejected answer. */
export interface PreferenceRow {
  chosen: SupervisedRow;
  rejected: SupervisedRow;
}

/**
 * A KTO example: one answer labelled desirable or undesirable, and its KL pair (the same prompt
 * with another example's answer, for the KL estimate), as @webtune/data's EncodedKto holds them.
 */
export interface KtoRow extends SupervisedRow {
  desirable: boolean;
  kl: SupervisedRow;
}

/** A right-padded batch on the host, row-major [rows, seq]. */
export interface HostBatch {
  rows: number;
  seq: number;
  inputIds: Int32Array;
  /** Next-token targets (labels shifted left by one), IGNORE_INDEX on padding. */
  targets: Int32Array;
  /** Real (non-padding) tokens per row. */
  lengths: Int32Array;
  /** Per-token weights aligned with targets, when some row has a lossWeight other than 1. */
  weights?: Float32Array;
}

/** Collation settings shared by every task. */
export interface CollateOptions {
  /** Id written into padding (default 0; padding is never attended to nor trained on). */
  padTokenId?: number;
  /** Round the padded length up to a multiple of this (fewer distinct shapes, fewer pipelines). */
  padToMultipleOf?: number;
}

/** Pads sequences on the right into one batch and shifts their labels into next-token targets. */
export function collateRows(rows: readonly SupervisedRow[], options: CollateOptions = {}): HostBatch {
  let seq = Math.max(1, ...rows.map((row) => row.inputIds.length));
  if (options.padToMultipleOf) seq = Math.ceil(seq / options.padToMultipleOf) * options.padToMultipleOf;
  const count = rows.length;
  const inputIds = new Int32Array(count * seq).fill(options.padTokenId ?? 0);
  const targets = new Int32Array(count * seq).fill(IGNORE_INDEX);
  const lengths = new Int32Array(count);
  const weighted = rows.some((row) => (row.lossWeight ?? 1) !== 1);
  const weights = weighted ? new Float32Array(count * seq) : undefined;
  rows.forEach((row, r) => {
    const length = row.inputIds.length;
    if (row.labels.length !== length) {
      throw new Error(`collateRows: row ${r} has ${length} input ids but ${row.labels.length} labels`);
    }
    lengths[r] = length;
    for (let t = 0; t < length; t++) inputIds[r * seq + t] = row.inputIds[t];
    for (let t = 0; t + 1 < length; t++) {
      const target = row.labels[t + 1];
      targets[r * seq + t] = target;
      if (weights && target !== IGNORE_INDEX) weights[r * seq + t] = row.lossWeight ?? 1;
    }
  });
  return { rows: count, seq, inputIds, targets, lengths, weights };
}

/** Trained targets of a row once shifted (what the SFT loss averages over). */
export function trainedTokensOf(row: SupervisedRow): number {
  let count = 0;
  for (let t = 1; t < row.labels.length; t++) if (row.labels[t] !== IGNORE_INDEX) count++;
  return count;
}

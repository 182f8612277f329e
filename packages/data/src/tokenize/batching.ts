/**
 * Batches with little padding: length bucketing (shuffle, then sort by length inside large buckets, then
 * cut batches and shuffle their order), and collation into padded row-major arrays.
 */
import { SeededRandom } from '../random.js';
import type { LabelledSequence } from './supervised.js';
import { IGNORE_INDEX } from './tokenizer-like.js';

/** Options of `lengthBucketBatches`. */
export interface BucketOptions {
  batchSize: number;
  /** Seed of the shuffles. Default 42. */
  seed?: number;
  /** Examples sorted together: `batchSize * bucketBatches`. Default 50 batches. Larger: less padding, less randomness. */
  bucketBatches?: number;
}

/** Batches of example indexes, grouped by similar length. Every index appears exactly once. */
export function lengthBucketBatches(lengths: ArrayLike<number>, options: BucketOptions): number[][] {
  const { batchSize } = options;
  if (!Number.isInteger(batchSize) || batchSize <= 0)
    throw new RangeError(`lengthBucketBatches: batchSize must be a positive integer, got ${batchSize}`);
  const random = new SeededRandom(options.seed ?? 42);
  const order = random.permutation(lengths.length);
  const bucketSize = batchSize * (options.bucketBatches ?? 50);
  const batches: number[][] = [];
  for (let start = 0; start < order.length; start += bucketSize) {
    const bucket = order.slice(start, start + bucketSize).sort((a, b) => lengths[b] - lengths[a]);
    for (let offset = 0; offset < bucket.length; offset += batchSize)
      batches.push(bucket.slice(offset, offset + batchSize));
  }
  return random.shuffle(batches);
}

/** Padded tokens of batches against real tokens: how much a batching wastes. */
export function paddingCost(
  batches: readonly number[][],
  lengths: ArrayLike<number>,
): { realTokens: number; paddedTokens: number } {
  let realTokens = 0;
  let paddedTokens = 0;
  for (const batch of batches) {
    let longest = 0;
    for (const index of batch) {
      realTokens += lengths[index];
      longest = Math.max(longest, lengths[index]);
    }
    paddedTokens += longest * batch.length;
  }
  return { realTokens, paddedTokens };
}

/** A padded batch, row-major `[batchSize, sequenceLength]`. */
export interface Batch {
  batchSize: number;
  sequenceLength: number;
  inputIds: Int32Array;
  /** -100 on padding. */
  labels: Int32Array;
  /** 1 on real tokens, 0 on padding. */
  attentionMask: Uint8Array;
  /** Present when the sequences were packed: 0 on padding. */
  segmentIds?: Int32Array;
  /** Present when the sequences were packed. */
  positionIds?: Int32Array;
}

/** Options of `collate`. */
export interface CollateOptions {
  /** Id written into padding positions. */
  padTokenId: number;
  /** Round the sequence length up to a multiple of this (e.g. 8). */
  padToMultipleOf?: number;
  /** Pad to exactly this length instead of the longest sequence. */
  length?: number;
}

/** Pads sequences (right side) into one batch. Packed sequences keep their segment and position ids. */
export function collate(
  sequences: readonly (LabelledSequence & { segmentIds?: Int32Array; positionIds?: Int32Array })[],
  options: CollateOptions,
): Batch {
  let sequenceLength =
    options.length ?? Math.max(0, ...sequences.map((sequence) => sequence.inputIds.length));
  if (options.padToMultipleOf && options.length === undefined) {
    sequenceLength = Math.ceil(sequenceLength / options.padToMultipleOf) * options.padToMultipleOf;
  }
  const batchSize = sequences.length;
  const inputIds = new Int32Array(batchSize * sequenceLength).fill(options.padTokenId);
  const labels = new Int32Array(batchSize * sequenceLength).fill(IGNORE_INDEX);
  const attentionMask = new Uint8Array(batchSize * sequenceLength);
  const packed = sequences.some((sequence) => sequence.segmentIds !== undefined);
  const segmentIds = packed ? new Int32Array(batchSize * sequenceLength) : undefined;
  const positionIds = packed ? new Int32Array(batchSize * sequenceLength) : undefined;
  sequences.forEach((sequence, row) => {
    const length = sequence.inputIds.length;
    if (length > sequenceLength) {
      throw new RangeError(
        `collate: sequence ${row} has ${length} tokens, more than the batch length ${sequenceLength}`,
      );
    }
    const offset = row * sequenceLength;
    inputIds.set(sequence.inputIds, offset);
    labels.set(sequence.labels, offset);
    attentionMask.fill(1, offset, offset + length);
    if (segmentIds && positionIds) {
      if (sequence.segmentIds) segmentIds.set(sequence.segmentIds, offset);
      else segmentIds.fill(1, offset, offset + length);
      if (sequence.positionIds) positionIds.set(sequence.positionIds, offset);
      else for (let token = 0; token < length; token++) positionIds[offset + token] = token;
    }
  });
  return { batchSize, sequenceLength, inputIds, labels, attentionMask, segmentIds, positionIds };
}

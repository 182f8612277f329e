/**
 * Packing short examples into sequences of at most `maxLength` tokens, with segment ids so the packed
 * examples never attend to each other: token i may attend to token j only when j <= i and both carry
 * the same segment id. Position ids restart at 0 for each example.
 */
import type { LabelledSequence } from './supervised.js';
import { IGNORE_INDEX } from './tokenizer-like.js';

/** Several examples in one sequence. */
export interface PackedSequence extends LabelledSequence {
  /** 1, 2, ... for the tokens of the first, second ... example; 0 for padding. */
  segmentIds: Int32Array;
  /** Position of each token inside its own example. */
  positionIds: Int32Array;
  /** Indexes (in the input list) of the examples packed here, in order. */
  members: number[];
}

/** Options of `packSequences`. */
export interface PackingOptions {
  /** Longest packed sequence. Every example must fit (truncate with `cutoffLen` first). */
  maxLength: number;
}

/**
 * Packs examples as LLaMA-Factory's PackedSupervisedDatasetProcessor does (its `greedy_knapsack`):
 * pack after pack, take the longest remaining example that still fits the room left, until none
 * fits. Among examples of equal length the one listed last goes first. The first label of each
 * example is set to -100, so no example is trained to predict its first token from the previous
 * example's last (LLaMA-Factory keeps it; it is already -100 there unless train_on_prompt).
 */
export function packSequences(
  sequences: readonly LabelledSequence[],
  options: PackingOptions,
): PackedSequence[] {
  const { maxLength } = options;
  if (!Number.isInteger(maxLength) || maxLength <= 0)
    throw new RangeError(`packSequences: maxLength must be a positive integer, got ${maxLength}`);
  const indexesByLength = new Map<number, number[]>();
  const lengths: number[] = [];
  sequences.forEach((sequence, index) => {
    const length = sequence.inputIds.length;
    if (length > maxLength) {
      throw new RangeError(
        `packSequences: example ${index} has ${length} tokens, more than maxLength ${maxLength}`,
      );
    }
    if (length === 0) return;
    lengths.push(length);
    const indexes = indexesByLength.get(length) ?? [];
    indexes.push(index);
    indexesByLength.set(length, indexes);
  });
  return greedyKnapsack(lengths, maxLength).map((pack) =>
    packMembers(
      sequences,
      pack.map((length) => indexesByLength.get(length)!.pop()!),
    ),
  );
}

/**
 * LLaMA-Factory's `greedy_knapsack`: lengths sorted ascending; each knapsack repeatedly takes the
 * largest remaining length that fits its remaining capacity (binary search), until none fits.
 * Returns the lengths of each knapsack in the order they were taken.
 */
export function greedyKnapsack(lengths: readonly number[], capacity: number): number[][] {
  const remaining = [...lengths].sort((a, b) => a - b);
  const knapsacks: number[][] = [];
  while (remaining.length > 0) {
    const knapsack: number[] = [];
    let room = capacity;
    for (;;) {
      // The last index whose length is <= room (bisect_right - 1).
      let low = 0;
      let high = remaining.length;
      while (low < high) {
        const middle = (low + high) >> 1;
        if (remaining[middle] <= room) low = middle + 1;
        else high = middle;
      }
      if (low === 0) break;
      const [length] = remaining.splice(low - 1, 1);
      room -= length;
      knapsack.push(length);
    }
    // A length over the capacity never fits: LLaMA-Factory loops forever there; it is refused above.
    if (knapsack.length === 0)
      throw new RangeError(`greedyKnapsack: ${remaining[0]} is over the capacity ${capacity}`);
    knapsacks.push(knapsack);
  }
  return knapsacks;
}

function packMembers(sequences: readonly LabelledSequence[], members: number[]): PackedSequence {
  const used = members.reduce((total, member) => total + sequences[member].inputIds.length, 0);
  const inputIds = new Int32Array(used);
  const labels = new Int32Array(used);
  const segmentIds = new Int32Array(used);
  const positionIds = new Int32Array(used);
  let offset = 0;
  members.forEach((member, position) => {
    const sequence = sequences[member];
    inputIds.set(sequence.inputIds, offset);
    labels.set(sequence.labels, offset);
    labels[offset] = IGNORE_INDEX;
    segmentIds.fill(position + 1, offset, offset + sequence.inputIds.length);
    for (let token = 0; token < sequence.inputIds.length; token++) positionIds[offset + token] = token;
    offset += sequence.inputIds.length;
  });
  return { inputIds, labels, segmentIds, positionIds, members };
}

/**
 * The attention mask of segment ids as an L x L matrix (row i: what token i may attend to), 1 where
 * allowed: causal, and only inside the same non-zero segment. For checks and for trainers that take a
 * dense mask; efficient kernels should read the segment ids instead.
 */
export function segmentAttentionMask(segmentIds: Int32Array): Uint8Array {
  const length = segmentIds.length;
  const mask = new Uint8Array(length * length);
  for (let row = 0; row < length; row++) {
    const segment = segmentIds[row];
    if (segment === 0) continue;
    for (let column = row; column >= 0 && segmentIds[column] === segment; column--)
      mask[row * length + column] = 1;
  }
  return mask;
}

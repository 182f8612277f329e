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
 * Packs examples with best-fit decreasing: the longest first, each into the fullest sequence it still
 * fits. The first label of each example is set to -100, so no example is trained to predict its first
 * token from the previous example's last.
 */
export function packSequences(
  sequences: readonly LabelledSequence[],
  options: PackingOptions,
): PackedSequence[] {
  const { maxLength } = options;
  if (!Number.isInteger(maxLength) || maxLength <= 0)
    throw new RangeError(`packSequences: maxLength must be a positive integer, got ${maxLength}`);
  const order = sequences
    .map((_, index) => index)
    .sort((a, b) => sequences[b].inputIds.length - sequences[a].inputIds.length || a - b);
  // bins[capacity] holds the packs with that much room left.
  const bins: number[][] = Array.from({ length: maxLength + 1 }, () => []);
  const packs: { members: number[]; used: number }[] = [];
  for (const index of order) {
    const length = sequences[index].inputIds.length;
    if (length > maxLength) {
      throw new RangeError(
        `packSequences: example ${index} has ${length} tokens, more than maxLength ${maxLength}`,
      );
    }
    if (length === 0) continue;
    let target = -1;
    for (let room = length; room <= maxLength && target < 0; room++) {
      const candidates = bins[room];
      if (candidates.length > 0) target = candidates.pop()!;
    }
    if (target < 0) {
      target = packs.length;
      packs.push({ members: [], used: 0 });
    }
    const pack = packs[target];
    pack.members.push(index);
    pack.used += length;
    bins[maxLength - pack.used].push(target);
  }
  return packs.map((pack) => {
    const inputIds = new Int32Array(pack.used);
    const labels = new Int32Array(pack.used);
    const segmentIds = new Int32Array(pack.used);
    const positionIds = new Int32Array(pack.used);
    let offset = 0;
    pack.members.forEach((member, position) => {
      const sequence = sequences[member];
      inputIds.set(sequence.inputIds, offset);
      labels.set(sequence.labels, offset);
      labels[offset] = IGNORE_INDEX;
      segmentIds.fill(position + 1, offset, offset + sequence.inputIds.length);
      for (let token = 0; token < sequence.inputIds.length; token++) positionIds[offset + token] = token;
      offset += sequence.inputIds.length;
    });
    return { inputIds, labels, segmentIds, positionIds, members: pack.members };
  });
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

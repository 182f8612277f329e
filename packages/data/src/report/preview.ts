/** A readable preview of encoded examples that shows which tokens are trained. */
import type { RowLocation } from '../issues.js';
import type { LabelledSequence } from '../tokenize/supervised.js';
import { IGNORE_INDEX, type TokenizerLike } from '../tokenize/tokenizer-like.js';

/** A run of tokens that are all trained or all not. */
export interface PreviewSegment {
  text: string;
  trained: boolean;
  tokens: number;
}

/** One previewed example. */
export interface PreviewEntry {
  location: RowLocation;
  totalTokens: number;
  trainedTokens: number;
  segments: PreviewSegment[];
}

/** Marks around trained text in `formatPreview`. */
export const TRAINED_OPEN = '⟦';
export const TRAINED_CLOSE = '⟧';

/** Decodes runs of trained and untrained tokens of a sequence. */
export function previewSequence(
  sequence: LabelledSequence,
  tokenizer: TokenizerLike,
  location: RowLocation,
): PreviewEntry {
  const segments: PreviewSegment[] = [];
  let start = 0;
  let trainedTokens = 0;
  const length = sequence.inputIds.length;
  for (let index = 1; index <= length; index++) {
    const trained = sequence.labels[start] !== IGNORE_INDEX;
    if (index < length && (sequence.labels[index] !== IGNORE_INDEX) === trained) continue;
    const ids = Array.from(sequence.inputIds.subarray(start, index));
    segments.push({ text: tokenizer.decode(ids, { skipSpecialTokens: false }), trained, tokens: ids.length });
    if (trained) trainedTokens += ids.length;
    start = index;
  }
  return { location, totalTokens: length, trainedTokens, segments };
}

/** The preview as text, trained parts between ⟦ and ⟧. */
export function formatPreview(entry: PreviewEntry): string {
  return entry.segments
    .map((segment) => (segment.trained ? TRAINED_OPEN + segment.text + TRAINED_CLOSE : segment.text))
    .join('');
}

/**
 * From rendered segments to token ids and labels: each response-side turn makes a prompt/response pair;
 * prompt tokens get label -100 unless `trainOnPrompt`; `maskHistory` trains only the last turn; pairs are
 * truncated to `cutoffLen` turn by turn with LLaMA-Factory's rule (the last turn first when masking
 * history, so it survives).
 */
import type { TemplateSegment } from '../templates/types.js';
import { IGNORE_INDEX, type TokenizerLike } from './tokenizer-like.js';
import { truncatedLengths } from './truncation.js';

/** One turn as token ids: the prompt before it and its response. */
export interface TokenPair {
  promptIds: number[];
  responseIds: number[];
  /** False for responses with loss weight 0 and for a trailing prompt without response. */
  trainable: boolean;
}

/** Token ids with their labels, the same length. */
export interface LabelledSequence {
  inputIds: Int32Array;
  labels: Int32Array;
}

/** Options of the label assembly. */
export interface MaskOptions {
  /** Keep at most this many tokens (LLaMA-Factory's rule). Undefined: no limit. */
  cutoffLen?: number;
  /** Train on prompt tokens too. */
  trainOnPrompt?: boolean;
  /** Train only the last response. */
  maskHistory?: boolean;
}

/** A labelled sequence and how much truncation took from it. */
export interface AssembledSequence extends LabelledSequence {
  /** Tokens before truncation. */
  fullLength: number;
}

/** Groups segments into prompt/response text pairs; trailing prompt text becomes a pair without response. */
export function segmentPairs(
  segments: readonly TemplateSegment[],
): { prompt: string; response: string; trainable: boolean }[] {
  const pairs: { prompt: string; response: string; trainable: boolean }[] = [];
  let prompt = '';
  for (const segment of segments) {
    if (segment.kind === 'prompt') prompt += segment.text;
    else {
      pairs.push({ prompt, response: segment.text, trainable: segment.trainable !== false });
      prompt = '';
    }
  }
  if (prompt.length > 0) pairs.push({ prompt, response: '', trainable: false });
  return pairs;
}

/** Tokenizes segments pair by pair, each text on its own and without added special tokens. */
export function tokenizeSegments(
  segments: readonly TemplateSegment[],
  tokenizer: TokenizerLike,
): TokenPair[] {
  return segmentPairs(segments).map((pair) => ({
    promptIds: pair.prompt.length > 0 ? tokenizer.encode(pair.prompt, { addSpecialTokens: false }) : [],
    responseIds: pair.response.length > 0 ? tokenizer.encode(pair.response, { addSpecialTokens: false }) : [],
    trainable: pair.trainable,
  }));
}

/**
 * Builds input ids and labels from token pairs. `efficientEosId` (templates with LLaMA-Factory's
 * `efficient_eos`): one EOS ends the sequence, and the first prompt token of each later turn is labelled
 * EOS, so the model learns to stop where the next turn begins.
 */
export function assembleSupervised(
  pairs: readonly TokenPair[],
  options: MaskOptions = {},
  efficientEosId?: number,
): AssembledSequence {
  const { cutoffLen, trainOnPrompt = false, maskHistory = false } = options;
  const efficient = efficientEosId !== undefined;
  let fullLength = efficient ? 1 : 0;
  for (const pair of pairs) fullLength += pair.promptIds.length + pair.responseIds.length;

  const order = maskHistory ? [...pairs].reverse() : pairs;
  const pieces: { ids: number[]; labels: number[] }[] = [];
  let total = efficient ? 1 : 0;
  order.forEach((pair, position) => {
    if (cutoffLen !== undefined && total >= cutoffLen) return;
    let promptIds = pair.promptIds;
    let responseIds = pair.responseIds;
    if (cutoffLen !== undefined) {
      const kept = truncatedLengths(promptIds.length, responseIds.length, cutoffLen - total);
      promptIds = promptIds.slice(0, kept.promptLength);
      responseIds = responseIds.slice(0, kept.responseLength);
    }
    total += promptIds.length + responseIds.length;
    const promptLabels = trainOnPrompt ? promptIds : promptIds.map(() => IGNORE_INDEX);
    if (!trainOnPrompt && efficient && position !== 0 && promptLabels.length > 0)
      promptLabels[0] = efficientEosId;
    const masked = !pair.trainable || (maskHistory && position !== 0);
    const responseLabels = masked ? responseIds.map(() => IGNORE_INDEX) : responseIds;
    const piece = { ids: [...promptIds, ...responseIds], labels: [...promptLabels, ...responseLabels] };
    if (maskHistory) pieces.unshift(piece);
    else pieces.push(piece);
  });

  if (efficient) pieces.push({ ids: [efficientEosId], labels: [efficientEosId] });
  const inputIds = new Int32Array(total);
  const labels = new Int32Array(total);
  let offset = 0;
  for (const piece of pieces) {
    inputIds.set(piece.ids, offset);
    labels.set(piece.labels, offset);
    offset += piece.ids.length;
  }
  return { inputIds, labels, fullLength };
}

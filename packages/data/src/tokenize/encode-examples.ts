/**
 * Encoding examples of every stage into token ids and labels, through a chat template and a tokenizer.
 * Outputs are plain `Int32Array`s.
 */
import type { KtoExample, PreferenceExample, PretrainExample, SupervisedExample } from '../formats/types.js';
import type { RowLocation } from '../issues.js';
import { encodeConversation } from '../prompt/encode-conversation.js';
import type { EncodedTurns } from '../templates/llama-factory/llama-factory-template.js';
import { type ChatTemplate, TemplateError } from '../templates/types.js';
import {
  type AssembledSequence,
  assembleSupervised,
  type LabelledSequence,
  type MaskOptions,
} from './supervised.js';
import { IGNORE_INDEX, type TokenizerLike } from './tokenizer-like.js';
import { truncatedLengths } from './truncation.js';

/** What encoding needs: a template, a tokenizer, and the masking options. */
export interface EncodeOptions extends MaskOptions {
  template: ChatTemplate;
  tokenizer: TokenizerLike;
}

/** Fields every encoded example has. */
interface EncodedBase {
  location: RowLocation;
  /** Tokens before truncation (for pairs: the longer side). */
  fullLength: number;
  /** Tokens kept (for pairs: the longer side). */
  length: number;
  /** Remarks from the template (e.g. a system prompt it leaves out). */
  warnings: string[];
}

/** An SFT example. */
export interface EncodedSupervised extends EncodedBase, LabelledSequence {
  kind: 'supervised';
  /** A packed row (SFT packing): each token's position inside its own example. */
  positionIds?: Int32Array;
  /**
   * A packed row under neat_packing: 1, 2, ... per packed example. Attention stays inside each
   * (plain packing leaves this out and attends across examples, as LLaMA-Factory does).
   */
  attentionSegmentIds?: Int32Array;
  /** A packed row: where each of its examples came from, in order. */
  members?: RowLocation[];
}

/** A preference pair: the same prompt with the chosen and the rejected answer. */
export interface EncodedPreference extends EncodedBase {
  kind: 'preference';
  chosen: LabelledSequence;
  rejected: LabelledSequence;
}

/** A KTO example with its KL pair (its prompt with another example's answer). */
export interface EncodedKto extends EncodedBase, LabelledSequence {
  kind: 'kto';
  desirable: boolean;
  kl: LabelledSequence;
}

/** A block of pretraining tokens; `segmentIds` tell which document (1, 2, ...) each token is from. */
export interface EncodedPretrain extends LabelledSequence {
  kind: 'pretrain';
  segmentIds: Int32Array;
  /** Where the documents in the block came from. */
  documents: RowLocation[];
}

export type EncodedExample = EncodedSupervised | EncodedPreference | EncodedKto | EncodedPretrain;

/** Encodes an SFT example. Throws `TemplateError` when the template cannot render it. */
export function encodeSupervised(example: SupervisedExample, options: EncodeOptions): EncodedSupervised {
  const rendered = encodeConversation(options.template, example.conversation, options.tokenizer, {
    maskHistory: options.maskHistory,
  });
  const sequence = assembleSupervised(rendered.pairs, options, rendered.efficientEosId);
  return {
    kind: 'supervised',
    location: example.location,
    inputIds: sequence.inputIds,
    labels: sequence.labels,
    fullLength: sequence.fullLength,
    length: sequence.inputIds.length,
    warnings: rendered.warnings,
  };
}

/** The one prompt/response pair of a `oneturn` encoding, the `efficient_eos` EOS after the response. */
function withEfficientEos(encoded: EncodedTurns): { promptIds: number[]; responseIds: number[] } {
  const { promptIds, responseIds } = encoded.pairs[0];
  const eos = encoded.efficientEosId;
  return { promptIds, responseIds: eos === undefined ? responseIds : [...responseIds, eos] };
}

function labelled(promptIds: number[], responseIds: number[], trainOnPrompt: boolean): LabelledSequence {
  const inputIds = new Int32Array(promptIds.length + responseIds.length);
  inputIds.set(promptIds, 0);
  inputIds.set(responseIds, promptIds.length);
  const labels = new Int32Array(inputIds.length).fill(IGNORE_INDEX);
  if (trainOnPrompt) labels.set(promptIds, 0);
  labels.set(responseIds, promptIds.length);
  return { inputIds, labels };
}

/** Encodes a preference pair. Throws `TemplateError` when chosen and rejected render different prompts. */
export function encodePreference(example: PreferenceExample, options: EncodeOptions): EncodedPreference {
  const render = (answer: PreferenceExample['chosen']) => {
    const conversation = { ...example.conversation, turns: [...example.conversation.turns, answer] };
    return encodeConversation(options.template, conversation, options.tokenizer, { mode: 'oneturn' });
  };
  const chosen = render(example.chosen);
  const rejected = render(example.rejected);
  const chosenTurn = withEfficientEos(chosen);
  const rejectedTurn = withEfficientEos(rejected);
  if (chosenTurn.promptIds.join() !== rejectedTurn.promptIds.join()) {
    throw new TemplateError(
      'the chosen and rejected answers render different prompts',
      example.conversation.turns.length,
    );
  }
  const longest = Math.max(chosenTurn.responseIds.length, rejectedTurn.responseIds.length);
  const fullLength = chosenTurn.promptIds.length + longest;
  let { promptIds } = chosenTurn;
  let chosenIds = chosenTurn.responseIds;
  let rejectedIds = rejectedTurn.responseIds;
  if (options.cutoffLen !== undefined) {
    const kept = truncatedLengths(promptIds.length, longest, options.cutoffLen);
    promptIds = promptIds.slice(0, kept.promptLength);
    chosenIds = chosenIds.slice(0, kept.responseLength);
    rejectedIds = rejectedIds.slice(0, kept.responseLength);
  }
  const trainOnPrompt = options.trainOnPrompt ?? false;
  return {
    kind: 'preference',
    location: example.location,
    chosen: labelled(promptIds, chosenIds, trainOnPrompt),
    rejected: labelled(promptIds, rejectedIds, trainOnPrompt),
    fullLength,
    length: promptIds.length + Math.max(chosenIds.length, rejectedIds.length),
    warnings: [...new Set([...chosen.warnings, ...rejected.warnings])],
  };
}

/** A KTO example tokenized but not yet paired for its KL term. */
export interface TokenizedKto {
  example: KtoExample;
  promptIds: number[];
  responseIds: number[];
  warnings: string[];
}

/** Tokenizes a KTO example. Throws `TemplateError` when the template cannot render it. */
export function tokenizeKto(example: KtoExample, options: EncodeOptions): TokenizedKto {
  const rendered = encodeConversation(options.template, example.conversation, options.tokenizer, {
    mode: 'oneturn',
  });
  const { promptIds, responseIds } = withEfficientEos(rendered);
  return { example, promptIds, responseIds, warnings: rendered.warnings };
}

/**
 * Encodes tokenized KTO examples. The KL pair of example i is its prompt with the answer of example
 * i + 1 (wrapping around), so the answers are mismatched.
 */
export function encodeKto(tokenized: readonly TokenizedKto[], options: MaskOptions): EncodedKto[] {
  const truncated = (promptIds: number[], responseIds: number[]): AssembledSequence =>
    assembleSupervised([{ promptIds, responseIds, trainable: true }], {
      cutoffLen: options.cutoffLen,
      trainOnPrompt: options.trainOnPrompt,
    });
  return tokenized.map((item, index) => {
    const other = tokenized[(index + 1) % tokenized.length];
    const main = truncated(item.promptIds, item.responseIds);
    const kl = truncated(item.promptIds, other.responseIds);
    return {
      kind: 'kto',
      location: item.example.location,
      desirable: item.example.desirable,
      inputIds: main.inputIds,
      labels: main.labels,
      kl: { inputIds: kl.inputIds, labels: kl.labels },
      fullLength: main.fullLength,
      length: main.inputIds.length,
      warnings: item.warnings,
    };
  });
}

/** Options of pretraining encoding. */
export interface PretrainOptions {
  tokenizer: TokenizerLike;
  /** Block length. Undefined: one block per document, uncut. */
  cutoffLen?: number;
  /**
   * Concatenate documents (each followed by EOS) and cut blocks of `cutoffLen` (LLaMA-Factory's default
   * for pretraining; the last, shorter block is kept). Off: one block per document, truncated.
   */
  packing?: boolean;
}

/** Result of pretraining encoding: the blocks and each document's token count. */
export interface EncodedPretrainSet {
  blocks: EncodedPretrain[];
  documentLengths: number[];
  /** Documents that were cut (only without packing). */
  truncatedDocuments: number;
  truncatedTokens: number;
}

/** Tokenizes pretraining documents (with the tokenizer's own BOS, then EOS) into blocks. */
export function encodePretrain(
  examples: readonly PretrainExample[],
  options: PretrainOptions,
): EncodedPretrainSet {
  const { tokenizer, cutoffLen } = options;
  const eos = tokenizer.eosTokenId;
  const documents = examples.map((example) => {
    const ids = tokenizer.encode(example.text, { addSpecialTokens: true });
    if (eos !== undefined && eos !== null) ids.push(eos);
    return ids;
  });
  const documentLengths = documents.map((ids) => ids.length);
  const blocks: EncodedPretrain[] = [];
  let truncatedDocuments = 0;
  let truncatedTokens = 0;
  if (!options.packing || cutoffLen === undefined) {
    documents.forEach((ids, index) => {
      const kept = cutoffLen === undefined ? ids : ids.slice(0, cutoffLen);
      if (kept.length < ids.length) {
        truncatedDocuments++;
        truncatedTokens += ids.length - kept.length;
      }
      const inputIds = Int32Array.from(kept);
      blocks.push({
        kind: 'pretrain',
        inputIds,
        labels: Int32Array.from(kept),
        segmentIds: new Int32Array(kept.length).fill(1),
        documents: [examples[index].location],
      });
    });
    return { blocks, documentLengths, truncatedDocuments, truncatedTokens };
  }
  let current: { ids: number[]; segments: number[]; documents: RowLocation[] } = {
    ids: [],
    segments: [],
    documents: [],
  };
  const flush = () => {
    if (current.ids.length === 0) return;
    blocks.push({
      kind: 'pretrain',
      inputIds: Int32Array.from(current.ids),
      labels: Int32Array.from(current.ids),
      segmentIds: Int32Array.from(current.segments),
      documents: current.documents,
    });
    current = { ids: [], segments: [], documents: [] };
  };
  documents.forEach((ids, index) => {
    let offset = 0;
    while (offset < ids.length) {
      const room = cutoffLen - current.ids.length;
      const piece = ids.slice(offset, offset + room);
      const segment = current.documents.length + 1;
      current.documents.push(examples[index].location);
      for (const id of piece) {
        current.ids.push(id);
        current.segments.push(segment);
      }
      offset += piece.length;
      if (current.ids.length === cutoffLen) flush();
    }
  });
  flush();
  return { blocks, documentLengths, truncatedDocuments, truncatedTokens };
}

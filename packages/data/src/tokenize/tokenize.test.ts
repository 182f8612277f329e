import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Conversation } from '../formats/types.js';
import { SeededRandom } from '../random.js';
import { llamaFactoryTemplate } from '../templates/llama-factory/index.js';
import { ToyTokenizer, toyQwenTokenizer } from '../test-support/toy-tokenizer.js';
import { collate, lengthBucketBatches, paddingCost } from './batching.js';
import {
  encodeKto,
  encodePreference,
  encodePretrain,
  encodeSupervised,
  tokenizeKto,
} from './encode-examples.js';
import { greedyKnapsack, packSequences, segmentAttentionMask } from './packing.js';
import { assembleSupervised, type TokenPair, tokenizeSegments } from './supervised.js';
import { IGNORE_INDEX as X } from './tokenizer-like.js';
import { truncatedLengths } from './truncation.js';

const PACKING_GOLDEN = JSON.parse(
  readFileSync(new URL('./__fixtures__/llama-factory-packing.json', import.meta.url), 'utf8'),
) as { cases: { lengths: number[]; capacity: number; packs: number[][] }[] };

const range = (start: number, count: number) => Array.from({ length: count }, (_, index) => start + index);
const pair = (promptLength: number, responseLength: number, base: number, trainable = true): TokenPair => ({
  promptIds: range(base, promptLength),
  responseIds: range(base + 100, responseLength),
  trainable,
});
const location = { dataset: 'test', file: 'test.json', row: 1 };

describe('cutoff_len rule', () => {
  it('cuts the prompt when the response is short, the response when the prompt is short, else in proportion', () => {
    // Response under half the budget: the prompt is cut.
    expect(truncatedLengths(100, 10, 50)).toEqual({ promptLength: 40, responseLength: 10 });
    // Prompt under half the budget: the response is cut.
    expect(truncatedLengths(10, 100, 50)).toEqual({ promptLength: 10, responseLength: 40 });
    // Both long: the budget is split 60:40 as the lengths are (floor for the response).
    expect(truncatedLengths(90, 60, 50)).toEqual({ promptLength: 30, responseLength: 20 });
    expect(truncatedLengths(30, 70, 33)).toEqual({ promptLength: 10, responseLength: 23 });
    // Fits: nothing cut. No budget left: nothing kept.
    expect(truncatedLengths(5, 6, 50)).toEqual({ promptLength: 5, responseLength: 6 });
    expect(truncatedLengths(5, 6, 0)).toEqual({ promptLength: 0, responseLength: 0 });
  });
});

describe('labels and masks', () => {
  const pairs = [pair(3, 2, 10), pair(2, 2, 20)];

  it('puts -100 on prompt tokens and keeps responses', () => {
    const sequence = assembleSupervised(pairs);
    expect(Array.from(sequence.inputIds)).toEqual([10, 11, 12, 110, 111, 20, 21, 120, 121]);
    expect(Array.from(sequence.labels)).toEqual([X, X, X, 110, 111, X, X, 120, 121]);
    expect(sequence.fullLength).toBe(9);
  });

  it('trains prompts with trainOnPrompt, only the last turn with maskHistory, nothing of a loss-weight-0 turn', () => {
    expect(Array.from(assembleSupervised(pairs, { trainOnPrompt: true }).labels)).toEqual([
      10, 11, 12, 110, 111, 20, 21, 120, 121,
    ]);
    const history = assembleSupervised(pairs, { maskHistory: true });
    expect(Array.from(history.inputIds)).toEqual([10, 11, 12, 110, 111, 20, 21, 120, 121]);
    expect(Array.from(history.labels)).toEqual([X, X, X, X, X, X, X, 120, 121]);
    expect(Array.from(assembleSupervised([pair(1, 2, 10, false), pair(1, 1, 20)]).labels)).toEqual([
      X,
      X,
      X,
      X,
      120,
    ]);
  });

  it('truncates turn by turn, dropping turns past cutoffLen, and keeps the last turn first under maskHistory', () => {
    // Budget 6: turn 1 (3+2) fits, turn 2 gets 1 token: its response (2) is not under half of 1, its
    // prompt (2) is not either, so the budget splits 2:2 -> floor(1*2/4) = 0 response, 1 prompt.
    const cut = assembleSupervised(pairs, { cutoffLen: 6 });
    expect(Array.from(cut.inputIds)).toEqual([10, 11, 12, 110, 111, 20]);
    expect(Array.from(cut.labels)).toEqual([X, X, X, 110, 111, X]);
    expect(cut.fullLength).toBe(9);
    // Under maskHistory the last turn is placed first: it survives whole, the first turn is cut.
    const last = assembleSupervised(pairs, { cutoffLen: 6, maskHistory: true });
    expect(Array.from(last.inputIds)).toEqual([10, 11, 20, 21, 120, 121]);
    expect(Array.from(last.labels)).toEqual([X, X, X, X, 120, 121]);
    // A budget used up by the first turn drops the rest.
    expect(Array.from(assembleSupervised(pairs, { cutoffLen: 5 }).inputIds)).toEqual([10, 11, 12, 110, 111]);
  });
});

describe('encoding conversations', () => {
  const tokenizer = toyQwenTokenizer();
  const template = llamaFactoryTemplate('chatml', { eosToken: '<|im_end|>' });
  const im = (token: string) => tokenizer.tokenToId(token)!;
  const chars = (text: string) => [...text].map((character) => 1000 + character.codePointAt(0)!);
  const conversation: Conversation = {
    turns: [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'yo' },
    ],
  };

  it('encodes each pair apart, with special tokens as single ids', () => {
    const pairs = tokenizeSegments(template.render(conversation).segments, tokenizer);
    expect(pairs).toEqual([
      {
        promptIds: [
          im('<|im_start|>'),
          ...chars('user\nhi'),
          im('<|im_end|>'),
          ...chars('\n'),
          im('<|im_start|>'),
          ...chars('assistant\n'),
        ],
        responseIds: [...chars('yo'), im('<|im_end|>'), ...chars('\n')],
        trainable: true,
      },
    ]);
    const encoded = encodeSupervised({ kind: 'supervised', location, conversation }, { template, tokenizer });
    expect(encoded.length).toBe(pairs[0].promptIds.length + 4);
    expect(Array.from(encoded.labels).filter((label) => label !== X)).toEqual(pairs[0].responseIds);
  });

  it('encodes preference pairs over one prompt, truncating both answers alike', () => {
    const encoded = encodePreference(
      {
        kind: 'preference',
        location,
        conversation: { turns: [{ role: 'user', content: 'q' }] },
        chosen: { role: 'assistant', content: 'good answer' },
        rejected: { role: 'assistant', content: 'bad' },
      },
      { template, tokenizer, cutoffLen: 20 },
    );
    const prompt = [
      im('<|im_start|>'),
      ...chars('user\nq'),
      im('<|im_end|>'),
      ...chars('\n'),
      im('<|im_start|>'),
      ...chars('assistant\n'),
    ];
    // prompt 20, longest answer 13: neither under half of 20, so 20 * 13 / 33 -> 7 answer tokens, 13 prompt tokens.
    expect(Array.from(encoded.chosen.inputIds)).toEqual([...prompt.slice(0, 13), ...chars('good an')]);
    expect(Array.from(encoded.rejected.inputIds)).toEqual([
      ...prompt.slice(0, 13),
      ...chars('bad'),
      im('<|im_end|>'),
      ...chars('\n'),
    ]);
    expect(Array.from(encoded.chosen.labels.subarray(0, 13)).every((label) => label === X)).toBe(true);
    expect(encoded).toMatchObject({ fullLength: 33, length: 20 });
  });

  it('pairs each KTO example with the next one’s answer for the KL term', () => {
    const make = (answer: string, desirable: boolean) => ({
      kind: 'kto' as const,
      location,
      desirable,
      conversation: {
        turns: [
          { role: 'user' as const, content: 'q' },
          { role: 'assistant' as const, content: answer },
        ],
      },
    });
    const tokenized = [make('aa', true), make('bbb', false)].map((example) =>
      tokenizeKto(example, { template, tokenizer }),
    );
    const [first, second] = encodeKto(tokenized, {});
    expect(first.desirable).toBe(true);
    expect(second.desirable).toBe(false);
    const promptLength = tokenized[0].promptIds.length;
    expect(Array.from(first.kl.inputIds.subarray(promptLength))).toEqual([
      ...chars('bbb'),
      im('<|im_end|>'),
      ...chars('\n'),
    ]);
    expect(Array.from(second.kl.inputIds.subarray(promptLength))).toEqual([
      ...chars('aa'),
      im('<|im_end|>'),
      ...chars('\n'),
    ]);
  });

  it('concatenates pretraining documents with EOS into blocks, or truncates each without packing', () => {
    const plain = new ToyTokenizer({ eos: '</s>' });
    const eos = plain.eosTokenId!;
    const documents = ['abcd', 'efg'].map((text, index) => ({
      kind: 'pretrain' as const,
      location: { file: 'x.txt', row: index + 1 },
      text,
    }));
    const packed = encodePretrain(documents, { tokenizer: plain, cutoffLen: 3, packing: true });
    expect(packed.blocks.map((block) => Array.from(block.inputIds))).toEqual([
      chars('abc'),
      [...chars('d'), eos, ...chars('e')],
      [...chars('fg'), eos],
    ]);
    expect(Array.from(packed.blocks[1].segmentIds)).toEqual([1, 1, 2]);
    expect(packed.blocks[1].documents.map((document) => document.row)).toEqual([1, 2]);
    expect(packed.documentLengths).toEqual([5, 4]);
    const cut = encodePretrain(documents, { tokenizer: plain, cutoffLen: 3, packing: false });
    expect(cut.blocks.map((block) => Array.from(block.inputIds))).toEqual([chars('abc'), chars('efg')]);
    expect(cut).toMatchObject({ truncatedDocuments: 2, truncatedTokens: 3 });
  });
});

describe('packing', () => {
  const sequence = (length: number, base: number) => ({
    inputIds: Int32Array.from(range(base, length)),
    labels: Int32Array.from(range(base, length)),
  });

  it("packs as LLaMA-Factory's greedy_knapsack does (golden from its own code)", () => {
    for (const { lengths, capacity, packs } of PACKING_GOLDEN.cases) {
      const sequences = lengths.map((length, index) => sequence(length, index * 1000));
      const packed = packSequences(sequences, { maxLength: capacity });
      expect(packed.map((pack) => pack.members)).toEqual(packs);
      expect(packed.every((pack) => pack.inputIds.length <= capacity)).toBe(true);
      expect(greedyKnapsack(lengths, capacity)).toEqual(packs.map((pack) => pack.map((i) => lengths[i])));
    }
  });

  it('keeps examples apart with segment ids and restarts positions', () => {
    const sequences = [sequence(5, 100), sequence(3, 200), sequence(4, 300), sequence(2, 400)];
    const packs = packSequences(sequences, { maxLength: 8 });
    expect(packs.map((pack) => pack.members)).toEqual([
      [0, 1], // 5 + 3
      [2, 3], // 4 + 2
    ]);
    const first = packs[0];
    expect(Array.from(first.inputIds)).toEqual([...range(100, 5), ...range(200, 3)]);
    expect(Array.from(first.segmentIds)).toEqual([1, 1, 1, 1, 1, 2, 2, 2]);
    expect(Array.from(first.positionIds)).toEqual([0, 1, 2, 3, 4, 0, 1, 2]);
    // No example is trained to predict its first token from the previous example.
    expect(Array.from(first.labels)).toEqual([X, 101, 102, 103, 104, X, 201, 202]);
    expect(() => packSequences([sequence(9, 0)], { maxLength: 8 })).toThrow(
      /example 0 has 9 tokens, more than maxLength 8/,
    );
  });

  it('builds a causal block-diagonal attention mask from segment ids', () => {
    const mask = segmentAttentionMask(Int32Array.from([1, 1, 2, 2, 2, 0]));
    const rows = Array.from({ length: 6 }, (_, row) =>
      Array.from(mask.subarray(row * 6, row * 6 + 6)).join(''),
    );
    expect(rows).toEqual(['100000', '110000', '001000', '001100', '001110', '000000']);
  });
});

describe('length bucketing and collation', () => {
  it('uses every example once and pads far less than random batches', () => {
    const lengths = Array.from({ length: 1000 }, (_, index) => 10 + ((index * 7919) % 500));
    const batches = lengthBucketBatches(lengths, { batchSize: 8, seed: 1 });
    expect(batches.flat().sort((a, b) => a - b)).toEqual(range(0, 1000));
    expect(lengthBucketBatches(lengths, { batchSize: 8, seed: 1 })).toEqual(batches);
    const bucketed = paddingCost(batches, lengths);
    const order = new SeededRandom(1).permutation(lengths.length);
    const random = Array.from({ length: 125 }, (_, index) => order.slice(index * 8, index * 8 + 8));
    const unsorted = paddingCost(random, lengths);
    expect(bucketed.realTokens).toBe(unsorted.realTokens);
    expect(bucketed.paddedTokens - bucketed.realTokens).toBeLessThan(
      (unsorted.paddedTokens - unsorted.realTokens) / 10,
    );
  });

  it('pads right into row-major arrays', () => {
    const batch = collate(
      [
        { inputIds: Int32Array.from([5, 6, 7]), labels: Int32Array.from([X, 6, 7]) },
        { inputIds: Int32Array.from([8]), labels: Int32Array.from([8]) },
      ],
      { padTokenId: 0, padToMultipleOf: 4 },
    );
    expect(batch).toMatchObject({ batchSize: 2, sequenceLength: 4 });
    expect(Array.from(batch.inputIds)).toEqual([5, 6, 7, 0, 8, 0, 0, 0]);
    expect(Array.from(batch.labels)).toEqual([X, 6, 7, X, 8, X, X, X]);
    expect(Array.from(batch.attentionMask)).toEqual([1, 1, 1, 0, 1, 0, 0, 0]);
    expect(batch.segmentIds).toBeUndefined();
  });
});

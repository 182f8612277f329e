import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURES } from '../testing/fakes.js';
import { sentenceBleu } from './bleu.js';

interface Golden {
  nltk: string;
  cases: { name: string; references: string[][]; hypothesis: string[]; nist: number; epsilon: number }[];
}

// Values from NLTK 3.8's sentence_bleu (scripts/bleu_goldens.py); the first is the example in
// NLTK's documentation (0.5045...).
const golden: Golden = JSON.parse(readFileSync(join(FIXTURES, 'bleu-goldens.json'), 'utf8'));

describe('sentenceBleu against NLTK', () => {
  it('reproduces the documented NLTK example', () => {
    const example = golden.cases[0];
    expect(example.nist.toFixed(4)).toBe('0.5046');
    expect(String(example.nist).startsWith('0.5045')).toBe(true);
    expect(sentenceBleu(example.references, example.hypothesis)).toBeCloseTo(0.5045666840058485, 12);
  });

  for (const item of golden.cases) {
    it(`${item.name}: method3 (nist) and method1 (epsilon) smoothing`, () => {
      expect(sentenceBleu(item.references, item.hypothesis, { smoothing: 'nist' })).toBeCloseTo(
        item.nist,
        12,
      );
      expect(sentenceBleu(item.references, item.hypothesis, { smoothing: 'epsilon' })).toBeCloseTo(
        item.epsilon,
        12,
      );
    });
  }

  it('works out a case by hand: hypothesis "a b c d", reference "a b c e"', () => {
    // p1 = 3/4, p2 = 2/3, p3 = 1/2, p4 = 0/1 -> nist: 1/(2 x 1); equal lengths: no brevity penalty.
    const expected = Math.exp((Math.log(3 / 4) + Math.log(2 / 3) + Math.log(1 / 2) + Math.log(1 / 2)) / 4);
    expect(sentenceBleu([['a', 'b', 'c', 'e']], ['a', 'b', 'c', 'd'])).toBeCloseTo(expected, 14);
    // Without smoothing a missing order makes the score vanish.
    expect(sentenceBleu([['a', 'b', 'c', 'e']], ['a', 'b', 'c', 'd'], { smoothing: 'none' })).toBeLessThan(
      1e-70,
    );
  });
});

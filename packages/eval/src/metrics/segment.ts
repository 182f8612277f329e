/**
 * Splitting text into the tokens BLEU and ROUGE count. Chinese has no spaces, so a metric over
 * whitespace words would see one "word" per sentence; it is segmented into characters (the default)
 * or dictionary words.
 */

/**
 * - `characters`: each CJK character (Han, kana, Hangul syllables) is a token; runs of other
 *   letters and digits are words; every other visible character (punctuation) is a token; spaces
 *   separate. English comes out as words, Chinese as characters, mixed text as both.
 * - `words`: the platform's word segmenter (`Intl.Segmenter`, dictionary-based for Chinese and
 *   Japanese; present in Node and every current browser); spaces are dropped.
 * - `whitespace`: split on runs of whitespace.
 */
export type Segmentation = 'characters' | 'words' | 'whitespace';

const CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u;
const WORD_CHARACTER = /[\p{L}\p{N}\p{M}_]/u;

/** The tokens of `text` under a segmentation. */
export function segmentText(
  text: string,
  segmentation: Segmentation = 'characters',
  locale = 'zh',
): string[] {
  switch (segmentation) {
    case 'whitespace':
      return text.split(/\s+/u).filter((token) => token.length > 0);
    case 'words': {
      const segmenter = new Intl.Segmenter(locale, { granularity: 'word' });
      return [...segmenter.segment(text)]
        .map((segment) => segment.segment)
        .filter((segment) => segment.trim().length > 0);
    }
    case 'characters': {
      const tokens: string[] = [];
      let word = '';
      for (const character of text) {
        if (WORD_CHARACTER.test(character) && !CJK.test(character)) {
          word += character;
          continue;
        }
        if (word.length > 0) {
          tokens.push(word);
          word = '';
        }
        if (character.trim().length > 0) tokens.push(character);
      }
      if (word.length > 0) tokens.push(word);
      return tokens;
    }
    default:
      throw new RangeError(
        `unknown segmentation "${segmentation as string}" (characters, words, whitespace)`,
      );
  }
}

// Test doubles shared by this package's tests (not part of the public API).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EvalTokenizer } from '../prompt-encoding.js';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '__fixtures__');

/** One token per code point; id 1 is BOS (added by default, written as <s>). */
export function characterTokenizer(options: { bos?: boolean } = {}): EvalTokenizer {
  const bos = options.bos ?? false;
  return {
    bosTokenId: bos ? 1 : undefined,
    eosTokenId: undefined,
    addBosToken: bos,
    encode(text, encodeOptions) {
      const body =
        text.startsWith('<s>') && bos
          ? [1, ...[...text.slice(3)].map((c) => c.codePointAt(0)!)]
          : [...text].map((c) => c.codePointAt(0)!);
      return bos && (encodeOptions?.addSpecialTokens ?? true) ? [1, ...body] : body;
    },
    decode(ids) {
      return ids.map((id) => (id === 1 && bos ? '<s>' : String.fromCodePoint(id))).join('');
    },
    tokenToId(token) {
      return [...token].length === 1 ? token.codePointAt(0) : undefined;
    },
  };
}

/**
 * A tokenizer for tests: special tokens are recognised in text and get ids 1, 2, ...; every other
 * character (code point) is one token with id 1000 + code point. Lengths are therefore easy to count
 * by hand, which is what tests of masking and truncation need.
 */
import type { TokenizerLike } from '../tokenize/tokenizer-like.js';

export class ToyTokenizer implements TokenizerLike {
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  readonly padTokenId: number | null;
  readonly chatTemplate: string | null;
  private readonly special: string[];

  constructor(
    options: { special?: string[]; bos?: string; eos?: string; pad?: string; chatTemplate?: string } = {},
  ) {
    this.special = [...(options.special ?? [])];
    for (const token of [options.bos, options.eos, options.pad])
      if (token && !this.special.includes(token)) this.special.push(token);
    // Longest first, so that `<|endoftext|>` wins over a shorter prefix.
    this.special.sort((a, b) => b.length - a.length);
    this.bosTokenId = options.bos ? this.tokenToId(options.bos)! : null;
    this.eosTokenId = options.eos ? this.tokenToId(options.eos)! : null;
    this.padTokenId = options.pad ? this.tokenToId(options.pad)! : null;
    this.chatTemplate = options.chatTemplate ?? null;
  }

  tokenToId(token: string): number | undefined {
    const index = [...this.special].sort().indexOf(token);
    if (index >= 0) return index + 1;
    const points = [...token];
    return points.length === 1 ? 1000 + token.codePointAt(0)! : undefined;
  }

  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    const ids: number[] = [];
    if (options.addSpecialTokens && this.bosTokenId !== null) ids.push(this.bosTokenId);
    let index = 0;
    while (index < text.length) {
      const token = this.special.find((candidate) => text.startsWith(candidate, index));
      if (token) {
        ids.push(this.tokenToId(token)!);
        index += token.length;
        continue;
      }
      const point = text.codePointAt(index)!;
      ids.push(1000 + point);
      index += point > 0xffff ? 2 : 1;
    }
    return ids;
  }

  decode(ids: number[], options: { skipSpecialTokens?: boolean } = {}): string {
    const sorted = [...this.special].sort();
    return ids
      .map((id) => {
        if (id >= 1000) return String.fromCodePoint(id - 1000);
        if (options.skipSpecialTokens) return '';
        return sorted[id - 1] ?? '';
      })
      .join('');
  }
}

/** A toy tokenizer with Qwen's special tokens and the given chat template. */
export function toyQwenTokenizer(chatTemplate?: string): ToyTokenizer {
  return new ToyTokenizer({
    special: [
      '<|im_start|>',
      '<|im_end|>',
      '<|endoftext|>',
      '<think>',
      '</think>',
      '<tool_call>',
      '</tool_call>',
    ],
    eos: '<|im_end|>',
    pad: '<|endoftext|>',
    chatTemplate,
  });
}

/**
 * What generation and perplexity need from a tokenizer. `Tokenizer` of @webtune/tokenizers fits;
 * so does any object with these two methods.
 */
export interface TextTokenizer {
  /** Token ids of `text`; `addSpecialTokens` adds the tokenizer's default specials (BOS). */
  encode(text: string, options?: { addSpecialTokens?: boolean }): ArrayLike<number> & Iterable<number>;
  /** The text of `ids`. */
  decode(ids: readonly number[]): string;
}

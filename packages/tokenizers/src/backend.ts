/** A token the tokenizer handles outside the model (split out of text before BPE runs). */
export interface AddedToken {
  id: number;
  content: string;
  /** Special tokens (BOS, EOS, chat markers...) are dropped by `skipSpecialTokens`. */
  special: boolean;
  /** Whether the token is matched after normalisation. */
  normalized: boolean;
  lstrip: boolean;
  rstrip: boolean;
  singleWord: boolean;
}

/**
 * What the `Tokenizer` facade needs from an implementation. One per file format: tokenizer.json
 * (wrapping @huggingface/tokenizers) and llama2.c tokenizer.bin.
 */
export interface TokenizerBackend {
  /** Ids of `text`; `addSpecialTokens` runs the format's post-processing (BOS...). */
  encode(text: string, addSpecialTokens: boolean): number[];
  /** Text of `ids` (already validated to be in range). */
  decode(ids: readonly number[], skipSpecialTokens: boolean): string;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  /** Largest id + 1. */
  readonly vocabSize: number;
  readonly addedTokens: readonly AddedToken[];
}

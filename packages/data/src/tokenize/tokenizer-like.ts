/**
 * The little this package needs from a tokenizer. `@webtune/tokenizers`' `Tokenizer` fits it, and so
 * does any object with these members: the data package does not depend on an implementation.
 */
export interface TokenizerLike {
  /** Token ids of a text. Special-token text (`<|im_start|>`) must come out as the special token's id. */
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  /** Text of token ids. */
  decode(ids: number[], options?: { skipSpecialTokens?: boolean }): string;
  /** Id of a token given as its vocabulary string, if it has one. */
  tokenToId(token: string): number | undefined;
  readonly bosTokenId?: number | null;
  readonly eosTokenId?: number | null;
  readonly padTokenId?: number | null;
  /** The Jinja `chat_template` from tokenizer_config.json, when the model has one. */
  readonly chatTemplate?: string | null;
}

/** Label of tokens the loss ignores (PyTorch's `ignore_index`). */
export const IGNORE_INDEX = -100;

/** The text of a special token (`<|im_end|>`), or `undefined` when the id is absent. */
export function tokenText(tokenizer: TokenizerLike, id: number | null | undefined): string | undefined {
  if (id === null || id === undefined) return undefined;
  return tokenizer.decode([id], { skipSpecialTokens: false });
}

/** The special-token strings templates write, read from a tokenizer. */
export function templateTokensOf(tokenizer: TokenizerLike): {
  bosToken?: string;
  eosToken?: string;
  padToken?: string;
} {
  return {
    bosToken: tokenText(tokenizer, tokenizer.bosTokenId),
    eosToken: tokenText(tokenizer, tokenizer.eosTokenId),
    padToken: tokenText(tokenizer, tokenizer.padTokenId),
  };
}

/** What the stream needs from a tokenizer. */
export interface StreamDecodable {
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
}

const replacementCharacter = '\uFFFD';

/**
 * Turns generated ids into text as they arrive. `push(id)` returns the text that is now final
 * ('' while a UTF-8 character is still split across tokens, or when the token adds nothing);
 * `flush()` returns whatever is left. Joined, the pieces equal `decode(allIds)`.
 *
 * It decodes a short window (the tokens since the last emitted text plus the tokens before
 * them) so decoders that look at context, like SentencePiece's leading-space strip, see the same
 * neighbours as a full decode, and the cost per token stays constant.
 */
export class DecodeStream {
  readonly #tokenizer: StreamDecodable;
  readonly #skipSpecialTokens: boolean;
  #ids: number[] = [];
  /** Tokens before this index are context only (already emitted). */
  #readIndex = 0;
  /** Text of ids[0, readIndex). */
  #prefixText = '';

  constructor(tokenizer: StreamDecodable, options: { skipSpecialTokens?: boolean } = {}) {
    this.#tokenizer = tokenizer;
    this.#skipSpecialTokens = options.skipSpecialTokens ?? false;
  }

  /** Adds one id; returns the newly completed text. */
  push(id: number): string {
    this.#ids.push(id);
    const text = this.#decode(this.#ids);
    if (text.length <= this.#prefixText.length || text.endsWith(replacementCharacter)) return '';
    if (!text.startsWith(this.#prefixText)) {
      // A decoder rewrote earlier text (should not happen for byte-level or SentencePiece
      // decoders); emit nothing new rather than repeat text.
      return '';
    }
    const fresh = text.slice(this.#prefixText.length);
    // Keep the just-emitted tokens as context for the next step, drop the older ones.
    this.#ids = this.#ids.slice(this.#readIndex);
    this.#readIndex = this.#ids.length;
    this.#prefixText = this.#decode(this.#ids);
    return fresh;
  }

  /** Adds several ids; returns the newly completed text. */
  pushAll(ids: Iterable<number>): string {
    let text = '';
    for (const id of ids) text += this.push(id);
    return text;
  }

  /** Ends the stream: returns text still held back (with U+FFFD for incomplete bytes). */
  flush(): string {
    const text = this.#decode(this.#ids);
    const rest = text.startsWith(this.#prefixText) ? text.slice(this.#prefixText.length) : '';
    this.#ids = [];
    this.#readIndex = 0;
    this.#prefixText = '';
    return rest;
  }

  #decode(ids: number[]): string {
    return ids.length === 0
      ? ''
      : this.#tokenizer.decode(ids, { skipSpecialTokens: this.#skipSpecialTokens });
  }
}

import { Tokenizer as HuggingFaceTokenizer } from '@huggingface/tokenizers';
import type { AddedToken, TokenizerBackend } from './backend.js';
import { TokenizerError } from './errors.js';
import { specialTokenContent, type TokenizerConfig } from './tokenizer-config.js';

/** The parts of tokenizer.json read here; the rest is passed to @huggingface/tokenizers. */
interface TokenizerJson {
  model?: { type?: string; vocab?: unknown };
  added_tokens?: {
    id: number;
    content: string;
    special?: boolean;
    normalized?: boolean;
    lstrip?: boolean;
    rstrip?: boolean;
    single_word?: boolean;
  }[];
  [key: string]: unknown;
}

/** Parses tokenizer.json text or checks an already parsed object. */
export function parseTokenizerJson(tokenizerJson: object | string): TokenizerJson {
  let value: unknown = tokenizerJson;
  if (typeof tokenizerJson === 'string') {
    try {
      value = JSON.parse(tokenizerJson);
    } catch (error) {
      throw new TokenizerError(`tokenizer.json is not valid JSON: ${(error as Error).message}`);
    }
  }
  const json = value as TokenizerJson;
  if (json === null || typeof json !== 'object' || typeof json.model !== 'object' || json.model === null) {
    throw new TokenizerError('tokenizer.json has no "model" object');
  }
  if (json.model.type !== undefined && !['BPE', 'WordPiece', 'Unigram'].includes(json.model.type)) {
    throw new TokenizerError(`tokenizer.json model type ${JSON.stringify(json.model.type)} is not supported`);
  }
  checkAddedTokens(json.added_tokens);
  return json;
}

/** Every added_tokens entry: an object with an integer id >= 0 and a non-empty string content. */
function checkAddedTokens(tokens: unknown): void {
  if (tokens === undefined || tokens === null) return;
  if (!Array.isArray(tokens)) throw new TokenizerError('tokenizer.json: added_tokens must be an array');
  tokens.forEach((token: unknown, index) => {
    const where = `tokenizer.json: added_tokens[${index}]`;
    if (token === null || typeof token !== 'object' || Array.isArray(token))
      throw new TokenizerError(`${where} must be an object, got ${JSON.stringify(token)}`);
    const { id, content } = token as { id?: unknown; content?: unknown };
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0)
      throw new TokenizerError(`${where}.id must be an integer >= 0, got ${JSON.stringify(id ?? null)}`);
    if (typeof content !== 'string' || content.length === 0)
      throw new TokenizerError(
        `${where}.content must be a non-empty string, got ${JSON.stringify(content ?? null)}`,
      );
    for (const flag of ['special', 'normalized', 'lstrip', 'rstrip', 'single_word']) {
      const value = (token as Record<string, unknown>)[flag];
      if (value !== undefined && typeof value !== 'boolean')
        throw new TokenizerError(`${where}.${flag} must be true or false, got ${JSON.stringify(value)}`);
    }
  });
}

/**
 * tokenizer.json through @huggingface/tokenizers (pure JS: normalizers, pre-tokenizers with
 * Oniguruma-style regexes translated to JS, BPE/WordPiece/Unigram, post-processors, decoders).
 *
 * When tokenizer_config.json sets `add_bos_token` or `add_eos_token`, those flags decide which
 * special tokens `encode` adds (BOS first, EOS last), as transformers' Llama tokenizers do;
 * otherwise the post-processor of tokenizer.json decides.
 */
export class TokenizerJsonBackend implements TokenizerBackend {
  readonly vocabSize: number;
  readonly addedTokens: readonly AddedToken[];
  readonly #tokenizer: HuggingFaceTokenizer;
  readonly #specialIds: ReadonlySet<number>;
  readonly #prefixIds: number[] | undefined;
  readonly #suffixIds: number[] | undefined;

  constructor(tokenizerJson: object | string, config: TokenizerConfig) {
    const json = parseTokenizerJson(tokenizerJson);
    try {
      this.#tokenizer = new HuggingFaceTokenizer(json, config);
    } catch (error) {
      throw new TokenizerError(`cannot build a tokenizer from tokenizer.json: ${(error as Error).message}`);
    }
    this.addedTokens = (json.added_tokens ?? []).map((token) => ({
      id: token.id,
      content: token.content,
      special: token.special ?? false,
      normalized: token.normalized ?? false,
      lstrip: token.lstrip ?? false,
      rstrip: token.rstrip ?? false,
      singleWord: token.single_word ?? false,
    }));
    this.#specialIds = new Set(this.addedTokens.filter((token) => token.special).map((token) => token.id));
    let largest = -1;
    for (const id of this.#tokenizer.get_vocab(true).values()) largest = Math.max(largest, id);
    this.vocabSize = largest + 1;

    const flagsGiven = typeof config.add_bos_token === 'boolean' || typeof config.add_eos_token === 'boolean';
    if (flagsGiven) {
      const idOf = (field: 'bos_token' | 'eos_token') => {
        const content = specialTokenContent(config[field]);
        const id = content === undefined ? undefined : this.tokenToId(content);
        if (content !== undefined && id === undefined) {
          throw new TokenizerError(
            `tokenizer_config.json ${field} ${JSON.stringify(content)} is not in the vocabulary`,
          );
        }
        return id;
      };
      const bos = config.add_bos_token === true ? idOf('bos_token') : undefined;
      const eos = config.add_eos_token === true ? idOf('eos_token') : undefined;
      this.#prefixIds = bos === undefined ? [] : [bos];
      this.#suffixIds = eos === undefined ? [] : [eos];
    }
  }

  encode(text: string, addSpecialTokens: boolean): number[] {
    if (this.#prefixIds === undefined || this.#suffixIds === undefined) {
      return this.#tokenizer.encode(text, { add_special_tokens: addSpecialTokens }).ids;
    }
    const ids = this.#tokenizer.encode(text, { add_special_tokens: false }).ids;
    return addSpecialTokens ? [...this.#prefixIds, ...ids, ...this.#suffixIds] : ids;
  }

  decode(ids: readonly number[], skipSpecialTokens: boolean): string {
    const kept = skipSpecialTokens ? ids.filter((id) => !this.#specialIds.has(id)) : ids;
    if (kept.length === 0) return '';
    return this.#tokenizer.decode(kept as number[], {
      skip_special_tokens: skipSpecialTokens,
      clean_up_tokenization_spaces: false,
    });
  }

  tokenToId(token: string): number | undefined {
    return this.#tokenizer.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.#tokenizer.id_to_token(id);
  }
}

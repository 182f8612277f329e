import type { AddedToken, TokenizerBackend } from './backend.js';
import { DecodeStream } from './decode-stream.js';
import { TokenizerError } from './errors.js';
import { gpt2TokenizerJson } from './gpt2-files.js';
import { Llama2cBackend, parseLlama2cTokenizer } from './llama2c.js';
import {
  chatTemplatesOf,
  parseTokenizerConfig,
  specialTokenContent,
  type TokenizerConfig,
} from './tokenizer-config.js';
import { TokenizerJsonBackend } from './tokenizer-json.js';

/** Options of `encode`. */
export interface EncodeOptions {
  /** Add the tokens the format adds around a sequence (BOS for Llama...). Default true. */
  addSpecialTokens?: boolean;
}

/** Options of `decode`. */
export interface DecodeOptions {
  /** Leave out special tokens (BOS, EOS, chat markers). Default false. */
  skipSpecialTokens?: boolean;
}

/**
 * A text tokenizer: encode text to ids, decode ids to text, stream-decode generated ids.
 * Build one with `Tokenizer.fromJSON` (Hugging Face tokenizer.json + tokenizer_config.json),
 * `Tokenizer.fromLlama2c` (llama2.c tokenizer.bin) or `Tokenizer.fromGpt2Files`.
 */
export class Tokenizer {
  /** The tokenizer_config.json fields ({} when none was given). */
  readonly config: TokenizerConfig;
  readonly bosTokenId: number | undefined;
  readonly eosTokenId: number | undefined;
  readonly padTokenId: number | undefined;
  readonly unkTokenId: number | undefined;
  /** Whether `encode` adds BOS / EOS by default (from tokenizer_config.json or the format). */
  readonly addBosToken: boolean;
  readonly addEosToken: boolean;
  readonly #backend: TokenizerBackend;
  readonly #specialIds: ReadonlySet<number>;

  private constructor(
    backend: TokenizerBackend,
    config: TokenizerConfig,
    ids: { bos?: number; eos?: number; pad?: number; unk?: number },
  ) {
    this.#backend = backend;
    this.config = config;
    const idOf = (field: string, explicit: number | undefined): number | undefined => {
      if (explicit !== undefined) return explicit;
      const content = specialTokenContent(config[field]);
      return content === undefined ? undefined : backend.tokenToId(content);
    };
    this.bosTokenId = idOf('bos_token', ids.bos);
    this.eosTokenId = idOf('eos_token', ids.eos);
    this.padTokenId = idOf('pad_token', ids.pad);
    this.unkTokenId = idOf('unk_token', ids.unk);
    this.#specialIds = new Set(backend.addedTokens.filter((token) => token.special).map((token) => token.id));
    const probe = backend.encode('a', true);
    this.addBosToken = this.bosTokenId !== undefined && probe[0] === this.bosTokenId;
    this.addEosToken = this.eosTokenId !== undefined && probe.length > 1 && probe.at(-1) === this.eosTokenId;
  }

  /**
   * From a Hugging Face tokenizer.json (object or JSON text) and optionally its
   * tokenizer_config.json (special tokens, add_bos_token / add_eos_token, chat_template).
   */
  static fromJSON(tokenizerJson: object | string, tokenizerConfig?: object | string): Tokenizer {
    const config = parseTokenizerConfig(tokenizerConfig);
    return new Tokenizer(new TokenizerJsonBackend(tokenizerJson, config), config, {});
  }

  /**
   * From llama2.c's tokenizer.bin, encoding exactly as run.c does (dummy-prefix space, greedy
   * score-based merges, <0xXX> byte fallback). With special tokens, `encode` adds BOS and not
   * EOS, as run.c's generate does (`addBos` / `addEos` change that). Ids 0 (unk), `bosId` and
   * `eosId` are the special tokens.
   */
  static fromLlama2c(
    bytes: Uint8Array,
    options: { bosId?: number; eosId?: number; addBos?: boolean; addEos?: boolean } = {},
  ): Tokenizer {
    const { bosId = 1, eosId = 2, addBos = true, addEos = false } = options;
    const backend = new Llama2cBackend(parseLlama2cTokenizer(bytes), {
      bosId,
      eosId,
      unkId: 0,
      addBos,
      addEos,
    });
    return new Tokenizer(backend, {}, { bos: bosId, eos: eosId, unk: 0 });
  }

  /**
   * From GPT-2's vocab.json (object or text) and merges.txt. The config defaults to GPT-2's:
   * `<|endoftext|>` as BOS, EOS and UNK, nothing added by `encode`.
   */
  static fromGpt2Files(
    vocabJson: object | string,
    mergesTxt: string,
    tokenizerConfig?: object | string,
  ): Tokenizer {
    const config =
      tokenizerConfig === undefined
        ? { bos_token: '<|endoftext|>', eos_token: '<|endoftext|>', unk_token: '<|endoftext|>' }
        : parseTokenizerConfig(tokenizerConfig);
    return Tokenizer.fromJSON(gpt2TokenizerJson(vocabJson, mergesTxt), config);
  }

  /** Number of ids (largest id + 1), added tokens included. */
  get vocabSize(): number {
    return this.#backend.vocabSize;
  }

  /** Tokens split out of the text before the model runs, special or not. */
  get addedTokens(): readonly AddedToken[] {
    return this.#backend.addedTokens;
  }

  /** The added tokens marked special. */
  get specialTokens(): AddedToken[] {
    return this.#backend.addedTokens.filter((token) => token.special);
  }

  /** Whether `id` is a special token. */
  isSpecialId(id: number): boolean {
    return this.#specialIds.has(id);
  }

  /** The default chat template (Jinja source), when tokenizer_config.json has one. */
  get chatTemplate(): string | undefined {
    const templates = this.chatTemplates;
    return templates.default ?? Object.values(templates)[0];
  }

  /** All chat templates by name (`default`, `tool_use`, ... from the list form). */
  get chatTemplates(): Record<string, string> {
    return chatTemplatesOf(this.config);
  }

  /** Ids of `text`. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new TokenizerError(`encode expects a string, got ${typeof text}`);
    return this.#backend.encode(text, options.addSpecialTokens ?? true);
  }

  /** Ids of each text. */
  encodeBatch(texts: readonly string[], options: EncodeOptions = {}): number[][] {
    return texts.map((text) => this.encode(text, options));
  }

  /** Text of `ids`. Throws a TokenizerError naming the first id outside 0..vocabSize-1. */
  decode(ids: readonly number[] | Int32Array | Uint32Array, options: DecodeOptions = {}): string {
    const list = Array.from(ids);
    const size = this.#backend.vocabSize;
    for (let index = 0; index < list.length; index++) {
      const id = list[index];
      if (!Number.isInteger(id) || id < 0 || id >= size || this.#backend.idToToken(id) === undefined) {
        throw new TokenizerError(
          `decode: id ${id} at position ${index} is not in the vocabulary (size ${size})`,
        );
      }
    }
    return this.#backend.decode(list, options.skipSpecialTokens ?? false);
  }

  /** An incremental decoder for generated ids (UTF-8 safe across token boundaries). */
  decodeStream(options: DecodeOptions = {}): DecodeStream {
    return new DecodeStream(this, options);
  }

  /** Id of a token string (vocabulary piece or added token). */
  tokenToId(token: string): number | undefined {
    return this.#backend.tokenToId(token);
  }

  /** Token string of an id. */
  idToToken(id: number): string | undefined {
    return this.#backend.idToToken(id);
  }
}

import { TokenizerError } from './errors.js';

/**
 * The fields of a Hugging Face `tokenizer_config.json` this package reads. Token fields are a
 * string, null, or an AddedToken object with `content`.
 */
export interface TokenizerConfig {
  bos_token?: string | { content: string } | null;
  eos_token?: string | { content: string } | null;
  pad_token?: string | { content: string } | null;
  unk_token?: string | { content: string } | null;
  add_bos_token?: boolean;
  add_eos_token?: boolean;
  chat_template?: string | { name: string; template: string }[] | null;
  clean_up_tokenization_spaces?: boolean;
  additional_special_tokens?: (string | { content: string })[];
  [key: string]: unknown;
}

/** Parses a config given as JSON text or an object; undefined stays undefined. */
export function parseTokenizerConfig(config: object | string | undefined): TokenizerConfig {
  if (config === undefined) return {};
  if (typeof config === 'string') {
    try {
      config = JSON.parse(config) as object;
    } catch (error) {
      throw new TokenizerError(`tokenizer_config.json is not valid JSON: ${(error as Error).message}`);
    }
  }
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new TokenizerError('tokenizer_config.json must hold a JSON object');
  }
  return config as TokenizerConfig;
}

/** The text of a special-token field (string or AddedToken object), or undefined. */
export function specialTokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as { content?: unknown }).content === 'string'
  ) {
    return (value as { content: string }).content;
  }
  return undefined;
}

/**
 * The chat templates of a config: `default` (or the only template) plus any named ones from the
 * list form `[{ name, template }]`.
 */
export function chatTemplatesOf(config: TokenizerConfig): Record<string, string> {
  const value = config.chat_template;
  if (typeof value === 'string') return { default: value };
  const templates: Record<string, string> = {};
  if (Array.isArray(value)) {
    for (const entry of value) {
      if (entry && typeof entry.name === 'string' && typeof entry.template === 'string') {
        templates[entry.name] = entry.template;
      }
    }
  }
  return templates;
}

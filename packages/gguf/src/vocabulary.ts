import { GgufError } from './errors.js';
import { type GgufValue, gguf } from './metadata.js';
import type { GgufFile } from './read.js';

/** llama.cpp's token types (`tokenizer.ggml.token_type`). */
export const TOKEN_TYPES = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

/** Pre-tokenizer regexes of the byte-level BPE families llama.cpp names in `tokenizer.ggml.pre`. */
const PRE_TOKENIZER_PATTERNS: Record<string, string> = {
  qwen2:
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  'llama-bpe':
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  default: "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
};

/** A Hugging Face tokenizer (tokenizer.json and tokenizer_config.json as objects). */
export interface HuggingFaceTokenizerFiles {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
}

/**
 * Rebuilds a Hugging Face tokenizer from `tokenizer.ggml.*`: a SentencePiece-style `llama`
 * vocabulary becomes a byte-fallback BPE whose merges are derived from the piece scores (the way
 * transformers converts a SentencePiece model: every split of a piece into two pieces, ranked by
 * the merged piece's score); a `gpt2` vocabulary becomes a byte-level BPE with the file's merges
 * and the pre-tokenizer `tokenizer.ggml.pre` names. Control and user-defined tokens become added
 * tokens; special token ids, add_bos/add_eos and the chat template go to tokenizer_config.json.
 */
export function huggingFaceTokenizerOf(file: GgufFile): HuggingFaceTokenizerFiles {
  const where = { fileName: file.fileName };
  const model = file.string('tokenizer.ggml.model');
  if (model === undefined)
    throw new GgufError('has no tokenizer.ggml.model: webtune needs the tokenizer', where);
  const tokens = file.array('tokenizer.ggml.tokens', 'string');
  if (tokens === undefined || tokens.length === 0) throw new GgufError('has no tokenizer.ggml.tokens', where);
  const types = file.array('tokenizer.ggml.token_type', 'number') ?? tokens.map(() => TOKEN_TYPES.NORMAL);
  if (types.length !== tokens.length) {
    throw new GgufError(`has ${types.length} token types for ${tokens.length} tokens`, {
      ...where,
      key: 'tokenizer.ggml.token_type',
    });
  }
  const id = (key: string): number | undefined => {
    const value = file.number(key);
    if (value === undefined) return undefined;
    if (!Number.isInteger(value) || value < 0 || value >= tokens.length) {
      throw new GgufError(`token id ${value} is outside the vocabulary of ${tokens.length}`, {
        ...where,
        key,
      });
    }
    return value;
  };
  const bos = id('tokenizer.ggml.bos_token_id');
  const eos = id('tokenizer.ggml.eos_token_id');
  const unk = id('tokenizer.ggml.unknown_token_id');
  const pad = id('tokenizer.ggml.padding_token_id');
  const vocab: Record<string, number> = {};
  tokens.forEach((token, index) => {
    if (!(token in vocab)) vocab[token] = index;
  });
  const added = tokens.flatMap((content, index) =>
    types[index] === TOKEN_TYPES.CONTROL || types[index] === TOKEN_TYPES.USER_DEFINED || index === unk
      ? [
          {
            id: index,
            content,
            single_word: false,
            lstrip: false,
            rstrip: false,
            normalized: false,
            special: types[index] !== TOKEN_TYPES.USER_DEFINED,
          },
        ]
      : [],
  );
  let tokenizerJson: Record<string, unknown>;
  if (model === 'llama') {
    const scores = file.array('tokenizer.ggml.scores', 'number');
    if (scores === undefined || scores.length !== tokens.length) {
      throw new GgufError('a llama (SentencePiece) vocabulary needs one score per token', {
        ...where,
        key: 'tokenizer.ggml.scores',
      });
    }
    const addSpacePrefix = file.boolean('tokenizer.ggml.add_space_prefix') ?? true;
    tokenizerJson = {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: added,
      normalizer: {
        type: 'Sequence',
        normalizers: [
          ...(addSpacePrefix ? [{ type: 'Prepend', prepend: '▁' }] : []),
          { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
        ],
      },
      pre_tokenizer: null,
      post_processor: null,
      decoder: {
        type: 'Sequence',
        decoders: [
          { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
          { type: 'ByteFallback' },
          { type: 'Fuse' },
          ...(addSpacePrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
        ],
      },
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: unk === undefined ? null : tokens[unk],
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: true,
        byte_fallback: true,
        ignore_merges: false,
        vocab,
        merges: mergesFromScores(tokens, scores, types, vocab),
      },
    };
  } else if (model === 'gpt2') {
    const merges = file.array('tokenizer.ggml.merges', 'string');
    if (merges === undefined)
      throw new GgufError('a gpt2 (byte-level BPE) vocabulary needs merges', {
        ...where,
        key: 'tokenizer.ggml.merges',
      });
    const pre = file.string('tokenizer.ggml.pre') ?? 'default';
    const pattern = PRE_TOKENIZER_PATTERNS[pre];
    if (pattern === undefined) {
      throw new GgufError(
        `pre-tokenizer ${JSON.stringify(pre)} is not known to webtune (${Object.keys(PRE_TOKENIZER_PATTERNS).join(', ')} are)`,
        { ...where, key: 'tokenizer.ggml.pre' },
      );
    }
    tokenizerJson = {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: added,
      normalizer: pre === 'qwen2' ? { type: 'NFC' } : null,
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [
          { type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false },
          { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
        ],
      },
      post_processor: null,
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: '',
        end_of_word_suffix: '',
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: pre === 'llama-bpe',
        vocab,
        merges,
      },
    };
  } else {
    throw new GgufError(`tokenizer model ${JSON.stringify(model)} is not supported (llama and gpt2 are)`, {
      ...where,
      key: 'tokenizer.ggml.model',
    });
  }
  const tokenizerConfig: Record<string, unknown> = {
    add_bos_token: file.boolean('tokenizer.ggml.add_bos_token') ?? (model === 'llama' && bos !== undefined),
    add_eos_token: file.boolean('tokenizer.ggml.add_eos_token') ?? false,
    bos_token: bos === undefined ? null : tokens[bos],
    eos_token: eos === undefined ? null : tokens[eos],
    unk_token: unk === undefined ? null : tokens[unk],
    pad_token: pad === undefined ? null : tokens[pad],
    clean_up_tokenization_spaces: false,
  };
  const template = file.string('tokenizer.chat_template');
  if (template !== undefined) tokenizerConfig.chat_template = template;
  return { tokenizerJson, tokenizerConfig };
}

/**
 * Merges of a SentencePiece BPE vocabulary: for each normal piece, every split into two pieces
 * of the vocabulary (ordered by the ids of the halves), all ranked by the piece's score, highest
 * first (a stable sort, so equal scores keep vocabulary order).
 */
export function mergesFromScores(
  tokens: readonly string[],
  scores: readonly number[],
  types: readonly number[],
  vocab: Record<string, number>,
): [string, string][] {
  const candidates: { left: string; right: string; score: number; leftId: number; rightId: number }[] = [];
  tokens.forEach((piece, index) => {
    if (types[index] !== TOKEN_TYPES.NORMAL && types[index] !== TOKEN_TYPES.USER_DEFINED) return;
    const characters = [...piece];
    const local: typeof candidates = [];
    for (let split = 1; split < characters.length; split++) {
      const left = characters.slice(0, split).join('');
      const right = characters.slice(split).join('');
      const leftId = vocab[left];
      const rightId = vocab[right];
      if (leftId !== undefined && rightId !== undefined)
        local.push({ left, right, score: scores[index], leftId, rightId });
    }
    local.sort((a, b) => a.leftId - b.leftId || a.rightId - b.rightId);
    candidates.push(...local);
  });
  candidates.sort((a, b) => b.score - a.score);
  return candidates.map(({ left, right }) => [left, right]);
}

function contentOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}

/**
 * `tokenizer.ggml.*` and `tokenizer.chat_template` metadata for a Hugging Face tokenizer: a
 * byte-fallback BPE (SentencePiece-style, Llama/Mistral) is written as a `llama` vocabulary whose
 * scores rank the merges (score = -rank of the merge that makes the piece, which makes
 * llama.cpp's highest-score-first merging pick what the BPE merges would); a byte-level BPE
 * (Qwen, Llama 3) as `gpt2` with its merges and the pre-tokenizer named by its regex.
 */
export function ggufTokenizerMetadata(
  files: HuggingFaceTokenizerFiles,
  vocabSize: number,
): [string, GgufValue][] {
  const json = files.tokenizerJson as {
    model?: {
      type?: string;
      vocab?: Record<string, number>;
      merges?: (string | [string, string])[];
      byte_fallback?: boolean;
      unk_token?: string | null;
    };
    added_tokens?: { id: number; content: string; special?: boolean }[];
    normalizer?: unknown;
    pre_tokenizer?: unknown;
    post_processor?: unknown;
  };
  const config = files.tokenizerConfig;
  if (json.model?.type !== 'BPE' || json.model.vocab === undefined) {
    throw new GgufError(
      `tokenizer.json model ${JSON.stringify(json.model?.type)} has no GGUF export (BPE does)`,
    );
  }
  const tokens: string[] = new Array(vocabSize);
  for (const [piece, index] of Object.entries(json.model.vocab)) if (index < vocabSize) tokens[index] = piece;
  const added = new Map((json.added_tokens ?? []).map((token) => [token.id, token]));
  for (const [index, token] of added) if (index < vocabSize) tokens[index] = token.content;
  for (let index = 0; index < vocabSize; index++) tokens[index] ??= `[PAD${index}]`;
  const idOf = (field: string): number | undefined => {
    const content = contentOf(config[field]);
    if (content === undefined) return undefined;
    const index = tokens.indexOf(content);
    return index < 0 ? undefined : index;
  };
  const unkContent = json.model.unk_token ?? undefined;
  const unk = unkContent ? tokens.indexOf(unkContent) : -1;
  const spm = json.model.byte_fallback === true;
  const mergeList = (json.model.merges ?? []).map(
    (merge) => (typeof merge === 'string' ? merge.split(' ') : merge) as [string, string],
  );
  const types = tokens.map((token, index) => {
    const addedToken = added.get(index);
    if (addedToken)
      return addedToken.special === false
        ? TOKEN_TYPES.USER_DEFINED
        : index === unk
          ? TOKEN_TYPES.UNKNOWN
          : TOKEN_TYPES.CONTROL;
    if (index === unk) return TOKEN_TYPES.UNKNOWN;
    if (spm && /^<0x[0-9A-Fa-f]{2}>$/.test(token)) return TOKEN_TYPES.BYTE;
    if (token.startsWith('[PAD') && json.model?.vocab?.[token] === undefined) return TOKEN_TYPES.UNUSED;
    return TOKEN_TYPES.NORMAL;
  });
  const entries: [string, GgufValue][] = [];
  if (spm) {
    const scores = new Array<number>(vocabSize).fill(0);
    const seen = new Set<string>();
    mergeList.forEach(([left, right], rank) => {
      const piece = left + right;
      if (seen.has(piece)) return;
      seen.add(piece);
      const index = json.model!.vocab![piece];
      if (index !== undefined && index < vocabSize) scores[index] = -(rank + 1);
    });
    const normalizers = JSON.stringify(json.normalizer ?? '');
    entries.push(
      ['tokenizer.ggml.model', gguf.string('llama')],
      ['tokenizer.ggml.pre', gguf.string('default')],
      ['tokenizer.ggml.tokens', gguf.array('STRING', tokens)],
      ['tokenizer.ggml.scores', gguf.array('FLOAT32', scores)],
      ['tokenizer.ggml.token_type', gguf.array('INT32', types)],
      ['tokenizer.ggml.add_space_prefix', gguf.bool(normalizers.includes('Prepend'))],
    );
  } else {
    const patterns = JSON.stringify(json.pre_tokenizer ?? '');
    const pre =
      Object.entries(PRE_TOKENIZER_PATTERNS).find(
        ([name, pattern]) => name !== 'default' && patterns.includes(JSON.stringify(pattern).slice(1, -1)),
      )?.[0] ?? 'default';
    entries.push(
      ['tokenizer.ggml.model', gguf.string('gpt2')],
      ['tokenizer.ggml.pre', gguf.string(pre)],
      ['tokenizer.ggml.tokens', gguf.array('STRING', tokens)],
      ['tokenizer.ggml.token_type', gguf.array('INT32', types)],
      [
        'tokenizer.ggml.merges',
        gguf.array(
          'STRING',
          mergeList.map(([left, right]) => `${left} ${right}`),
        ),
      ],
    );
  }
  const ids: [string, number | undefined][] = [
    ['tokenizer.ggml.bos_token_id', idOf('bos_token')],
    ['tokenizer.ggml.eos_token_id', idOf('eos_token')],
    ['tokenizer.ggml.unknown_token_id', unk >= 0 ? unk : idOf('unk_token')],
    ['tokenizer.ggml.padding_token_id', idOf('pad_token')],
  ];
  for (const [key, value] of ids) if (value !== undefined) entries.push([key, gguf.uint32(value)]);
  // Without add_bos_token in tokenizer_config.json, BOS is added when the post-processor's single
  // template starts with it (Llama 3), or by SentencePiece convention.
  const bosContent = contentOf(config.bos_token);
  const templateAddsBos =
    bosContent !== undefined &&
    JSON.stringify(json.post_processor ?? null).includes(
      `"single":[{"SpecialToken":{"id":${JSON.stringify(bosContent)}`,
    );
  const addBos =
    typeof config.add_bos_token === 'boolean'
      ? config.add_bos_token
      : templateAddsBos || (spm && idOf('bos_token') !== undefined);
  entries.push(['tokenizer.ggml.add_bos_token', gguf.bool(addBos)]);
  entries.push(['tokenizer.ggml.add_eos_token', gguf.bool(config.add_eos_token === true)]);
  if (typeof config.chat_template === 'string')
    entries.push(['tokenizer.chat_template', gguf.string(config.chat_template)]);
  return entries;
}

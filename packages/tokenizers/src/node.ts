import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TokenizerError } from './errors.js';
import { Tokenizer } from './tokenizer.js';

/**
 * Loads the tokenizer of a Hugging Face model folder: tokenizer.json plus tokenizer_config.json
 * when present (Node only).
 */
export async function loadTokenizer(directory: string): Promise<Tokenizer> {
  const jsonPath = join(directory, 'tokenizer.json');
  if (!existsSync(jsonPath)) throw new TokenizerError(`${directory} has no tokenizer.json`);
  const configPath = join(directory, 'tokenizer_config.json');
  const config = existsSync(configPath) ? await readFile(configPath, 'utf8') : undefined;
  try {
    return Tokenizer.fromJSON(await readFile(jsonPath, 'utf8'), config);
  } catch (error) {
    // Name the file on disk: "tokenizer.json: ..." becomes "<folder>/tokenizer.json: ...".
    const message = (error as Error).message;
    if (message.startsWith('tokenizer_config.json'))
      throw new TokenizerError(`${configPath}${message.slice('tokenizer_config.json'.length)}`);
    if (message.startsWith('tokenizer.json'))
      throw new TokenizerError(`${jsonPath}${message.slice('tokenizer.json'.length)}`);
    throw new TokenizerError(`${jsonPath}: ${message}`);
  }
}

/** Loads a llama2.c tokenizer.bin (Node only). */
export async function loadLlama2cTokenizer(
  path: string,
  options?: Parameters<typeof Tokenizer.fromLlama2c>[1],
): Promise<Tokenizer> {
  return Tokenizer.fromLlama2c(new Uint8Array(await readFile(path)), options);
}

/** Loads a GPT-2 tokenizer from vocab.json and merges.txt (Node only). */
export async function loadGpt2Tokenizer(vocabPath: string, mergesPath: string): Promise<Tokenizer> {
  return Tokenizer.fromGpt2Files(await readFile(vocabPath, 'utf8'), await readFile(mergesPath, 'utf8'));
}

// Node-only parts of @webtune/nn: model folders on disk, llama2.c files, GGUF files.
// Hub downloads are @webtune/hub's (`downloadModelSnapshot` in @webtune/hub/node).
import { open, readFile } from 'node:fs/promises';
import { openFileReader } from '@webtune/safetensors/node';
import type { Device } from '@webtune/tensors';
import { Tokenizer } from '@webtune/tokenizers';
import { loadGguf } from './loading/gguf.js';
import { loadLlama2c } from './loading/llama2c.js';
import type { LoadWeightsOptions } from './loading/load-weights.js';
import { loadPretrained, type PretrainedModel } from './loading/pretrained.js';
import { type SaveOptions, saveModel } from './loading/save.js';
import { ggufChunks, type SaveGgufOptions } from './loading/save-gguf.js';
import type { CausalLM } from './models/llama.js';
import { directorySink, directorySource } from './node/files.js';

export { directorySink, directorySource } from './node/files.js';

/** Loads a Hugging Face model folder from disk (see loadPretrained). */
export async function loadModelDirectory(
  device: Device,
  directory: string,
  options: LoadWeightsOptions = {},
): Promise<PretrainedModel> {
  return loadPretrained(device, directorySource(directory), options);
}

/**
 * Loads a llama2.c checkpoint (streamed; see loadLlama2c) and, when given, its tokenizer .bin
 * (tok512.bin, tokenizer.bin).
 */
export async function loadLlama2cFile(
  device: Device,
  checkpointPath: string,
  options: Pick<LoadWeightsOptions, 'dtype' | 'onProgress'> & { tokenizerPath?: string } = {},
): Promise<{ model: CausalLM; tokenizer: Tokenizer | null }> {
  const reader = await openFileReader(checkpointPath);
  let model: CausalLM;
  try {
    model = await loadLlama2c(device, reader, options);
  } finally {
    await reader.close();
  }
  const tokenizer = options.tokenizerPath
    ? Tokenizer.fromLlama2c(new Uint8Array(await readFile(options.tokenizerPath)))
    : null;
  return { model, tokenizer };
}

/** Saves a model as a Hugging Face folder on disk (see saveModel). */
export async function saveModelDirectory(
  model: CausalLM,
  directory: string,
  options: SaveOptions = {},
): Promise<string[]> {
  return saveModel(model, directorySink(directory), options);
}

/**
 * Loads a GGUF model file from disk (see loadGguf); the file is read by byte range, one tensor at
 * a time.
 */
export async function loadGgufFile(
  device: Device,
  path: string,
  options: LoadWeightsOptions & { keepQuantized?: boolean } = {},
): Promise<Awaited<ReturnType<typeof loadGguf>>> {
  const reader = await openFileReader(path);
  try {
    return await loadGguf(device, reader, { ...options, fileName: path });
  } finally {
    await reader.close();
  }
}

/** Writes a model as one GGUF file on disk (see ggufChunks); returns its size in bytes. */
export async function saveGgufFile(model: CausalLM, path: string, options: SaveGgufOptions): Promise<number> {
  const handle = await open(path, 'w');
  let size = 0;
  try {
    for await (const chunk of ggufChunks(model, options)) {
      await handle.write(chunk);
      size += chunk.length;
    }
  } finally {
    await handle.close();
  }
  return size;
}

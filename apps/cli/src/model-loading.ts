/**
 * Opening the device and loading a model (folder or hub id), its tokenizer and an optional PEFT
 * adapter, with a progress bar on a terminal and one-line errors for what the user can fix.
 */
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { downloadModelSnapshot } from '@webtune/hub/node';
import {
  type BaseFormat,
  CausalLM,
  type GenerationConfig,
  initializeModel,
  type ModelConfig,
  parseGenerationConfig,
  parseModelConfig,
  TOKENIZER_FILES,
} from '@webtune/nn';
import { directorySource, loadGgufFile, loadModelDirectory } from '@webtune/nn/node';
import { loadAdapter, type PeftModel } from '@webtune/peft';
import { createDevice, type Device } from '@webtune/tensors';
import { Tokenizer } from '@webtune/tokenizers';
import { ProgressBar, UsageError } from './ui.js';

/** A model ready to run: the CausalLM (adapter injected when one was given) and its tokenizer. */
export interface LoadedModel {
  model: CausalLM;
  tokenizer: Tokenizer;
  generationConfig: GenerationConfig | null;
  /** Tokenizer files as found in the folder (export copies them). */
  tokenizerFiles: Record<string, Uint8Array>;
  /** The adapted model when `--adapter` was given. */
  peft: PeftModel | null;
  /** The folder the model came from (the cache folder for a hub id; the file for a GGUF model). */
  directory: string;
  /** What the user named: a path or a hub id. */
  name: string;
}

/** Creates the WebGPU device (lavapipe, a real GPU, ...). */
export async function openDevice(): Promise<Device> {
  return createDevice();
}

const HUB_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

/** Whether `name` names a hub repository rather than a local path. */
export function looksLikeHubId(name: string): boolean {
  return HUB_ID.test(name) && !existsSync(name) && !name.startsWith('.') && !/\.gguf$/i.test(name);
}

/** Whether `name` names a GGUF model file (llama.cpp's format) rather than a folder. */
export function isGgufFile(name: string): boolean {
  return /\.gguf$/i.test(name);
}

/** Checks that `path` is an existing folder; a UsageError naming the option otherwise. */
export function requireDirectory(path: string, what: string): string {
  if (!existsSync(path)) throw new UsageError(`${what} "${path}" does not exist`, 1);
  if (!statSync(path).isDirectory()) throw new UsageError(`${what} "${path}" is not a folder`, 1);
  return resolve(path);
}

/** config.json of a local model folder, read without loading weights (null for hub ids and other sources). */
export async function readModelConfig(name: string): Promise<ModelConfig | null> {
  const path = join(name, 'config.json');
  if (looksLikeHubId(name) || !existsSync(path)) return null;
  return parseModelConfig(await readFile(path, 'utf8'));
}

/**
 * Loads `--model` (a Hugging Face folder, or a hub id downloaded to the cache) and `--adapter`
 * (a PEFT adapter folder) onto `device`.
 */
export async function loadModel(
  device: Device,
  name: string,
  options: {
    adapter?: string;
    dtype?: 'f32' | 'f16';
    quiet?: boolean;
    baseFormat?: BaseFormat;
    keepQuantized?: boolean;
  } = {},
): Promise<LoadedModel> {
  const bar = options.quiet ? null : new ProgressBar('loading');
  const onProgress = bar
    ? (progress: { loaded: number; total: number }) => bar.update(progress.loaded, progress.total, 'tensors')
    : undefined;
  let loaded: Awaited<ReturnType<typeof loadModelDirectory>>;
  let directory: string;
  try {
    if (looksLikeHubId(name)) {
      const download = options.quiet ? null : new ProgressBar(`downloading ${name}`);
      try {
        // Into the Hugging Face cache (HF_HUB_CACHE, HF_HOME; HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE).
        const snapshot = await downloadModelSnapshot(name, {
          onProgress: (progress) =>
            download?.update(
              progress.receivedBytes,
              progress.totalBytes ?? progress.receivedBytes,
              progress.path,
            ),
        });
        loaded = await loadModelDirectory(device, snapshot, {
          dtype: options.dtype,
          baseFormat: options.baseFormat,
          onProgress,
        });
      } catch (error) {
        throw new UsageError(
          `could not load "${name}" from the hub: ${(error as Error).message} (offline? give a local model folder)`,
          1,
        );
      } finally {
        download?.done();
      }
      directory = name;
    } else if (isGgufFile(name)) {
      if (!existsSync(name)) throw new UsageError(`GGUF file "${name}" does not exist`, 1);
      if (!statSync(name).isFile()) throw new UsageError(`"${name}" is not a file`, 1);
      directory = resolve(name);
      // Q8_0/Q4_0 projections stay packed (frozen) unless the caller must change them (export merges).
      loaded = await loadGgufFile(device, directory, {
        dtype: options.dtype,
        onProgress,
        keepQuantized: options.keepQuantized,
      });
    } else {
      directory = requireDirectory(name, 'model folder');
      loaded = await loadModelDirectory(device, directory, {
        dtype: options.dtype,
        baseFormat: options.baseFormat,
        onProgress,
      });
    }
  } finally {
    bar?.done();
  }
  if (!loaded.tokenizer) {
    loaded.model.dispose();
    throw new UsageError(`${name} has no tokenizer.json: webtune needs the model's tokenizer`, 1);
  }
  let peft: PeftModel | null = null;
  if (options.adapter) {
    const adapterDirectory = requireDirectory(options.adapter, 'adapter folder');
    const source = directorySource(adapterDirectory);
    try {
      peft = await loadAdapter(loaded.model, source);
    } finally {
      await source.close?.();
    }
    peft.eval();
  }
  return {
    model: loaded.model,
    tokenizer: loaded.tokenizer,
    generationConfig: loaded.generationConfig,
    tokenizerFiles: loaded.tokenizerFiles,
    peft,
    directory,
    name,
  };
}

/**
 * A model folder's config and tokenizer with weights drawn at random from `seed` (LLaMA-Factory's
 * `train_from_scratch`): for folders that define a model without shipping weights.
 */
export async function initializeModelFromConfig(
  device: Device,
  name: string,
  seed: number,
): Promise<LoadedModel> {
  const directory = requireDirectory(name, 'model folder');
  const configPath = join(directory, 'config.json');
  if (!existsSync(configPath)) throw new UsageError(`${name} has no config.json`, 1);
  const config = parseModelConfig(await readFile(configPath, 'utf8'), configPath);
  const tokenizerPath = join(directory, 'tokenizer.json');
  if (!existsSync(tokenizerPath)) {
    throw new UsageError(`${name} has no tokenizer.json: webtune needs the model's tokenizer`, 1);
  }
  const tokenizerFiles: Record<string, Uint8Array> = {};
  for (const file of TOKENIZER_FILES) {
    const path = join(directory, file);
    if (existsSync(path)) tokenizerFiles[file] = new Uint8Array(await readFile(path));
  }
  const decoder = new TextDecoder();
  const tokenizer = Tokenizer.fromJSON(
    decoder.decode(tokenizerFiles['tokenizer.json']),
    tokenizerFiles['tokenizer_config.json']
      ? decoder.decode(tokenizerFiles['tokenizer_config.json'])
      : undefined,
  );
  const generationPath = join(directory, 'generation_config.json');
  const generationConfig = existsSync(generationPath)
    ? parseGenerationConfig(await readFile(generationPath, 'utf8'))
    : null;
  if (generationConfig && generationConfig.eosTokenIds.length > 0) {
    config.eosTokenIds = [...new Set([...config.eosTokenIds, ...generationConfig.eosTokenIds])];
  }
  const model = initializeModel(new CausalLM(device, config), { seed });
  return { model, tokenizer, generationConfig, tokenizerFiles, peft: null, directory, name };
}

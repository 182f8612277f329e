import {
  openShardedSafetensors,
  parseSafetensorsIndex,
  readSafetensors,
  type SafetensorsEntry,
  type SafetensorsSource,
} from '@webtune/safetensors';
import type { Device } from '@webtune/tensors';
import { Tokenizer } from '@webtune/tokenizers';
import { type ModelConfig, parseModelConfig } from '../config/model-config.js';
import { ModelError } from '../errors.js';
import { CausalLM } from '../models/llama.js';
import { type LoadWeightsOptions, loadWeights } from './load-weights.js';

/**
 * The files of a Hugging Face model folder, wherever they are: a directory on disk, files picked
 * in a browser, a download cache. `open` gives random access so weights stream.
 */
export interface ModelFileSource {
  /** Where the files are, for error messages. */
  readonly location: string;
  exists(fileName: string): Promise<boolean>;
  readText(fileName: string): Promise<string>;
  readBytes(fileName: string): Promise<Uint8Array>;
  open(fileName: string): Promise<SafetensorsSource>;
  /** Releases what `open` opened (file handles). */
  close?(): Promise<void>;
}

/** generation_config.json fields generation uses. */
export interface GenerationConfig {
  eosTokenIds: number[];
  bosTokenId: number | null;
  padTokenId: number | null;
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repetitionPenalty?: number;
  maxNewTokens?: number;
  doSample?: boolean;
  raw: Record<string, unknown>;
}

/** Files beside the weights that describe the tokenizer; saving copies them verbatim. */
export const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
] as const;

/** A loaded model folder: the model on the device, its tokenizer and configs. */
export interface PretrainedModel {
  model: CausalLM;
  config: ModelConfig;
  /** From tokenizer.json (+ tokenizer_config.json); null when the folder has none. */
  tokenizer: Tokenizer | null;
  generationConfig: GenerationConfig | null;
  /** The tokenizer files found, as bytes (pass them to saveModel's extraFiles). */
  tokenizerFiles: Record<string, Uint8Array>;
}

/**
 * Loads a Hugging Face model folder: config.json (and generation_config.json), the weights from
 * model.safetensors or the shards listed in model.safetensors.index.json, one tensor at a time,
 * and the tokenizer. Frees what it placed on the device if it fails.
 */
export async function loadPretrained(
  device: Device,
  source: ModelFileSource,
  options: LoadWeightsOptions = {},
): Promise<PretrainedModel> {
  if (!(await source.exists('config.json'))) {
    throw new ModelError(`${source.location} has no config.json: not a Hugging Face model folder`);
  }
  const config = parseModelConfig(
    await source.readText('config.json'),
    `${source.location.replace(/\/+$/, '')}/config.json`,
  );
  const generationConfig = (await source.exists('generation_config.json'))
    ? parseGenerationConfig(await source.readText('generation_config.json'))
    : null;
  if (generationConfig && generationConfig.eosTokenIds.length > 0) {
    // generation_config.json's eos list is what transformers' generate() stops on.
    config.eosTokenIds = [...new Set([...config.eosTokenIds, ...generationConfig.eosTokenIds])];
  }
  const tokenizerFiles: Record<string, Uint8Array> = {};
  for (const name of TOKENIZER_FILES) {
    if (await source.exists(name)) tokenizerFiles[name] = await source.readBytes(name);
  }
  const text = (bytes: Uint8Array | undefined) => (bytes ? new TextDecoder().decode(bytes) : undefined);
  const tokenizer = tokenizerFiles['tokenizer.json']
    ? Tokenizer.fromJSON(
        text(tokenizerFiles['tokenizer.json'])!,
        text(tokenizerFiles['tokenizer_config.json']),
      )
    : null;
  const model = new CausalLM(device, config);
  try {
    await loadWeights(model, await weightEntries(source), options);
  } catch (error) {
    model.dispose();
    throw error;
  } finally {
    await source.close?.();
  }
  return { model, config, tokenizer, generationConfig, tokenizerFiles };
}

/** The weights of a model folder as one stream of tensors, shard after shard. */
export async function weightEntries(source: ModelFileSource): Promise<AsyncIterable<SafetensorsEntry>> {
  if (await source.exists('model.safetensors.index.json')) {
    const index = parseSafetensorsIndex(
      await source.readText('model.safetensors.index.json'),
      'model.safetensors.index.json',
    );
    const sharded = await openShardedSafetensors(index, (fileName) => source.open(fileName));
    return sharded.entries();
  }
  if (await source.exists('model.safetensors')) {
    return readSafetensors(await source.open('model.safetensors'), { fileName: 'model.safetensors' });
  }
  const hasBin =
    (await source.exists('pytorch_model.bin')) || (await source.exists('pytorch_model.bin.index.json'));
  throw new ModelError(
    `${source.location} has no model.safetensors or model.safetensors.index.json` +
      (hasBin ? ' (only pytorch_model.bin, which is not read: convert it to safetensors)' : ''),
  );
}

/** Reads generation_config.json. */
export function parseGenerationConfig(text: string | Record<string, unknown>): GenerationConfig {
  const json = typeof text === 'string' ? (JSON.parse(text) as Record<string, unknown>) : text;
  const ids = (value: unknown) =>
    value == null
      ? []
      : (Array.isArray(value) ? value : [value]).filter((v): v is number => Number.isInteger(v));
  const number = (key: string) => (typeof json[key] === 'number' ? (json[key] as number) : undefined);
  const config: GenerationConfig = {
    eosTokenIds: ids(json.eos_token_id),
    bosTokenId: Number.isInteger(json.bos_token_id) ? (json.bos_token_id as number) : null,
    padTokenId: Number.isInteger(json.pad_token_id) ? (json.pad_token_id as number) : null,
    raw: json,
  };
  const optional: [keyof GenerationConfig, string][] = [
    ['temperature', 'temperature'],
    ['topK', 'top_k'],
    ['topP', 'top_p'],
    ['minP', 'min_p'],
    ['repetitionPenalty', 'repetition_penalty'],
    ['maxNewTokens', 'max_new_tokens'],
  ];
  for (const [key, jsonKey] of optional) {
    const value = number(jsonKey);
    if (value !== undefined) (config as unknown as Record<string, unknown>)[key] = value;
  }
  if (typeof json.do_sample === 'boolean') config.doSample = json.do_sample;
  return config;
}

/** A source over files already in memory or picked in a browser (name -> bytes or Blob). */
export function memoryFileSource(
  files: Map<string, Uint8Array | Blob> | Record<string, Uint8Array | Blob>,
  location = 'files',
): ModelFileSource {
  const map = files instanceof Map ? files : new Map(Object.entries(files));
  const get = (name: string) => {
    const file = map.get(name);
    if (!file) throw new ModelError(`${location} has no ${name}`);
    return file;
  };
  const bytes = async (name: string) => {
    const file = get(name);
    return file instanceof Uint8Array ? file : new Uint8Array(await file.arrayBuffer());
  };
  return {
    location,
    exists: async (name) => map.has(name),
    readBytes: bytes,
    readText: async (name) => new TextDecoder().decode(await bytes(name)),
    open: async (name) => get(name),
  };
}

import {
  type FloatDtype,
  formatSafetensorsIndex,
  fromFloat32,
  planSafetensorsShards,
  writeSafetensors,
} from '@webtune/safetensors';
import { modelConfigToJson } from '../config/model-config.js';
import { ModelError } from '../errors.js';
import type { CausalLM } from '../models/llama.js';
import type { GenerationConfig } from './pretrained.js';

/** Where saved files go: a directory on disk, a zip, an in-memory map... */
export interface ModelFileSink {
  writeFile(fileName: string, contents: Uint8Array | string): Promise<void>;
}

export interface SaveOptions {
  /** dtype on disk (default F32; BF16 and F16 halve the size). */
  dtype?: 'F32' | 'F16' | 'BF16';
  /** Largest shard in bytes (default 5 GB, transformers' default); more shards get an index. */
  maxShardBytes?: number;
  /** Written as generation_config.json (default: bos/eos from the config). */
  generationConfig?: GenerationConfig | Record<string, unknown> | null;
  /** Files copied beside the weights, e.g. tokenizer.json and tokenizer_config.json. */
  extraFiles?: Record<string, Uint8Array | string>;
}

const TORCH_DTYPE: Record<NonNullable<SaveOptions['dtype']>, string> = {
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
};

/**
 * Writes a model as a Hugging Face folder: config.json, generation_config.json, the weights as
 * model.safetensors or shards of at most `maxShardBytes` plus model.safetensors.index.json, and
 * any extra files (tokenizer). Reads parameters back from the device one shard at a time, so the
 * host holds at most one shard. A tied head is not written (transformers re-ties it on load).
 * Returns the names of the files written.
 */
export async function saveModel(
  model: CausalLM,
  sink: ModelFileSink,
  options: SaveOptions = {},
): Promise<string[]> {
  const dtype = options.dtype ?? 'F32';
  if (!(dtype in TORCH_DTYPE)) throw new ModelError(`save: dtype must be F32, F16 or BF16, got ${dtype}`);
  model.assertLoaded();
  const packed = [...model.namedPackedParameters()];
  if (packed.length > 0) {
    throw new ModelError(
      `save: ${packed.length} base weights are held packed (${packed[0][1].format}, e.g. ${packed[0][0]}); a full model is saved from an f32 load (save the adapter instead, or load without quantization to merge)`,
    );
  }
  const parameters = [...model.namedParameters()];
  const { shards, index } = planSafetensorsShards(
    parameters.map(([name, tensor]) => ({ name, dtype, shape: tensor.shape })),
    { maxShardBytes: options.maxShardBytes ?? 5_000_000_000 },
  );
  const byName = new Map(parameters);
  const written: string[] = [];
  for (const shard of shards) {
    const tensors = [];
    for (const name of shard.tensorNames) {
      const tensor = byName.get(name)!;
      const values = (await tensor.toArray()) as Float32Array;
      tensors.push({ name, dtype, shape: tensor.shape, data: fromFloat32(values, dtype as FloatDtype) });
    }
    await sink.writeFile(shard.fileName, writeSafetensors(tensors, { format: 'pt' }));
    written.push(shard.fileName);
  }
  if (shards.length > 1) {
    await sink.writeFile('model.safetensors.index.json', formatSafetensorsIndex(index));
    written.push('model.safetensors.index.json');
  }
  const config = modelConfigToJson(model.config);
  config.torch_dtype = TORCH_DTYPE[dtype];
  await sink.writeFile('config.json', `${JSON.stringify(config, null, 2)}\n`);
  written.push('config.json');
  const generation = options.generationConfig ?? null;
  const generationJson =
    generation && 'raw' in generation && typeof generation.raw === 'object'
      ? (generation.raw as Record<string, unknown>)
      : (generation ?? defaultGenerationConfig(model));
  await sink.writeFile('generation_config.json', `${JSON.stringify(generationJson, null, 2)}\n`);
  written.push('generation_config.json');
  for (const [fileName, contents] of Object.entries(options.extraFiles ?? {})) {
    if (fileName.includes('/') || fileName.includes('\\') || written.includes(fileName)) {
      throw new ModelError(`save: extra file name "${fileName}" is not allowed`);
    }
    await sink.writeFile(fileName, contents);
    written.push(fileName);
  }
  return written;
}

function defaultGenerationConfig(model: CausalLM): Record<string, unknown> {
  const { bosTokenId, eosTokenIds, padTokenId } = model.config;
  const json: Record<string, unknown> = {};
  if (bosTokenId !== null) json.bos_token_id = bosTokenId;
  if (eosTokenIds.length > 0) json.eos_token_id = eosTokenIds.length === 1 ? eosTokenIds[0] : eosTokenIds;
  if (padTokenId !== null) json.pad_token_id = padTokenId;
  return json;
}

import { existsSync, readdirSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { saveModelDirectory } from '@webtune/nn/node';
import { optional, parseCommandLine, required } from '../args.js';
import { loadModel, openDevice } from '../model-loading.js';
import { UsageError } from '../ui.js';
import { argvFromConfig } from './config-argv.js';

export const exportHelp = `webtune export --model DIR --adapter DIR --out DIR [options]

Merges a LoRA adapter into the base weights and writes a Hugging Face model folder: config.json,
generation_config.json, safetensors (sharded above --max-shard-size, with
model.safetensors.index.json) and the tokenizer files. Transformers loads the result directly.
Without --adapter the model is rewritten as is (to change dtype or shard size).

Options:
  --model DIR            base model folder (or hub id)
  --adapter DIR          PEFT LoRA adapter folder to merge
  --out DIR              where to write; refused if it exists and is not empty, unless --force
  --force                replace what is in --out
  --dtype D              F32 (default), F16 or BF16 on disk
  --max-shard-size SIZE  largest shard, e.g. 2GB, 500MB (default 5GB)

Examples:
  webtune export --model ./Qwen3-0.6B --adapter ./saves/lora --out ./merged
  webtune export --model ./base --adapter ./saves/lora --out ./merged --dtype BF16 --max-shard-size 1GB --force`;

const DTYPES = ['F32', 'F16', 'BF16'] as const;

/** `5GB`, `500MB`, `1.5GiB`, `1000000` -> bytes. */
export function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KIB|MIB|GIB)?$/i.exec(text.trim());
  if (!match) throw new UsageError(`--max-shard-size must look like 2GB or 500MB, got "${text}"`);
  const units: Record<string, number> = {
    B: 1,
    KB: 1e3,
    MB: 1e6,
    GB: 1e9,
    KIB: 2 ** 10,
    MIB: 2 ** 20,
    GIB: 2 ** 30,
  };
  const bytes = Math.floor(Number(match[1]) * units[(match[2] ?? 'B').toUpperCase()]);
  if (bytes < 1) throw new UsageError(`--max-shard-size must be positive, got "${text}"`);
  return bytes;
}

export async function exportCommand(commandLine: string[]): Promise<number> {
  const argv = argvFromConfig('export', commandLine);
  const { values } = parseCommandLine(argv, {
    model: { type: 'string' },
    adapter: { type: 'string' },
    out: { type: 'string' },
    force: { type: 'boolean' },
    dtype: { type: 'string' },
    'max-shard-size': { type: 'string' },
  });
  const modelName = required(values, 'model');
  const out = resolve(required(values, 'out'));
  const adapter = optional(values, 'adapter');
  const dtype = (optional(values, 'dtype') ?? 'F32').toUpperCase() as (typeof DTYPES)[number];
  if (!DTYPES.includes(dtype))
    throw new UsageError(`--dtype must be F32, F16 or BF16, got "${values.dtype}"`);
  const shardText = optional(values, 'max-shard-size');
  const maxShardBytes = shardText ? parseSize(shardText) : undefined;
  if (out === resolve(modelName) || (adapter && out === resolve(adapter))) {
    throw new UsageError('--out must differ from --model and --adapter');
  }
  if (existsSync(out) && readdirSync(out).length > 0 && !values.force) {
    throw new UsageError(`--out "${out}" exists and is not empty; add --force to replace it`);
  }

  const device = await openDevice();
  try {
    const loaded = await loadModel(device, modelName, { adapter });
    const model = loaded.peft ? loaded.peft.mergeAndUnload() : loaded.model;
    // Write beside the target and swap at the end: a failed export leaves --out as it was.
    const partial = `${out}.partial-${process.pid}`;
    await rm(partial, { recursive: true, force: true });
    let files: string[];
    try {
      files = await saveModelDirectory(model, partial, {
        dtype,
        maxShardBytes,
        generationConfig: loaded.generationConfig,
        extraFiles: loaded.tokenizerFiles,
      });
      await rm(out, { recursive: true, force: true });
      await rename(partial, out);
    } catch (error) {
      await rm(partial, { recursive: true, force: true });
      throw error;
    }
    console.log(`wrote ${out}: ${files.sort().join(', ')}`);
    return 0;
  } finally {
    device.destroy();
  }
}

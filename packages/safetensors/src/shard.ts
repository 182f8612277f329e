import { isSafetensorsDtype, type SafetensorsDtype, tensorByteLength } from './dtype.js';
import { SafetensorsError } from './errors.js';
import { readSafetensors, type SafetensorsEntry, type SafetensorsFile } from './read.js';
import type { SafetensorsSource } from './source.js';
import { type SafetensorsTensorInput, validateTensorInputs, writeSafetensors } from './write.js';

/** Content of a Hugging Face `model.safetensors.index.json`. */
export interface SafetensorsIndex {
  metadata: { total_size: number; [key: string]: unknown };
  /** Tensor name -> shard file name. */
  weight_map: Record<string, string>;
}

/** How to split tensors into shard files. */
export interface ShardOptions {
  /** Largest shard in tensor bytes; a single tensor larger than this gets a shard of its own. */
  maxShardBytes: number;
  /** File name stem: `model` gives model-00001-of-00003.safetensors (and model.safetensors alone). */
  prefix?: string;
}

/** One planned shard: its file name and the tensors it holds, in input order. */
export interface PlannedShard {
  fileName: string;
  tensorNames: string[];
  byteLength: number;
}

/** Index file name for a prefix: `model` -> `model.safetensors.index.json`. */
export function indexFileName(prefix = 'model'): string {
  return `${prefix}.safetensors.index.json`;
}

/** Hugging Face's shard file name: shardFileName(0, 3) = `model-00001-of-00003.safetensors`. */
export function shardFileName(index: number, count: number, prefix = 'model'): string {
  if (count === 1) return `${prefix}.safetensors`;
  const pad = (value: number) => String(value).padStart(5, '0');
  return `${prefix}-${pad(index + 1)}-of-${pad(count)}.safetensors`;
}

/**
 * Splits tensors into shards greedily in input order, as transformers' save_pretrained does:
 * a new shard starts when the next tensor would push the current one past `maxShardBytes`.
 * Needs only names, dtypes and shapes, so a caller can plan, then write shards one at a time.
 */
export function planSafetensorsShards(
  tensors: readonly { name: string; dtype: SafetensorsDtype; shape: readonly number[] }[],
  options: ShardOptions,
): { shards: PlannedShard[]; index: SafetensorsIndex } {
  const { maxShardBytes, prefix = 'model' } = options;
  if (!(maxShardBytes > 0))
    throw new SafetensorsError(`maxShardBytes must be positive, got ${maxShardBytes}`);
  const groups: { tensorNames: string[]; byteLength: number }[] = [];
  let totalSize = 0;
  for (const tensor of tensors) {
    if (!isSafetensorsDtype(tensor.dtype)) {
      throw new SafetensorsError(`unknown dtype ${JSON.stringify(tensor.dtype)}`, {
        tensorName: tensor.name,
      });
    }
    const size = tensorByteLength(tensor.dtype, tensor.shape);
    if (size === undefined) throw new SafetensorsError('shape does not fit', { tensorName: tensor.name });
    const current = groups.at(-1);
    if (
      current === undefined ||
      (current.tensorNames.length > 0 && current.byteLength + size > maxShardBytes)
    ) {
      groups.push({ tensorNames: [tensor.name], byteLength: size });
    } else {
      current.tensorNames.push(tensor.name);
      current.byteLength += size;
    }
    totalSize += size;
  }
  if (groups.length === 0) groups.push({ tensorNames: [], byteLength: 0 });
  const shards = groups.map((group, index) => ({
    ...group,
    fileName: shardFileName(index, groups.length, prefix),
  }));
  const weightMap: Record<string, string> = {};
  for (const shard of shards) for (const name of shard.tensorNames) weightMap[name] = shard.fileName;
  return { shards, index: { metadata: { total_size: totalSize }, weight_map: weightMap } };
}

/**
 * Writes tensors as Hugging Face shards. Returns the files (named model-0000i-of-0000n.safetensors,
 * or model.safetensors when one shard suffices), the index object, and its JSON text as
 * transformers writes it (sorted keys, two-space indent, final newline). Each shard carries
 * `metadata` (default `{ format: 'pt' }`, which transformers expects).
 */
export function shardSafetensors(
  tensors: readonly SafetensorsTensorInput[],
  options: ShardOptions & { metadata?: Record<string, string> },
): { files: { fileName: string; bytes: Uint8Array }[]; index: SafetensorsIndex; indexJson: string } {
  validateTensorInputs(tensors);
  const { shards, index } = planSafetensorsShards(tensors, options);
  const byName = new Map(tensors.map((tensor) => [tensor.name, tensor]));
  const metadata = options.metadata ?? { format: 'pt' };
  const files = shards.map((shard) => ({
    fileName: shard.fileName,
    bytes: writeSafetensors(
      shard.tensorNames.map((name) => byName.get(name)!),
      metadata,
    ),
  }));
  return { files, index, indexJson: formatSafetensorsIndex(index) };
}

/** JSON text of an index with sorted keys and two-space indent, as transformers writes it. */
export function formatSafetensorsIndex(index: SafetensorsIndex): string {
  const sortedEntries = (record: Record<string, unknown>, indent: string) =>
    Object.keys(record)
      .sort()
      .map((key) => `${indent}${JSON.stringify(key)}: ${JSON.stringify(record[key])}`)
      .join(',\n');
  return `{\n  "metadata": {\n${sortedEntries(index.metadata, '    ')}\n  },\n  "weight_map": {\n${sortedEntries(index.weight_map, '    ')}\n  }\n}\n`;
}

/** Parses and checks a `model.safetensors.index.json` (text or parsed object). */
export function parseSafetensorsIndex(
  json: string | object,
  fileName = 'model.safetensors.index.json',
): SafetensorsIndex {
  let value: unknown = json;
  if (typeof json === 'string') {
    try {
      value = JSON.parse(json);
    } catch (error) {
      throw new SafetensorsError(`not valid JSON: ${(error as Error).message}`, { fileName });
    }
  }
  const index = value as Partial<SafetensorsIndex>;
  if (
    index === null ||
    typeof index !== 'object' ||
    typeof index.weight_map !== 'object' ||
    index.weight_map === null
  ) {
    throw new SafetensorsError('has no "weight_map" object', { fileName });
  }
  for (const [name, shard] of Object.entries(index.weight_map)) {
    if (typeof shard !== 'string' || shard.includes('/') || shard.includes('\\') || shard === '..') {
      throw new SafetensorsError(`weight_map entry is ${JSON.stringify(shard)}, not a file name`, {
        fileName,
        tensorName: name,
      });
    }
  }
  const metadata = (index.metadata ?? {}) as SafetensorsIndex['metadata'];
  return { metadata, weight_map: index.weight_map };
}

/**
 * A set of shards opened through an index: `read(name)` finds the right shard, iteration reads
 * every tensor one at a time, shard by shard. `openShard` turns a shard file name into a source
 * (a Node file reader, a browser File from a folder picker, fetched bytes...).
 */
export async function openShardedSafetensors(
  index: SafetensorsIndex,
  openShard: (fileName: string) => Promise<SafetensorsSource> | SafetensorsSource,
): Promise<{
  index: SafetensorsIndex;
  shards: Map<string, SafetensorsFile>;
  read(name: string): Promise<SafetensorsEntry>;
  entries(): AsyncGenerator<SafetensorsEntry>;
}> {
  const shards = new Map<string, SafetensorsFile>();
  const fileNames = [...new Set(Object.values(index.weight_map))].sort();
  for (const fileName of fileNames) {
    const file = await readSafetensors(await openShard(fileName), { fileName });
    for (const name of file.names) {
      if (index.weight_map[name] !== fileName) {
        throw new SafetensorsError(
          `found in ${fileName} but the index maps it to ${JSON.stringify(index.weight_map[name])}`,
          {
            fileName,
            tensorName: name,
          },
        );
      }
    }
    shards.set(fileName, file);
  }
  for (const [name, fileName] of Object.entries(index.weight_map)) {
    if (!shards.get(fileName)!.has(name)) {
      throw new SafetensorsError('listed in the index but missing from its shard', {
        fileName,
        tensorName: name,
      });
    }
  }
  return {
    index,
    shards,
    async read(name) {
      const fileName = index.weight_map[name];
      if (fileName === undefined || !Object.hasOwn(index.weight_map, name)) {
        throw new SafetensorsError(`no tensor named ${JSON.stringify(name)} in the index`);
      }
      return shards.get(fileName)!.read(name);
    },
    async *entries() {
      for (const file of shards.values()) yield* file.entries();
    },
  };
}

import { open, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { readSafetensors, type SafetensorsFile } from './read.js';
import {
  openShardedSafetensors,
  parseSafetensorsIndex,
  type ShardOptions,
  shardSafetensors,
} from './shard.js';
import type { RandomAccessReader } from './source.js';
import { type SafetensorsTensorInput, writeSafetensors } from './write.js';

/** A reader over a file on disk; call `close()` when done. */
export interface FileReader extends RandomAccessReader {
  close(): Promise<void>;
}

/** Opens `path` for random-access reads (Node only). */
export async function openFileReader(path: string): Promise<FileReader> {
  const handle = await open(path, 'r');
  const { size } = await handle.stat();
  return {
    size,
    name: basename(path),
    async read(offset, length) {
      const out = new Uint8Array(length);
      let filled = 0;
      while (filled < length) {
        const { bytesRead } = await handle.read(out, filled, length - filled, offset + filled);
        if (bytesRead === 0) {
          throw new RangeError(`${path}: read past the end at ${offset + filled} (file is ${size} bytes)`);
        }
        filled += bytesRead;
      }
      return out;
    },
    close: () => handle.close(),
  };
}

/**
 * Opens a .safetensors file on disk: the header is read and validated now, tensors on demand.
 * Close it when done.
 */
export async function openSafetensorsFile(
  path: string,
): Promise<SafetensorsFile & { close(): Promise<void> }> {
  const reader = await openFileReader(path);
  try {
    const file = await readSafetensors(reader, { fileName: path });
    return Object.assign(file, { close: () => reader.close() });
  } catch (error) {
    await reader.close();
    throw error;
  }
}

/** Writes tensors to one .safetensors file. */
export async function writeSafetensorsFile(
  path: string,
  tensors: readonly SafetensorsTensorInput[],
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFile(path, writeSafetensors(tensors, metadata));
}

/**
 * Writes tensors into `directory` as Hugging Face shards plus `model.safetensors.index.json`
 * (the index only when there is more than one shard, as transformers does). Returns the file names.
 */
export async function writeShardedSafetensors(
  directory: string,
  tensors: readonly SafetensorsTensorInput[],
  options: ShardOptions & { metadata?: Record<string, string> },
): Promise<string[]> {
  const { files, indexJson } = shardSafetensors(tensors, options);
  for (const file of files) await writeFile(join(directory, file.fileName), file.bytes);
  const names = files.map((file) => file.fileName);
  if (files.length > 1) {
    const indexName = `${options.prefix ?? 'model'}.safetensors.index.json`;
    await writeFile(join(directory, indexName), indexJson);
    names.push(indexName);
  }
  return names;
}

/**
 * Opens the shards listed by a `model.safetensors.index.json` on disk. Close it when done.
 */
export async function openShardedSafetensorsFiles(indexPath: string) {
  const index = parseSafetensorsIndex(await readFile(indexPath, 'utf8'), indexPath);
  const readers: FileReader[] = [];
  try {
    const sharded = await openShardedSafetensors(index, async (fileName) => {
      const reader = await openFileReader(join(dirname(indexPath), fileName));
      readers.push(reader);
      return reader;
    });
    return Object.assign(sharded, {
      close: async () => void (await Promise.all(readers.map((r) => r.close()))),
    });
  } catch (error) {
    await Promise.all(readers.map((reader) => reader.close()));
    throw error;
  }
}

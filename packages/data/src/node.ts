/**
 * Node helpers for @webtune/data: files on disk as byte streams, dataset folders with their
 * dataset_info.json, and `prepareDataset` for a folder. Not for browsers (uses node:fs).
 */
import { createReadStream, openAsBlob } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import type { FileResolver } from './pipeline/file-resolver.js';
import type { LoadedExamples, LoadOptions } from './pipeline/load-examples.js';
import { loadExamples } from './pipeline/load-examples.js';
import { type PreparedDataset, type PrepareOptions, prepareDataset } from './pipeline/prepare.js';
import type { ByteSource } from './readers/bytes.js';
import { type DatasetInfo, parseDatasetInfo } from './registry/dataset-info.js';
import { type ExampleStream, type StreamOptions, streamExamples } from './streaming/example-stream.js';

/** A file on disk as a byte stream, read in chunks (constant memory for JSONL and text). */
export function openFile(path: string): ByteSource {
  return createReadStream(path) as unknown as AsyncIterable<Uint8Array>;
}

/** A resolver for files under a folder; folders are listed (files sorted by name, recursively). */
export function directoryFileResolver(directory: string): FileResolver {
  const root = resolve(directory);
  return {
    async open(path) {
      const full = resolve(root, path);
      await stat(full);
      // Parquet needs random access: a Blob backed by the file reads only the ranges asked for.
      if (full.toLowerCase().endsWith('.parquet')) return await openAsBlob(full);
      return openFile(full);
    },
    async list(path) {
      const full = resolve(root, path);
      const info = await stat(full).catch(() => undefined);
      if (!info?.isDirectory()) return undefined;
      const names: string[] = [];
      const walk = async (folder: string) => {
        for (const entry of (await readdir(folder, { withFileTypes: true })).sort((a, b) =>
          a.name.localeCompare(b.name),
        )) {
          const child = join(folder, entry.name);
          if (entry.isDirectory()) await walk(child);
          else names.push(relative(root, child));
        }
      };
      await walk(full);
      return names;
    },
  };
}

/** Reads and parses `dataset_info.json` from a dataset folder. */
export async function readDatasetInfo(directory: string): Promise<DatasetInfo> {
  const path = join(directory, 'dataset_info.json');
  return parseDatasetInfo(await readFile(path, 'utf8'), path);
}

/** Where datasets live: a folder with an optional dataset_info.json (LLaMA-Factory's `dataset_dir`). */
export interface DirectoryOptions {
  datasetDir: string;
}

/** `loadExamples` for datasets named in (or under) a folder. */
export async function loadExamplesFromDirectory(
  options: Omit<LoadOptions, 'datasetInfo' | 'files'> & DirectoryOptions,
): Promise<LoadedExamples> {
  return loadExamples({ ...options, ...(await directoryContext(options.datasetDir)) });
}

/** `prepareDataset` for datasets named in (or under) a folder. */
export async function prepareDatasetFromDirectory(
  options: Omit<PrepareOptions, 'datasetInfo' | 'files'> & DirectoryOptions,
): Promise<PreparedDataset> {
  return prepareDataset({ ...options, ...(await directoryContext(options.datasetDir)) });
}

/** `streamExamples` for datasets named in (or under) a folder (`streaming: true`). */
export async function streamDatasetFromDirectory(
  options: Omit<StreamOptions, 'datasetInfo' | 'files'> & DirectoryOptions,
): Promise<ExampleStream> {
  return streamExamples({ ...options, ...(await directoryContext(options.datasetDir)) });
}

async function directoryContext(
  directory: string,
): Promise<{ datasetInfo?: DatasetInfo; files: FileResolver }> {
  const hasInfo = await stat(join(directory, 'dataset_info.json')).then(
    (info) => info.isFile(),
    () => false,
  );
  return {
    datasetInfo: hasInfo ? await readDatasetInfo(directory) : undefined,
    files: directoryFileResolver(directory),
  };
}

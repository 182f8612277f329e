/** Naming datasets on the command line and in configs: a path, or a name in dataset_info.json. */
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { DatasetSource } from '@webtune/data';
import { UsageError } from './ui.js';

const FORMATTINGS = ['alpaca', 'sharegpt', 'openai', 'v1'];

/** Datasets to load and the folder that holds them (and maybe dataset_info.json). */
export interface ResolvedDatasets {
  datasetDir: string;
  datasets: (string | DatasetSource)[];
}

/**
 * Resolves comma-separated dataset references. Each is a name in `datasetDir`/dataset_info.json,
 * or a path to a file or folder (described from its first row, or by `formatting`).
 */
export function resolveDatasets(
  references: string,
  options: { datasetDir?: string; formatting?: string } = {},
): ResolvedDatasets {
  if (options.formatting !== undefined && !FORMATTINGS.includes(options.formatting)) {
    throw new UsageError(
      `--formatting must be one of ${FORMATTINGS.join(', ')}, got "${options.formatting}"`,
    );
  }
  const names = references
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name.length > 0);
  if (names.length === 0) throw new UsageError('no dataset named');
  const givenDir = options.datasetDir;
  if (givenDir !== undefined && !existsSync(givenDir)) {
    throw new UsageError(`dataset folder "${givenDir}" does not exist`, 1);
  }
  const infoDir = givenDir ?? 'data';
  const hasInfo = existsSync(join(infoDir, 'dataset_info.json'));
  const datasets: (string | DatasetSource)[] = [];
  let pathDir: string | undefined;
  for (const name of names) {
    if (hasInfo && !existsSync(name)) {
      datasets.push(name);
      continue;
    }
    const path = existsSync(name)
      ? name
      : givenDir && existsSync(join(givenDir, name))
        ? join(givenDir, name)
        : null;
    if (path === null) {
      throw new UsageError(
        hasInfo
          ? `dataset "${name}" is neither a file nor a name in ${join(infoDir, 'dataset_info.json')}`
          : `dataset "${name}" does not exist (give a file, or --dataset-dir with a dataset_info.json)`,
        1,
      );
    }
    pathDir ??= dirname(resolve(path));
    datasets.push({
      name: basename(path),
      path: resolve(path),
      description: options.formatting ? { formatting: options.formatting } : undefined,
    });
  }
  return { datasetDir: resolve(hasInfo ? infoDir : (givenDir ?? pathDir ?? '.')), datasets };
}

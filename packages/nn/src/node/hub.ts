import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseSafetensorsIndex } from '@webtune/safetensors';
import { ModelError } from '../errors.js';

/** Progress of one file of a download. */
export interface DownloadProgress {
  file: string;
  /** Bytes of the file on disk so far (resumed bytes included). */
  receivedBytes: number;
  /** The file's size, when the server said it. */
  totalBytes: number | null;
  /** True once the file is complete (also for files found in the cache). */
  done: boolean;
  /** True when the file came from the cache without a request. */
  cached?: boolean;
}

export interface DownloadOptions {
  /** Branch, tag or commit (default main). */
  revision?: string;
  /** Cache folder (default $WEBTUNE_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub). */
  cacheDir?: string;
  /** Hub address (default $HF_ENDPOINT, else https://huggingface.co). */
  endpoint?: string;
  /** Access token for gated or private repositories (default $HF_TOKEN). */
  token?: string;
  onProgress?: (progress: DownloadProgress) => void;
  /** Fetch again even when a file is in the cache. */
  force?: boolean;
  /** Extra files to fetch beside the model's (must exist). */
  extraFiles?: readonly string[];
  /** Attempts per file; each retry resumes where the last one stopped (default 4). */
  attempts?: number;
  signal?: AbortSignal;
  /** The fetch to use (default globalThis.fetch). */
  fetch?: typeof fetch;
}

const OPTIONAL_FILES = [
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
];

/** The default cache folder (see DownloadOptions.cacheDir). */
export function defaultCacheDir(): string {
  if (process.env.WEBTUNE_CACHE) return process.env.WEBTUNE_CACHE;
  if (process.env.HF_HOME) return join(process.env.HF_HOME, 'hub');
  return join(homedir(), '.cache', 'huggingface', 'hub');
}

/** Folder a repository's files go to: `<cache>/models--owner--name/snapshots/<revision>`. */
export function snapshotDir(repoId: string, revision = 'main', cacheDir = defaultCacheDir()): string {
  checkRepoId(repoId);
  return join(cacheDir, `models--${repoId.replaceAll('/', '--')}`, 'snapshots', encodeURIComponent(revision));
}

/**
 * Downloads a model from the Hugging Face hub (or a mirror with the same URL layout,
 * `<endpoint>/<repo>/resolve/<revision>/<file>`) into a cache folder and returns the folder,
 * ready for `loadModelDirectory`. Fetches config.json, the weights (model.safetensors, or the
 * index and every shard it lists) and the tokenizer and generation files that exist. Files
 * already complete in the cache are not fetched again; a partial file (`<name>.incomplete`)
 * resumes with an HTTP Range request, after an interruption or in a later run.
 */
export async function downloadModel(repoId: string, options: DownloadOptions = {}): Promise<string> {
  const revision = options.revision ?? 'main';
  const directory = snapshotDir(repoId, revision, options.cacheDir ?? defaultCacheDir());
  await mkdir(directory, { recursive: true });
  const get = (file: string, required: boolean) => downloadFile(repoId, file, directory, required, options);
  await get('config.json', true);
  for (const file of OPTIONAL_FILES) await get(file, false);
  for (const file of options.extraFiles ?? []) await get(file, true);
  if (await get('model.safetensors.index.json', false)) {
    const { readFile } = await import('node:fs/promises');
    const index = parseSafetensorsIndex(
      await readFile(join(directory, 'model.safetensors.index.json'), 'utf8'),
      `${repoId}/model.safetensors.index.json`,
    );
    for (const shard of [...new Set(Object.values(index.weight_map))].sort()) await get(shard, true);
  } else if (!(await get('model.safetensors', false))) {
    throw new ModelError(
      `${repoId}@${revision} has neither model.safetensors nor model.safetensors.index.json (only safetensors weights are supported)`,
    );
  }
  return directory;
}

/**
 * Fetches one file into `directory`, resuming a partial one. Returns false when the file does
 * not exist on the hub and is not required.
 */
async function downloadFile(
  repoId: string,
  file: string,
  directory: string,
  required: boolean,
  options: DownloadOptions,
): Promise<boolean> {
  const target = join(directory, file);
  const partial = `${target}.incomplete`;
  const missingMarker = `${target}.missing`;
  if (!options.force) {
    const size = await fileSize(target);
    if (size !== null) {
      options.onProgress?.({ file, receivedBytes: size, totalBytes: size, done: true, cached: true });
      return true;
    }
    if (!required && (await fileSize(missingMarker)) !== null) return false;
  }
  await mkdir(dirname(target), { recursive: true });
  const endpoint = (options.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(
    /\/+$/,
    '',
  );
  const revision = options.revision ?? 'main';
  const url = `${endpoint}/${repoId}/resolve/${encodeURIComponent(revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
  const token = options.token ?? process.env.HF_TOKEN;
  const fetcher = options.fetch ?? globalThis.fetch;
  const attempts = options.attempts ?? 4;
  let lastError: unknown = null;
  for (let attempt = 0; attempt < attempts; attempt++) {
    options.signal?.throwIfAborted();
    const have = (await fileSize(partial)) ?? 0;
    const headers: Record<string, string> = {};
    if (have > 0) headers.Range = `bytes=${have}-`;
    if (token) headers.Authorization = `Bearer ${token}`;
    let response: Response;
    try {
      response = await fetcher(url, { headers, signal: options.signal, redirect: 'follow' });
    } catch (error) {
      if (options.signal?.aborted) throw error;
      lastError = error;
      continue;
    }
    if (response.status === 404 && !required) {
      await response.body?.cancel();
      await (await open(missingMarker, 'w')).close();
      return false;
    }
    if (response.status === 416 && have > 0) {
      // The partial file is as long as (or longer than) the remote one: start over.
      await response.body?.cancel();
      await rm(partial, { force: true });
      continue;
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new ModelError(describeHttpError(response.status, repoId, file, url, Boolean(token)));
    }
    const resumed = response.status === 206;
    const start = resumed ? rangeStart(response.headers.get('content-range')) : 0;
    if (resumed && start !== have) {
      await response.body?.cancel();
      await rm(partial, { force: true });
      lastError = new ModelError(`${url}: the server resumed at byte ${start}, not ${have}`);
      continue;
    }
    const totalBytes = totalSize(response, start);
    const handle = await open(partial, resumed ? 'a' : 'w');
    let received = start;
    try {
      options.onProgress?.({ file, receivedBytes: received, totalBytes, done: false });
      if (response.body) {
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          await handle.write(chunk);
          received += chunk.length;
          options.onProgress?.({ file, receivedBytes: received, totalBytes, done: false });
        }
      }
    } catch (error) {
      if (options.signal?.aborted) throw error;
      lastError = error;
      continue;
    } finally {
      await handle.close();
    }
    if (totalBytes !== null && received !== totalBytes) {
      lastError = new ModelError(`${url}: got ${received} of ${totalBytes} bytes`);
      continue;
    }
    await rename(partial, target);
    await rm(missingMarker, { force: true });
    options.onProgress?.({ file, receivedBytes: received, totalBytes: received, done: true });
    return true;
  }
  throw new ModelError(
    `downloading ${url} failed after ${attempts} attempts: ${(lastError as Error)?.message ?? lastError}` +
      ' (run again to resume from what is on disk)',
  );
}

function describeHttpError(
  status: number,
  repoId: string,
  file: string,
  url: string,
  hasToken: boolean,
): string {
  if (status === 401 || status === 403) {
    return `${repoId}: ${url} answered ${status}; the repository is gated or private${hasToken ? ' and the token was refused' : ': set HF_TOKEN or pass token'}`;
  }
  if (status === 404)
    return `${repoId}: ${file} was not found at ${url} (check the repository id and revision)`;
  return `${repoId}: ${url} answered HTTP ${status}`;
}

function rangeStart(contentRange: string | null): number {
  const match = /bytes (\d+)-/.exec(contentRange ?? '');
  return match ? Number(match[1]) : -1;
}

function totalSize(response: Response, start: number): number | null {
  const range = /\/(\d+)$/.exec(response.headers.get('content-range') ?? '');
  if (range) return Number(range[1]);
  // fetch decompresses a compressed body, so its Content-Length says nothing about the file.
  const encoding = response.headers.get('content-encoding');
  if (encoding && encoding !== 'identity') return null;
  const length = response.headers.get('content-length');
  return length === null ? null : start + Number(length);
}

async function fileSize(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch {
    return null;
  }
}

function checkRepoId(repoId: string): void {
  if (!/^[\w.-]+(\/[\w.-]+)?$/.test(repoId) || repoId.includes('..')) {
    throw new ModelError(`"${repoId}" is not a hub repository id (owner/name)`);
  }
}

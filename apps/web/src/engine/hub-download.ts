/*
 * Models from a Hugging Face hub (or a mirror in its URL layout), through @webtune/hub: its
 * downloader asks the hub for the revision's files, fetches those a run reads (config, tokenizer,
 * safetensors weights or their shards) with progress, resumes a cut file with a Range request, and
 * keeps everything in the browser's Cache Storage (`cacheStorageHubCache`). A reload asks the hub
 * only for the revision's file list and fetches no file again; with the hub unreachable the cache
 * alone serves what it holds. Files are read back as disk-backed Blobs, never held whole in memory.
 */
import {
  type BrowserHubCache,
  cacheStorageHubCache,
  DEFAULT_HUB_BUCKET,
  downloadSnapshot,
  type FileProgress,
  HubError,
  type HubSettings,
  memoryCacheStorage,
  selectModelFiles,
} from '@webtune/hub';
import type { HubModel } from './protocol.js';

/** Called while files download: bytes so far of the current file and its size (0 when unknown). */
export type HubProgress = (fileName: string, loaded: number, total: number) => void;

/** A short list of small, real chat models the board can train in a tab (size of the download). */
export const QUICK_START_MODELS: { repo: string; label: string }[] = [
  { repo: 'HuggingFaceTB/SmolLM2-135M-Instruct', label: 'SmolLM2 135M Instruct (270 MB)' },
  { repo: 'HuggingFaceTB/SmolLM2-360M-Instruct', label: 'SmolLM2 360M Instruct (720 MB)' },
  { repo: 'Qwen/Qwen2.5-0.5B-Instruct', label: 'Qwen2.5 0.5B Instruct (990 MB)' },
  { repo: 'Qwen/Qwen3-0.6B', label: 'Qwen3 0.6B (1.5 GB)' },
];

const REPO = /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/;

/** Checks a hub id (`owner/name`), revision and hub address; throws an error naming what is wrong. */
export function checkHubModel(hub: HubModel): HubModel {
  const repo = hub.repo.trim();
  if (!REPO.test(repo) || repo.includes('..')) {
    throw new Error(`"${hub.repo}" is not a hub model id: write it as owner/name, e.g. Qwen/Qwen3-0.6B`);
  }
  const revision = hub.revision.trim() || 'main';
  if (/[\s?#]|\.\./.test(revision))
    throw new Error(`"${hub.revision}" is not a revision (a branch, tag or commit)`);
  let baseUrl: URL;
  try {
    baseUrl = new URL(hub.baseUrl.trim() || 'https://huggingface.co');
  } catch {
    throw new Error(`"${hub.baseUrl}" is not a URL: the hub's address, e.g. https://huggingface.co`);
  }
  const token = hub.token?.trim() || undefined;
  return { baseUrl: baseUrl.href.replace(/\/+$/, ''), repo, revision, ...(token ? { token } : {}) };
}

/** The bucket of the board's own downloader before it used @webtune/hub: dropped on first use. */
const OLD_BUCKET = 'webtune-hub-v1';

let opened: BrowserHubCache | null = null;
/** The page's hub cache: Cache Storage, or memory where the page has none (an insecure origin). */
function hubCache(): BrowserHubCache {
  if (!opened) {
    if (typeof caches !== 'undefined') caches.delete(OLD_BUCKET).catch(() => undefined);
    opened = cacheStorageHubCache(typeof caches === 'undefined' ? memoryCacheStorage() : caches, {
      name: DEFAULT_HUB_BUCKET,
    });
  }
  return opened;
}

/**
 * Downloads a hub model's files through the cache and returns them by name, with whether any file
 * had to be fetched. The hub unreachable (not an HTTP error: no answer at all), the cache alone
 * is asked.
 */
export async function downloadHubModel(
  hub: HubModel,
  onProgress?: HubProgress,
): Promise<{ files: Map<string, Blob>; fromCache: boolean; offline: boolean }> {
  const { baseUrl, repo, revision, token } = checkHubModel(hub);
  const cache = hubCache();
  const settings: HubSettings = { endpoint: baseUrl, token: token ?? null, offline: false };
  let fetched = false;
  const options = {
    type: 'model' as const,
    revision,
    select: (paths: string[]) => selectModelFiles(paths, `model ${repo}`),
    onProgress: ({ path, receivedBytes, totalBytes, cached }: FileProgress) => {
      if (!cached) fetched = true;
      onProgress?.(path, receivedBytes, totalBytes ?? 0);
    },
  };
  let offline = false;
  let snapshot: Awaited<ReturnType<typeof downloadSnapshot>>;
  try {
    snapshot = await downloadSnapshot(repo, cache, settings, options);
  } catch (error) {
    const unreachable = error instanceof HubError && error.status === null && !fetched;
    if (!unreachable) throw error;
    try {
      snapshot = await downloadSnapshot(repo, cache, { ...settings, offline: true }, options);
    } catch {
      throw error;
    }
    offline = true;
  }
  const files = new Map<string, Blob>();
  for (const path of snapshot.files) {
    const blob = await cache.read(snapshot.folder, snapshot.commit, path);
    if (!blob) throw new Error(`${repo}: ${path} was downloaded but the browser did not keep it`);
    files.set(path, blob);
  }
  return { files, fromCache: !fetched, offline };
}

/** The hub models in the cache, as `repo@revision`. */
export async function cachedHubModels(): Promise<string[]> {
  const models: string[] = [];
  for (const { folder, revision } of await hubCache().refs()) {
    if (folder.startsWith('models--')) models.push(`${folder.slice(8).replace('--', '/')}@${revision}`);
  }
  return models.sort();
}

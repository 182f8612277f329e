/*
 * Models from a Hugging Face hub (or any server in its URL layout,
 * `{baseUrl}/{repo}/resolve/{revision}/{file}`), downloaded once with progress and kept in the
 * browser's Cache Storage: a reload reads them from the cache and asks the network for nothing.
 * A file is streamed into the cache (not held in memory) and read back as a disk-backed Blob. Each
 * model also gets a small listing of the files it has, so that optional files the hub lacks (a
 * tokenizer_config.json, a generation_config.json) cost no request on the next visit either.
 */
import type { HubModel } from './protocol.js';
import { type DownloadProgress, downloadModelFolder } from './url-source.js';

/** The Cache Storage bucket of hub downloads. */
export const HUB_CACHE = 'webtune-hub-v1';
const LISTING = '.webtune-files.json';

/** A short list of small, real chat models the board can train in a tab (size of the download). */
export const QUICK_START_MODELS: { repo: string; label: string }[] = [
  { repo: 'HuggingFaceTB/SmolLM2-135M-Instruct', label: 'SmolLM2 135M Instruct (270 MB)' },
  { repo: 'HuggingFaceTB/SmolLM2-360M-Instruct', label: 'SmolLM2 360M Instruct (720 MB)' },
  { repo: 'Qwen/Qwen2.5-0.5B-Instruct', label: 'Qwen2.5 0.5B Instruct (990 MB)' },
  { repo: 'Qwen/Qwen3-0.6B', label: 'Qwen3 0.6B (1.5 GB)' },
];

const REPO = /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/;

/** Checks a hub id (`owner/name`) and revision; throws an error naming what is wrong. */
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
  return { baseUrl: baseUrl.href.replace(/\/+$/, ''), repo, revision };
}

/** The folder URL of a model revision: files are `{folder}{file}`. */
export function hubFolderUrl(hub: HubModel): string {
  const { baseUrl, repo, revision } = checkHubModel(hub);
  return `${baseUrl}/${repo}/resolve/${encodeURIComponent(revision)}/`;
}

function cacheStorage(): CacheStorage | null {
  return typeof caches === 'undefined' ? null : caches;
}

/**
 * Downloads a hub model's files (config, tokenizer, weights or their shards) through the cache:
 * files already cached are read from it, the others fetched with progress and cached as they
 * arrive. Without Cache Storage (an insecure origin) it downloads without caching.
 */
export async function downloadHubModel(
  hub: HubModel,
  onProgress?: DownloadProgress,
): Promise<{ files: Map<string, Blob>; fromCache: boolean }> {
  const folder = hubFolderUrl(hub);
  const storage = cacheStorage();
  if (!storage) return { files: await downloadModelFolder(folder, onProgress), fromCache: false };
  const cache = await storage.open(HUB_CACHE);
  const listed = await cache.match(folder + LISTING);
  if (listed) {
    const names = (await listed.json()) as string[];
    const files = new Map<string, Blob>();
    for (const name of names) {
      const hit = await cache.match(folder + name);
      if (!hit) break;
      files.set(name, await hit.blob());
    }
    if (files.size === names.length) return { files, fromCache: true };
  }
  const files = await downloadModelFolder(folder, onProgress, (base, name, progress) =>
    cachedFetch(cache, base, name, progress),
  );
  await cache.put(
    folder + LISTING,
    new Response(JSON.stringify([...files.keys()]), { headers: { 'content-type': 'application/json' } }),
  );
  return { files, fromCache: false };
}

/** One file through the cache: a hit is read back; a miss is streamed into the cache with progress. */
async function cachedFetch(
  cache: Cache,
  base: string,
  name: string,
  onProgress?: DownloadProgress,
): Promise<Blob | null> {
  const url = base + name;
  const hit = await cache.match(url);
  if (hit) return hit.blob();
  const response = await fetch(url);
  if (response.status === 404) return null;
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status} ${response.statusText}`);
  const total = Number(response.headers.get('content-length') ?? 0);
  if (!response.body) {
    const blob = await response.blob();
    await cache.put(url, new Response(blob));
    return blob;
  }
  // One branch goes to the cache, the other only counts bytes: the file never sits in memory whole.
  const [toCache, toCount] = response.body.tee();
  const stored = cache.put(
    url,
    new Response(toCache, { headers: { 'content-type': 'application/octet-stream' } }),
  );
  let loaded = 0;
  const reader = toCount.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    loaded += value.length;
    onProgress?.(name, loaded, total);
  }
  await stored;
  const back = await cache.match(url);
  if (!back) throw new Error(`${url} was downloaded but the browser did not keep it in Cache Storage`);
  return back.blob();
}

/** The hub models in the cache, as `repo@revision`. */
export async function cachedHubModels(): Promise<string[]> {
  const storage = cacheStorage();
  if (!storage || !(await storage.has(HUB_CACHE))) return [];
  const cache = await storage.open(HUB_CACHE);
  const models: string[] = [];
  for (const request of await cache.keys()) {
    const match = /^(.*)\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/\.webtune-files\.json$/.exec(request.url);
    if (match) models.push(`${match[2]}@${decodeURIComponent(match[3])}`);
  }
  return models.sort();
}

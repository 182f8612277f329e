/**
 * The downloader, on `fetch` only (Node 18+ and browsers): asks the hub's API for a revision's files
 * (commit hash, blob ids and sizes in one request), then fetches each file that is not in the cache
 * into a partial blob, resuming with an HTTP Range request after an interruption (in the same call, up
 * to `attempts` times, or in a later run), checks its size, and links it into the snapshot. With
 * `offline` it reads only the cache.
 */
import type { HubCache } from './hub-cache.js';
import { HubError, responseError } from './hub-error.js';
import type { HubSettings } from './hub-settings.js';
import {
  checkRepoPath,
  isCommitHash,
  type RepoType,
  repoFolderName,
  resolveUrl,
  revisionInfoUrl,
} from './hub-urls.js';

/** A file of a revision as the hub lists it. */
export interface RepoFile {
  path: string;
  /** The cache's blob name: the LFS sha256 for LFS files, else the git blob id. */
  blob: string;
  /** Bytes, when listed. */
  size: number | null;
}

/** A revision resolved to its commit and files. */
export interface RepoRevision {
  commit: string;
  files: RepoFile[];
}

/** Progress of one file. */
export interface FileProgress {
  path: string;
  receivedBytes: number;
  totalBytes: number | null;
  done: boolean;
  /** The file was already in the cache. */
  cached: boolean;
}

export interface DownloadOptions {
  type: RepoType;
  /** Branch, tag or commit (default main). */
  revision?: string;
  /** Picks the files to fetch from the revision's list (all by default). */
  select?: (paths: string[]) => string[];
  /** Tries per file; each retry resumes where the last stopped (default 3). */
  attempts?: number;
  onProgress?: (progress: FileProgress) => void;
  signal?: AbortSignal;
  /** The fetch to use (default globalThis.fetch). */
  fetch?: typeof fetch;
}

/** What a download returns: the snapshot's commit and the files fetched or found. */
export interface Snapshot {
  repo: string;
  type: RepoType;
  commit: string;
  folder: string;
  /** Paths inside the repository, in the order given by `select`. */
  files: string[];
}

function headersOf(settings: HubSettings, extra: Record<string, string> = {}): Record<string, string> {
  return settings.token ? { ...extra, authorization: `Bearer ${settings.token}` } : extra;
}

/** Asks the hub for a revision's commit and files. */
export async function fetchRevision(
  repo: string,
  type: RepoType,
  revision: string,
  settings: HubSettings,
  options: Pick<DownloadOptions, 'fetch' | 'signal'> = {},
): Promise<RepoRevision> {
  const url = revisionInfoUrl(settings.endpoint, type, repo, revision);
  const what = `${type} ${repo}@${revision}`;
  let response: Response;
  try {
    response = await (options.fetch ?? fetch)(url, { headers: headersOf(settings), signal: options.signal });
  } catch (error) {
    throw new HubError(
      `${what}: the hub could not be reached at ${settings.endpoint} (${describe(error)})`,
      null,
      url,
    );
  }
  if (!response.ok) throw responseError(what, url, response.status, response.statusText);
  const body = (await response.json().catch(() => null)) as {
    sha?: unknown;
    siblings?: {
      rfilename?: unknown;
      blobId?: unknown;
      size?: unknown;
      lfs?: { sha256?: unknown; size?: unknown };
    }[];
  } | null;
  if (!body || typeof body.sha !== 'string' || !Array.isArray(body.siblings)) {
    throw new HubError(
      `${what}: the hub's answer has no sha and siblings (is ${settings.endpoint} a hub?)`,
      null,
      url,
    );
  }
  const files = body.siblings.map((sibling, index): RepoFile => {
    const path = sibling.rfilename;
    const blob = sibling.lfs?.sha256 ?? sibling.blobId;
    if (typeof path !== 'string' || typeof blob !== 'string' || !/^[0-9a-f]{40,64}$/.test(blob)) {
      throw new HubError(`${what}: file ${index} of the hub's list has no rfilename or blob id`, null, url);
    }
    checkRepoPath(path);
    const size = sibling.lfs?.size ?? sibling.size;
    return { path, blob, size: typeof size === 'number' ? size : null };
  });
  return { commit: body.sha, files };
}

/**
 * Downloads the selected files of a repository revision into `cache` and returns the snapshot.
 * Files already complete in the cache are not fetched again.
 */
export async function downloadSnapshot(
  repo: string,
  cache: HubCache,
  settings: HubSettings,
  options: DownloadOptions,
): Promise<Snapshot> {
  const revision = options.revision ?? 'main';
  const folder = repoFolderName(options.type, repo);
  const select = options.select ?? ((paths: string[]) => paths);
  if (settings.offline) return offlineSnapshot(repo, folder, revision, cache, options.type, select);
  const listed = await fetchRevision(repo, options.type, revision, settings, options);
  const byPath = new Map(listed.files.map((file) => [file.path, file]));
  const chosen = select(listed.files.map((file) => file.path));
  for (const path of chosen) {
    const file = byPath.get(path);
    if (!file) throw new HubError(`${options.type} ${repo}@${revision} has no file ${path}`);
    await downloadFile(repo, folder, listed.commit, file, cache, settings, options);
  }
  if (!isCommitHash(revision)) await cache.writeRef(folder, revision, listed.commit);
  return { repo, type: options.type, commit: listed.commit, folder, files: chosen };
}

async function offlineSnapshot(
  repo: string,
  folder: string,
  revision: string,
  cache: HubCache,
  type: RepoType,
  select: (paths: string[]) => string[],
): Promise<Snapshot> {
  const commit = isCommitHash(revision) ? revision : await cache.readRef(folder, revision);
  const files = commit ? await cache.listSnapshot(folder, commit) : null;
  if (!commit || !files) {
    throw new HubError(
      `HF_HUB_OFFLINE is set and ${type} ${repo}@${revision} is not in the cache (${cache.locate(folder, commit ?? revision, '')}); download it once without HF_HUB_OFFLINE`,
    );
  }
  return { repo, type, commit, folder, files: select(files) };
}

async function downloadFile(
  repo: string,
  folder: string,
  commit: string,
  file: RepoFile,
  cache: HubCache,
  settings: HubSettings,
  options: DownloadOptions,
): Promise<void> {
  const report = (receivedBytes: number, done: boolean, cached = false) =>
    options.onProgress?.({ path: file.path, receivedBytes, totalBytes: file.size, done, cached });
  if (await cache.hasSnapshotFile(folder, commit, file.path)) {
    report(file.size ?? 0, true, true);
    return;
  }
  const url = resolveUrl(settings.endpoint, options.type, repo, commit, file.path);
  const what = `${options.type} ${repo}: ${file.path}`;
  const attempts = options.attempts ?? 3;
  let lastError: unknown = null;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    let have = await cache.partialSize(folder, file.blob);
    if (file.size !== null && have > file.size) have = 0;
    if (file.size === null || have < file.size) {
      const headers = headersOf(settings, have > 0 ? { range: `bytes=${have}-` } : {});
      let response: Response;
      try {
        response = await (options.fetch ?? fetch)(url, { headers, signal: options.signal });
      } catch (error) {
        lastError = new HubError(`${what}: download failed (${describe(error)})`, null, url);
        continue;
      }
      if (response.status === 416 && have > 0) {
        // The range starts past the end: start over.
        await cache.writePartial(folder, file.blob, emptyChunks(), true);
        lastError = new HubError(`${what}: the partial file did not match the hub's`, 416, url);
        continue;
      }
      if (!response.ok) {
        const error = responseError(what, url, response.status, response.statusText);
        // Authentication and absence do not get better by asking again.
        if ([401, 403, 404].includes(response.status)) throw error;
        lastError = error;
        continue;
      }
      const restart = response.status !== 206;
      // A broken connection ends the chunks early (so every byte received is kept) and is reported here.
      const stopped: { error: unknown } = { error: null };
      try {
        have = await cache.writePartial(
          folder,
          file.blob,
          progressChunks(response, restart ? 0 : have, report, stopped),
          restart,
        );
      } catch (error) {
        stopped.error ??= error;
      }
      if (stopped.error !== null) {
        if (options.signal?.aborted) throw stopped.error;
        lastError = new HubError(
          `${what}: the download stopped (${describe(stopped.error)}); it resumes from here`,
          null,
          url,
        );
        continue;
      }
    }
    if (file.size !== null && have !== file.size) {
      lastError = new HubError(`${what}: got ${have} bytes of ${file.size}`, null, url);
      continue;
    }
    await cache.commitFile(folder, file.blob, commit, file.path);
    report(have, true);
    return;
  }
  throw lastError instanceof HubError
    ? new HubError(`${lastError.message} (after ${attempts} tries)`, lastError.status, lastError.url)
    : lastError;
}

async function* progressChunks(
  response: Response,
  start: number,
  report: (bytes: number, done: boolean) => void,
  stopped: { error: unknown },
): AsyncGenerator<Uint8Array> {
  if (!response.body) return;
  let received = start;
  const reader = response.body.getReader();
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch (error) {
      stopped.error = error;
      return;
    }
    const { done, value } = chunk;
    if (done) return;
    received += value.byteLength;
    report(received, false);
    yield value;
  }
}

async function* emptyChunks(): AsyncGenerator<Uint8Array> {}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    return cause instanceof Error ? `${error.message}: ${cause.message}` : error.message;
  }
  return String(error);
}

/**
 * A HubCache on the browser's Cache Storage (`caches`), with the keys of Hugging Face's layout:
 * `{base}{folder}/refs/{revision}` holds a commit, `{base}{folder}/snapshots/{commit}/{path}` a
 * complete file, and `{base}{folder}/blobs/{blob}.incomplete?offset=N` the pieces of a partial
 * download. Cache Storage cannot append to an entry, so a download is kept in pieces of at most
 * `pieceBytes` (held in memory until written): a broken connection loses nothing already received,
 * and the next try resumes with a Range request from the end of the last piece. When the file is
 * complete its pieces are joined into one entry (Blobs of cached entries are backed by disk, so the
 * file never sits in memory whole).
 */
import type { HubCache } from './hub-cache.js';

/** Options of a Cache Storage query (only ignoreSearch is used). */
export interface CacheQuery {
  ignoreSearch?: boolean;
}

/** The part of the DOM's `Cache` this cache uses. */
export interface CacheLike {
  match(request: string, options?: CacheQuery): Promise<Response | undefined>;
  put(request: string, response: Response): Promise<void>;
  delete(request: string, options?: CacheQuery): Promise<boolean>;
  keys(request?: string, options?: CacheQuery): Promise<readonly { url: string }[]>;
}

/** The part of the DOM's `CacheStorage` (`caches`) this cache uses. */
export interface CacheStorageLike {
  open(name: string): Promise<CacheLike>;
}

/** A snapshot kept in the cache: a repository folder, the revision asked for and its commit. */
export interface CachedRef {
  folder: string;
  revision: string;
  commit: string;
}

/** A HubCache that can also hand back what it holds, as the browser reads it. */
export interface BrowserHubCache extends HubCache {
  /** A complete snapshot file, or null when it is not in the cache. */
  read(folder: string, commit: string, path: string): Promise<Blob | null>;
  /** Every revision whose download finished (its ref was written), sorted by folder. */
  refs(): Promise<CachedRef[]>;
}

export interface CacheStorageHubCacheOptions {
  /** The Cache Storage bucket (default `webtune-hub`). */
  name?: string;
  /** The URL prefix of the keys (never fetched; default `https://hub-cache.webtune.invalid/`). */
  base?: string;
  /** Bytes held in memory before a piece is written (default 8 MiB). */
  pieceBytes?: number;
}

export const DEFAULT_HUB_BUCKET = 'webtune-hub';
const DEFAULT_BASE = 'https://hub-cache.webtune.invalid/';
const SIZE_HEADER = 'x-webtune-bytes';

const encodePath = (path: string) =>
  path
    .split('/')
    .filter((part) => part !== '')
    .map(encodeURIComponent)
    .join('/');

/** A HubCache in Cache Storage (`cacheStorageHubCache(caches)` in a page or worker). */
export function cacheStorageHubCache(
  storage: CacheStorageLike,
  options: CacheStorageHubCacheOptions = {},
): BrowserHubCache {
  const base = options.base ?? DEFAULT_BASE;
  const pieceBytes = options.pieceBytes ?? 8 * 1024 * 1024;
  let opened: Promise<CacheLike> | null = null;
  const cache = () => {
    opened ??= storage.open(options.name ?? DEFAULT_HUB_BUCKET);
    return opened;
  };
  const refKey = (folder: string, revision: string) =>
    `${base}${encodeURIComponent(folder)}/refs/${encodeURIComponent(revision)}`;
  const snapshotPrefix = (folder: string, commit: string) =>
    `${base}${encodeURIComponent(folder)}/snapshots/${encodeURIComponent(commit)}/`;
  const snapshotKey = (folder: string, commit: string, path: string) =>
    snapshotPrefix(folder, commit) + encodePath(path);
  const pieceKey = (folder: string, blob: string) =>
    `${base}${encodeURIComponent(folder)}/blobs/${encodeURIComponent(blob)}.incomplete`;

  /** The pieces of a partial blob, in order, with their sizes. */
  const pieces = async (folder: string, blob: string) => {
    const store = await cache();
    const found: { key: string; offset: number; bytes: number }[] = [];
    for (const request of await store.keys(pieceKey(folder, blob), { ignoreSearch: true })) {
      const offset = Number(new URL(request.url).searchParams.get('offset'));
      const response = await store.match(request.url);
      const bytes = Number(response?.headers.get(SIZE_HEADER) ?? Number.NaN);
      if (response && Number.isFinite(offset) && Number.isFinite(bytes)) {
        found.push({ key: request.url, offset, bytes });
      }
    }
    found.sort((a, b) => a.offset - b.offset);
    // Only the run of pieces that follow each other from 0 counts (a lost piece ends it).
    let end = 0;
    const usable: typeof found = [];
    for (const piece of found) {
      if (piece.offset !== end) break;
      usable.push(piece);
      end += piece.bytes;
    }
    return { all: found, usable, end };
  };
  const dropPieces = async (folder: string, blob: string) => {
    const store = await cache();
    for (const piece of (await pieces(folder, blob)).all) await store.delete(piece.key);
  };

  return {
    async readRef(folder, revision) {
      const hit = await (await cache()).match(refKey(folder, revision));
      const text = hit ? (await hit.text()).trim() : '';
      return text || null;
    },
    async writeRef(folder, revision, commit) {
      await (await cache()).put(refKey(folder, revision), new Response(commit));
    },
    async listSnapshot(folder, commit) {
      const prefix = snapshotPrefix(folder, commit);
      const files = (await (await cache()).keys())
        .map((request) => request.url)
        .filter((url) => url.startsWith(prefix))
        .map((url) => url.slice(prefix.length).split('/').map(decodeURIComponent).join('/'));
      return files.length > 0 ? files.sort() : null;
    },
    async hasSnapshotFile(folder, commit, path) {
      return (await (await cache()).match(snapshotKey(folder, commit, path))) !== undefined;
    },
    async partialSize(folder, blob) {
      return (await pieces(folder, blob)).end;
    },
    async writePartial(folder, blob, chunks, restart) {
      const store = await cache();
      if (restart) await dropPieces(folder, blob);
      const known = await pieces(folder, blob);
      // Pieces past a gap cannot be used: drop them so that offsets stay unique.
      for (const piece of known.all.slice(known.usable.length)) await store.delete(piece.key);
      let offset = known.end;
      let held: Uint8Array[] = [];
      let heldBytes = 0;
      const flush = async () => {
        if (heldBytes === 0) return;
        const key = `${pieceKey(folder, blob)}?offset=${String(offset).padStart(15, '0')}`;
        await store.put(
          key,
          new Response(new Blob(held as BlobPart[]), { headers: { [SIZE_HEADER]: String(heldBytes) } }),
        );
        offset += heldBytes;
        held = [];
        heldBytes = 0;
      };
      try {
        for await (const chunk of chunks) {
          held.push(chunk);
          heldBytes += chunk.byteLength;
          if (heldBytes >= pieceBytes) await flush();
        }
      } finally {
        // Whatever arrived before an error is kept, so the next try resumes after it.
        await flush();
      }
      return offset;
    },
    async commitFile(folder, blob, commit, path) {
      const store = await cache();
      const { usable } = await pieces(folder, blob);
      const parts: Blob[] = [];
      for (const piece of usable) {
        const hit = await store.match(piece.key);
        if (!hit) throw new Error(`the cache lost a piece of ${path} (${piece.key})`);
        parts.push(await hit.blob());
      }
      const file = new Blob(parts);
      await store.put(
        snapshotKey(folder, commit, path),
        new Response(file, {
          headers: { 'content-type': 'application/octet-stream', [SIZE_HEADER]: String(file.size) },
        }),
      );
      await dropPieces(folder, blob);
    },
    locate(folder, commit, path) {
      return snapshotKey(folder, commit, path);
    },
    async read(folder, commit, path) {
      const hit = await (await cache()).match(snapshotKey(folder, commit, path));
      return hit ? hit.blob() : null;
    },
    async refs() {
      const found: CachedRef[] = [];
      for (const request of await (await cache()).keys()) {
        if (!request.url.startsWith(base)) continue;
        const match = /^([^/]+)\/refs\/([^/?]+)$/.exec(request.url.slice(base.length));
        if (!match) continue;
        const folder = decodeURIComponent(match[1]);
        const revision = decodeURIComponent(match[2]);
        const hit = await (await cache()).match(request.url);
        const commit = hit ? (await hit.text()).trim() : '';
        if (commit) found.push({ folder, revision, commit });
      }
      return found.sort((a, b) => a.folder.localeCompare(b.folder) || a.revision.localeCompare(b.revision));
    },
  };
}

/**
 * Cache Storage kept in memory: for pages without `caches` (an insecure origin, where nothing
 * survives a reload anyway) and for tests. Entries keep their bytes and headers as Cache does.
 */
export function memoryCacheStorage(): CacheStorageLike {
  const buckets = new Map<string, CacheLike>();
  const bucket = (): CacheLike => {
    const entries = new Map<string, { body: Blob; headers: [string, string][] }>();
    const withoutSearch = (url: string) => url.split('?')[0];
    const matching = (request: string, options?: CacheQuery) =>
      [...entries.keys()].filter((key) =>
        options?.ignoreSearch ? withoutSearch(key) === withoutSearch(request) : key === request,
      );
    return {
      async match(request, options) {
        const key = matching(request, options)[0];
        const entry = key === undefined ? undefined : entries.get(key);
        return entry ? new Response(entry.body, { headers: entry.headers }) : undefined;
      },
      async put(request, response) {
        const body = await response.blob();
        const headers: [string, string][] = [];
        response.headers.forEach((value, name) => {
          headers.push([name, value]);
        });
        entries.set(request, { body, headers });
      },
      async delete(request, options) {
        const keys = matching(request, options);
        for (const key of keys) entries.delete(key);
        return keys.length > 0;
      },
      async keys(request, options) {
        const keys = request === undefined ? [...entries.keys()] : matching(request, options);
        return keys.map((url) => ({ url }));
      },
    };
  };
  return {
    async open(name) {
      let found = buckets.get(name);
      if (!found) {
        found = bucket();
        buckets.set(name, found);
      }
      return found;
    },
  };
}

/**
 * @webtune/hub: downloads models and datasets from the Hugging Face hub (or a mirror with its URL
 * layout) with `fetch` only, so the same code runs in Node and browsers. Where files are kept is the
 * platform's part (`HubCache`): `@webtune/hub/node` keeps Hugging Face's cache layout on disk,
 * `cacheStorageHubCache` keeps the same keys in a browser's Cache Storage.
 */

export {
  type BrowserHubCache,
  type CachedRef,
  type CacheLike,
  type CacheQuery,
  type CacheStorageHubCacheOptions,
  type CacheStorageLike,
  cacheStorageHubCache,
  DEFAULT_HUB_BUCKET,
  memoryCacheStorage,
} from './cache-storage-cache.js';
export {
  type DownloadOptions,
  downloadSnapshot,
  type FileProgress,
  fetchRevision,
  type RepoFile,
  type RepoRevision,
  type Snapshot,
} from './download.js';
export type { HubCache } from './hub-cache.js';
export { HubError, responseError } from './hub-error.js';
export {
  DEFAULT_ENDPOINT,
  flagIsOn,
  type HubSettings,
  hubCacheFolderFrom,
  hubSettingsFrom,
} from './hub-settings.js';
export {
  checkRepoId,
  isCommitHash,
  type RepoType,
  repoFolderName,
  resolveUrl,
  revisionInfoUrl,
} from './hub-urls.js';
export { type DatasetSelection, selectDatasetFiles, selectModelFiles } from './select-files.js';

/**
 * Node side of @webtune/hub: the Hugging Face cache on disk and downloads configured from the
 * environment (HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE, HF_HUB_CACHE, HF_HOME). Not for browsers.
 */
import { homedir } from 'node:os';
import { type DownloadOptions, downloadSnapshot, type Snapshot } from './download.js';
import type { HubCache } from './hub-cache.js';
import { type HubSettings, hubCacheFolderFrom, hubSettingsFrom } from './hub-settings.js';
import { diskHubCache } from './node/disk-cache.js';
import { type DatasetSelection, selectDatasetFiles, selectModelFiles } from './select-files.js';

export { diskHubCache } from './node/disk-cache.js';

/** Settings and cache of a Node process, overridable one by one. */
export interface NodeHubOptions extends Omit<DownloadOptions, 'type' | 'select'> {
  settings?: Partial<HubSettings>;
  /** Cache folder (default HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub). */
  cacheFolder?: string;
  cache?: HubCache;
}

/** The cache folder this process uses (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub). */
export function defaultHubCacheFolder(): string {
  return hubCacheFolderFrom(process.env, homedir());
}

function context(options: NodeHubOptions) {
  const settings = { ...hubSettingsFrom(process.env), ...options.settings };
  const cache = options.cache ?? diskHubCache(options.cacheFolder ?? defaultHubCacheFolder());
  return { settings, cache };
}

/** A dataset's files on disk, downloaded as needed; `files` are absolute paths, sorted. */
export interface DatasetDownload extends Snapshot {
  paths: string[];
}

/** Downloads the data files of a hub dataset for a subset, split and folder (LLaMA-Factory's hf_hub_url). */
export async function downloadDataset(
  repo: string,
  selection: DatasetSelection,
  options: NodeHubOptions = {},
): Promise<DatasetDownload> {
  const { settings, cache } = context(options);
  const snapshot = await downloadSnapshot(repo, cache, settings, {
    ...options,
    type: 'dataset',
    select: (paths) => selectDatasetFiles(paths, selection, `dataset ${repo}`),
  });
  return {
    ...snapshot,
    paths: snapshot.files.map((path) => cache.locate(snapshot.folder, snapshot.commit, path)),
  };
}

/** Downloads a model's config, tokenizer and safetensors weights; returns the snapshot folder. */
export async function downloadModelSnapshot(repo: string, options: NodeHubOptions = {}): Promise<string> {
  const { settings, cache } = context(options);
  const snapshot = await downloadSnapshot(repo, cache, settings, {
    ...options,
    type: 'model',
    select: (paths) => selectModelFiles(paths, `model ${repo}`),
  });
  return cache.locate(snapshot.folder, snapshot.commit, '');
}

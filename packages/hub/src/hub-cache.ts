/**
 * Where downloads are kept: the platform part of the downloader. Node keeps Hugging Face's cache layout
 * on disk (`<cache>/datasets--owner--name/{blobs,snapshots,refs}`, see `@webtune/hub/node`), so
 * Python tools and webtune share one cache; a browser can keep the same keys in OPFS or Cache Storage.
 * `folder` is the repository's folder name (`models--owner--name`), `blob` a file's blob id.
 */
export interface HubCache {
  /** The commit a branch or tag last resolved to (`refs/<revision>`), or null. */
  readRef(folder: string, revision: string): Promise<string | null>;
  writeRef(folder: string, revision: string, commit: string): Promise<void>;
  /** Files of a snapshot (paths inside the repository), or null when the snapshot is not there. */
  listSnapshot(folder: string, commit: string): Promise<string[] | null>;
  /** Whether a complete file is in the snapshot. */
  hasSnapshotFile(folder: string, commit: string, path: string): Promise<boolean>;
  /** Bytes of a blob downloaded so far (0 when none), for resuming. */
  partialSize(folder: string, blob: string): Promise<number>;
  /** Appends bytes to a partial blob (starting it over first when `restart`). */
  writePartial(
    folder: string,
    blob: string,
    chunks: AsyncIterable<Uint8Array>,
    restart: boolean,
  ): Promise<number>;
  /** Makes a partial blob complete and links it into the snapshot at `path`. */
  commitFile(folder: string, blob: string, commit: string, path: string): Promise<void>;
  /** Where a snapshot file can be read by the platform (a path on disk in Node). */
  locate(folder: string, commit: string, path: string): string;
}

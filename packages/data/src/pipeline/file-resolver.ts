/** How the loader reaches dataset files: by path on disk (see `@webtune/data/node`) or from in-memory files. */
import type { ByteSource } from '../readers/bytes.js';

/** Opens dataset files named relative to the dataset folder. */
export interface FileResolver {
  /** A byte source for a file. Should throw (or reject) when the file does not exist. */
  open(path: string): Promise<ByteSource> | ByteSource;
  /** The files inside `path` when it is a folder (paths relative to the dataset folder), else `undefined`. */
  list?(path: string): Promise<string[] | undefined> | string[] | undefined;
}

/**
 * A resolver over files held in memory: browser `File`s from an `<input type="file">`, `Blob`s, bytes or
 * strings, keyed by file name (or relative path). Folders are the keys under `name/`.
 */
export function memoryFileResolver(
  files: Record<string, Blob | Uint8Array | ArrayBuffer | string>,
): FileResolver {
  return {
    open(path) {
      const file = files[path];
      if (file === undefined) throw new Error(`no file named ${path}`);
      return typeof file === 'string' ? new TextEncoder().encode(file) : file;
    },
    list(path) {
      if (path in files) return undefined;
      const prefix = path.endsWith('/') ? path : `${path}/`;
      const inside = Object.keys(files)
        .filter((name) => name.startsWith(prefix))
        .sort();
      return inside.length > 0 ? inside : undefined;
    },
  };
}

/**
 * Where a run writes its output folder (checkpoints, trainer_log.jsonl). Paths are relative to the
 * output folder and use '/'. Node uses the file system (`directoryStorage` in @webtune/train/node);
 * a browser app implements the same methods over OPFS (FileSystemDirectoryHandle, with `move()`
 * for rename); `memoryStorage()` keeps everything in memory.
 */
export interface TrainingStorage {
  /** Where the folder is (a path on disk), for messages. */
  readonly location?: string;
  /** Writes a whole file, creating missing folders; durable when the promise settles. */
  writeFile(path: string, contents: Uint8Array | string): Promise<void>;
  readFile(path: string): Promise<Uint8Array>;
  /** Appends text to a file, creating it when missing. */
  appendText(path: string, text: string): Promise<void>;
  /** Names directly inside a folder; [] when it does not exist. */
  list(path: string): Promise<string[]>;
  exists(path: string): Promise<boolean>;
  /**
   * Moves a file or folder; the target must not exist. Must be atomic (a crash leaves either the
   * old name or the new one): checkpoints rely on it.
   */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file or a folder with everything in it; nothing when it does not exist. */
  remove(path: string): Promise<void>;
}

/** A TrainingStorage in memory (tests, or a browser session that keeps nothing). */
export function memoryStorage(): TrainingStorage & { files: Map<string, Uint8Array> } {
  const files = new Map<string, Uint8Array>();
  const encoder = new TextEncoder();
  const normalize = (path: string) => path.replace(/^\/+|\/+$/g, '');
  const under = (path: string) => (path === '' ? '' : `${normalize(path)}/`);
  return {
    files,
    async writeFile(path, contents) {
      files.set(normalize(path), typeof contents === 'string' ? encoder.encode(contents) : contents.slice());
    },
    async readFile(path) {
      const data = files.get(normalize(path));
      if (!data) throw new Error(`no file ${path}`);
      return data;
    },
    async appendText(path, text) {
      const previous = files.get(normalize(path)) ?? new Uint8Array();
      const added = encoder.encode(text);
      const joined = new Uint8Array(previous.length + added.length);
      joined.set(previous);
      joined.set(added, previous.length);
      files.set(normalize(path), joined);
    },
    async list(path) {
      const prefix = under(path);
      const names = new Set<string>();
      for (const key of files.keys()) {
        if (key.startsWith(prefix)) names.add(key.slice(prefix.length).split('/')[0]);
      }
      return [...names].sort();
    },
    async exists(path) {
      const key = normalize(path);
      if (files.has(key)) return true;
      const prefix = under(key);
      for (const name of files.keys()) if (name.startsWith(prefix)) return true;
      return false;
    },
    async rename(from, to) {
      const source = normalize(from);
      const target = normalize(to);
      if (await this.exists(target)) throw new Error(`rename: ${to} exists`);
      for (const [key, value] of [...files]) {
        if (key === source || key.startsWith(`${source}/`)) {
          files.delete(key);
          files.set(target + key.slice(source.length), value);
        }
      }
    },
    async remove(path) {
      const key = normalize(path);
      for (const name of [...files.keys()])
        if (name === key || name.startsWith(`${key}/`)) files.delete(name);
    },
  };
}

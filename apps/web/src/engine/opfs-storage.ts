import { listCheckpoints, type TrainingStorage } from '@webtune/train';

/*
 * The trainer's output folder in the origin-private file system (OPFS), so a closed or crashed tab
 * resumes from its last checkpoint. Checkpoints are made by writing a temporary folder and renaming
 * it, which must be atomic; OPFS can move a file but not a folder. So the run's files are stored
 * as numbered blobs, and a manifest maps each path to its blob: renaming a folder rewrites the
 * manifest, and a manifest written with createWritable() replaces the old one atomically when the
 * stream closes (the browser writes a swap file first). Blobs no manifest names (a crash between
 * a blob and its manifest) are removed when the run is opened again.
 *
 * Each run is opened once per realm (the engine's worker): the trainer, the Train tab's run state
 * and a resume share one manifest and one queue of operations. Two instances would each hold their
 * own manifest, and the second one's garbage collection would remove the blob the first had just
 * written but not yet named in its manifest (a checkpoint saved while the tab read the run's state
 * then failed to resume with NotFoundError). Another tab opening the same run is not guarded.
 */

const RUNS_FOLDER = 'webtune-runs';
const MANIFEST = 'manifest.json';

interface Manifest {
  format: 'webtune-opfs-run';
  version: 1;
  next: number;
  files: Record<string, string>;
}

/** Names of the runs kept in this origin's OPFS. */
export async function listRuns(): Promise<string[]> {
  const runs = await runsFolder();
  const names: string[] = [];
  for await (const [name, handle] of entriesOf(runs)) if (handle.kind === 'directory') names.push(name);
  return names.sort();
}

/** The complete checkpoints of a run, oldest first; [] when the run does not exist. */
export async function listCheckpointsOf(runName: string): Promise<string[]> {
  if (!(await listRuns()).includes(runName)) return [];
  return listCheckpoints(await opfsStorage(runName));
}

/** Removes a run and all its checkpoints, after the operations already queued on it. */
export async function removeRun(runName: string): Promise<void> {
  const name = checkRunName(runName);
  const open = openRuns.get(name);
  if (open) {
    openRuns.delete(name);
    await (await open).closed();
  }
  const runs = await runsFolder();
  await runs.removeEntry(name, { recursive: true }).catch(() => undefined);
}

interface OpenRun {
  storage: TrainingStorage;
  /** Waits for the queued operations, then refuses new ones. */
  closed(): Promise<void>;
}

const openRuns = new Map<string, Promise<OpenRun>>();

/**
 * The OPFS folder of a run (created when missing) as the trainer's storage; every call for the
 * same run in this realm returns the same storage.
 */
export async function opfsStorage(runName: string): Promise<TrainingStorage> {
  const name = checkRunName(runName);
  let open = openRuns.get(name);
  if (!open) {
    open = openRun(name);
    openRuns.set(name, open);
    open.catch(() => {
      if (openRuns.get(name) === open) openRuns.delete(name);
    });
  }
  return (await open).storage;
}

async function openRun(runName: string): Promise<OpenRun> {
  const runs = await runsFolder();
  const folder = await runs.getDirectoryHandle(checkRunName(runName), { create: true });
  const blobs = await folder.getDirectoryHandle('blobs', { create: true });
  const manifest = await readManifest(folder);
  await collectGarbage(blobs, manifest);

  const encoder = new TextEncoder();
  const normalize = (path: string) => path.replace(/^\/+|\/+$/g, '');
  const under = (path: string) => (path === '' ? '' : `${normalize(path)}/`);
  const keysUnder = (path: string) => {
    const key = normalize(path);
    return Object.keys(manifest.files).filter((name) => name === key || name.startsWith(`${key}/`));
  };
  // One operation at a time: each reads and rewrites the manifest.
  let queue: Promise<unknown> = Promise.resolve();
  let isClosed = false;
  const serial = <T>(body: () => Promise<T>): Promise<T> => {
    const operation = () => {
      if (isClosed) throw new Error(`run ${runName} was removed`);
      return body();
    };
    const next = queue.then(operation, operation);
    queue = next.catch(() => undefined);
    return next;
  };
  const writeBlob = async (contents: Uint8Array | string): Promise<string> => {
    const name = `b${manifest.next++}`;
    const handle = await blobs.getFileHandle(name, { create: true });
    const stream = await handle.createWritable();
    await stream.write(
      typeof contents === 'string' ? encoder.encode(contents) : (contents as Uint8Array<ArrayBuffer>),
    );
    await stream.close();
    return name;
  };
  const removeBlobs = async (names: string[]) => {
    for (const name of names) await blobs.removeEntry(name).catch(() => undefined);
  };

  const storage: TrainingStorage = {
    writeFile: (path, contents) =>
      serial(async () => {
        const key = normalize(path);
        const blob = await writeBlob(contents);
        const previous = manifest.files[key];
        manifest.files[key] = blob;
        await writeManifest(folder, manifest);
        if (previous) await removeBlobs([previous]);
      }),
    readFile: (path) =>
      serial(async () => {
        const blob = manifest.files[normalize(path)];
        if (!blob) throw new Error(`no file ${path} in run ${runName}`);
        const file = await (await blobs.getFileHandle(blob)).getFile();
        return new Uint8Array(await file.arrayBuffer());
      }),
    appendText: (path, text) =>
      serial(async () => {
        const key = normalize(path);
        const blob = manifest.files[key];
        if (!blob) {
          manifest.files[key] = await writeBlob(text);
          await writeManifest(folder, manifest);
          return;
        }
        const handle = await blobs.getFileHandle(blob);
        const size = (await handle.getFile()).size;
        const stream = await handle.createWritable({ keepExistingData: true });
        await stream.seek(size);
        await stream.write(encoder.encode(text));
        await stream.close();
      }),
    list: (path) =>
      serial(async () => {
        const prefix = under(path);
        const names = new Set<string>();
        for (const key of Object.keys(manifest.files)) {
          if (key.startsWith(prefix)) names.add(key.slice(prefix.length).split('/')[0]);
        }
        return [...names].sort();
      }),
    exists: (path) => serial(async () => keysUnder(path).length > 0),
    rename: (from, to) =>
      serial(async () => {
        const source = normalize(from);
        const target = normalize(to);
        if (keysUnder(target).length > 0) throw new Error(`rename: ${to} exists`);
        const moved = keysUnder(source);
        if (moved.length === 0) throw new Error(`rename: no ${from}`);
        for (const key of moved) {
          manifest.files[target + key.slice(source.length)] = manifest.files[key];
          delete manifest.files[key];
        }
        await writeManifest(folder, manifest);
      }),
    remove: (path) =>
      serial(async () => {
        const removed = keysUnder(path);
        if (removed.length === 0) return;
        const names = removed.map((key) => manifest.files[key]);
        for (const key of removed) delete manifest.files[key];
        await writeManifest(folder, manifest);
        await removeBlobs(names);
      }),
  };
  return {
    storage,
    closed: () =>
      serial(async () => {
        isClosed = true;
      }),
  };
}

async function runsFolder(): Promise<FileSystemDirectoryHandle> {
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle(RUNS_FOLDER, { create: true });
}

function checkRunName(name: string): string {
  if (!/^[A-Za-z0-9._-]{1,80}$/.test(name) || name.startsWith('.')) {
    throw new Error(
      `run name "${name}" must be 1-80 letters, digits, ".", "_" or "-" (not starting with ".")`,
    );
  }
  return name;
}

async function readManifest(folder: FileSystemDirectoryHandle): Promise<Manifest> {
  try {
    const file = await (await folder.getFileHandle(MANIFEST)).getFile();
    const text = await file.text();
    // Created but never closed (the tab died during the first save): no blob is named yet.
    if (text === '') return { format: 'webtune-opfs-run', version: 1, next: 0, files: {} };
    const json = JSON.parse(text) as Manifest;
    if (json.format === 'webtune-opfs-run' && json.version === 1) return json;
    throw new Error(`${MANIFEST} of an unknown format`);
  } catch (error) {
    if ((error as DOMException).name === 'NotFoundError') {
      return { format: 'webtune-opfs-run', version: 1, next: 0, files: {} };
    }
    throw error;
  }
}

async function writeManifest(folder: FileSystemDirectoryHandle, manifest: Manifest): Promise<void> {
  const handle = await folder.getFileHandle(MANIFEST, { create: true });
  const stream = await handle.createWritable();
  await stream.write(JSON.stringify(manifest));
  await stream.close();
}

async function collectGarbage(blobs: FileSystemDirectoryHandle, manifest: Manifest): Promise<void> {
  const used = new Set(Object.values(manifest.files));
  const unused: string[] = [];
  for await (const [name] of entriesOf(blobs)) if (!used.has(name)) unused.push(name);
  for (const name of unused) await blobs.removeEntry(name).catch(() => undefined);
}

function entriesOf(folder: FileSystemDirectoryHandle): AsyncIterable<[string, FileSystemHandle]> {
  return (folder as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries();
}

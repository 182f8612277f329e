/**
 * Hugging Face's cache layout on disk, as huggingface_hub writes it, so that Python tools and webtune
 * share downloads: `<cache>/<type>s--owner--name/blobs/<blob id>` holds each file once,
 * `snapshots/<commit>/<path>` links to it (a relative symlink; a copy where links are not allowed),
 * `refs/<branch>` holds the commit a branch resolved to. Partial downloads are `blobs/<blob>.incomplete`.
 */
import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { HubCache } from '../hub-cache.js';

async function sizeOf(path: string): Promise<number | null> {
  return stat(path).then(
    (info) => (info.isFile() ? info.size : null),
    () => null,
  );
}

/** A HubCache on disk under `root` (e.g. ~/.cache/huggingface/hub). */
export function diskHubCache(root: string): HubCache {
  const blobPath = (folder: string, blob: string) => join(root, folder, 'blobs', blob);
  const snapshotPath = (folder: string, commit: string, path: string) =>
    join(root, folder, 'snapshots', commit, ...path.split('/').filter((part) => part !== ''));
  return {
    async readRef(folder, revision) {
      const text = await readFile(join(root, folder, 'refs', revision), 'utf8').catch(() => null);
      return text?.trim() || null;
    },
    async writeRef(folder, revision, commit) {
      const path = join(root, folder, 'refs', revision);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, commit);
    },
    async listSnapshot(folder, commit) {
      const base = snapshotPath(folder, commit, '');
      if ((await stat(base).catch(() => null))?.isDirectory() !== true) return null;
      const files: string[] = [];
      const walk = async (directory: string) => {
        for (const entry of await readdir(directory, { withFileTypes: true })) {
          const child = join(directory, entry.name);
          if (entry.isDirectory()) await walk(child);
          else if ((await sizeOf(child)) !== null) files.push(relative(base, child).split(sep).join('/'));
        }
      };
      await walk(base);
      return files.sort();
    },
    async hasSnapshotFile(folder, commit, path) {
      return (await sizeOf(snapshotPath(folder, commit, path))) !== null;
    },
    async partialSize(folder, blob) {
      return (await sizeOf(`${blobPath(folder, blob)}.incomplete`)) ?? 0;
    },
    async writePartial(folder, blob, chunks, restart) {
      const partial = `${blobPath(folder, blob)}.incomplete`;
      await mkdir(dirname(partial), { recursive: true });
      await pipeline(chunks, createWriteStream(partial, { flags: restart ? 'w' : 'a' }));
      return (await sizeOf(partial)) ?? 0;
    },
    async commitFile(folder, blob, commit, path) {
      const complete = blobPath(folder, blob);
      const partial = `${complete}.incomplete`;
      if ((await sizeOf(partial)) !== null) await rename(partial, complete);
      const link = snapshotPath(folder, commit, path);
      await mkdir(dirname(link), { recursive: true });
      await rm(link, { force: true });
      try {
        await symlink(relative(dirname(link), complete), link);
      } catch {
        // No symlinks (Windows without developer mode): a copy, as huggingface_hub does there.
        await copyFile(complete, link);
      }
    },
    locate(folder, commit, path) {
      return snapshotPath(folder, commit, path);
    },
  };
}

// Node-only parts of @webtune/train: the output folder on disk.
import { appendFile, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { CheckpointError } from './checkpoint/checkpoint-error.js';
import type { TrainingStorage } from './checkpoint/training-storage.js';

/**
 * resume_from_checkpoint as TrainingArguments takes it: true, null, or a folder inside the
 * output folder. A path (`saves/run/checkpoint-30`, relative to the working folder, or absolute)
 * becomes its name inside `outputDir`; a folder elsewhere is a CheckpointError.
 */
export function resumeRequestFor(outputDir: string, value: unknown): true | string | null {
  if (value === true || value === 'true' || value === 'True') return true;
  if (value === null || value === undefined || value === false || value === '' || value === 'false')
    return null;
  const text = String(value);
  if (!text.includes('/') && !text.includes('\\')) return text;
  const root = resolve(outputDir);
  const inside = relative(root, resolve(text));
  if (inside === '' || inside.startsWith('..') || isAbsolute(inside)) {
    throw new CheckpointError(
      `resume_from_checkpoint: "${text}" is not inside output_dir ${root}; a run resumes from a checkpoint in its own output_dir`,
      'not-found',
    );
  }
  return inside.split('\\').join('/');
}

/**
 * A TrainingStorage over a folder on disk (LLaMA-Factory's output_dir). Files are written and
 * fsynced before the promise settles, and renames are the file system's (atomic within one
 * folder), so checkpoints survive a crash at any moment.
 */
export function directoryStorage(outputDir: string): TrainingStorage {
  const root = resolve(outputDir);
  const full = (path: string) => {
    const target = resolve(root, path);
    if (target !== root && !target.startsWith(root + '/') && !target.startsWith(root + '\\')) {
      throw new Error(`directoryStorage: ${path} is outside ${root}`);
    }
    return target;
  };
  return {
    location: root,
    async writeFile(path, contents) {
      const target = full(path);
      try {
        await mkdir(dirname(target), { recursive: true });
        const handle = await open(target, 'w');
        try {
          await handle.writeFile(contents);
          await handle.sync();
        } finally {
          await handle.close();
        }
      } catch (error) {
        throw diskError(error, target);
      }
    },
    async readFile(path) {
      return new Uint8Array(await readFile(full(path)));
    },
    async appendText(path, text) {
      const target = full(path);
      try {
        await mkdir(dirname(target), { recursive: true });
        await appendFile(target, text);
      } catch (error) {
        throw diskError(error, target);
      }
    },
    async list(path) {
      try {
        return (await readdir(full(path))).sort();
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw error;
      }
    },
    async exists(path) {
      try {
        await stat(full(path));
        return true;
      } catch {
        return false;
      }
    },
    async rename(from, to) {
      const target = full(to);
      try {
        await stat(target);
        throw new Error(`rename: ${to} exists`);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
      await rename(full(from), target);
      // Make the rename itself durable.
      await syncDirectory(dirname(target));
    },
    async remove(path) {
      await rm(full(path), { recursive: true, force: true });
    },
  };
}

/**
 * A full disk (or quota) named with the file and what to do: Node's own message for a failed
 * write ("ENOSPC: no space left on device, write") names neither. Other errors pass unchanged.
 */
function diskError(error: unknown, target: string): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return error;
  const failure = new Error(
    `no space left on the device writing ${target} (${code}); the checkpoints saved before are complete: free some space, then resume with resume_from_checkpoint: true`,
  );
  (failure as NodeJS.ErrnoException).code = code;
  return failure;
}

async function syncDirectory(path: string): Promise<void> {
  try {
    const handle = await open(path, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Some platforms cannot fsync a folder; the rename is still atomic.
  }
}

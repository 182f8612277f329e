/** Test helper: a temporary folder, made before a file's tests and removed after them, holding a LoRA adapter. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { makeAdapter } from './make-adapter.js';

export interface AdapterFolder {
  /** The temporary folder (set once the tests start). */
  readonly folder: string;
  /** `<folder>/adapter`: a PEFT LoRA adapter for the model, written by `makeAdapter`. */
  readonly adapter: string;
}

/** Registers the hooks that make the folder and the adapter for `modelDir` (beforeAll) and remove them (afterAll). */
export function adapterFolder(modelDir: string, prefix: string): AdapterFolder {
  const paths = { folder: '', adapter: '' };
  beforeAll(async () => {
    paths.folder = mkdtempSync(join(tmpdir(), prefix));
    paths.adapter = join(paths.folder, 'adapter');
    await makeAdapter(modelDir, paths.adapter);
  });
  afterAll(() => rmSync(paths.folder, { recursive: true, force: true }));
  return paths;
}

/* The OPFS storage of the board's runs, in Node on an in-memory OPFS that interleaves like a browser's. */

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fakeNavigator, fakeOpfs, fileNames } from './fake-opfs.js';

type Module = typeof import('../src/engine/opfs-storage.js');

/** The module as a freshly opened tab's worker sees it: nothing open yet. */
async function freshRealm(): Promise<Module> {
  vi.resetModules();
  return import('../src/engine/opfs-storage.js');
}

const bytes = (length: number, seed: number) => new Uint8Array(length).map((_, i) => (i * 31 + seed) % 251);

describe('OPFS run storage', () => {
  let root: ReturnType<typeof fakeOpfs>;
  beforeEach(() => {
    root = fakeOpfs();
    vi.stubGlobal('navigator', fakeNavigator(root));
  });
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it('keeps files, appends, renames and removals across a reopened tab, and drops orphan blobs', async () => {
    const first = await freshRealm();
    const storage = await first.opfsStorage('run-1');
    await storage.writeFile('.tmp-5/adapter_model.safetensors', bytes(1000, 1));
    await storage.writeFile('.tmp-5/trainer_state.json', '{"global_step":5}');
    await storage.rename('.tmp-5', 'checkpoint-5');
    await storage.appendText('trainer_log.jsonl', '{"step":1}\n');
    await storage.appendText('trainer_log.jsonl', '{"step":2}\n');
    await storage.writeFile('old.txt', 'x');
    await storage.remove('old.txt');
    expect(await storage.list('')).toEqual(['checkpoint-5', 'trainer_log.jsonl']);
    expect(await first.listCheckpointsOf('run-1')).toEqual(['checkpoint-5']);

    // A crash between a blob and its manifest leaves a blob nothing names.
    const blobs = await (
      await (await root.getDirectoryHandle('webtune-runs')).getDirectoryHandle('run-1')
    ).getDirectoryHandle('blobs');
    await blobs.getFileHandle('b999', { create: true });

    const second = await freshRealm();
    const again = await second.opfsStorage('run-1');
    expect(await again.readFile('checkpoint-5/adapter_model.safetensors')).toEqual(bytes(1000, 1));
    expect(new TextDecoder().decode(await again.readFile('trainer_log.jsonl'))).toBe(
      '{"step":1}\n{"step":2}\n',
    );
    expect(await again.exists('old.txt')).toBe(false);
    // Three blobs: two checkpoint files and the log; the orphan and the removed file are gone.
    expect(fileNames(root).filter((name) => name.includes('/blobs/'))).toHaveLength(3);
    await expect(again.readFile('missing.bin')).rejects.toThrow(/no file missing.bin in run run-1/);
    // A manifest created but never written (the tab closed during the first save) opens empty.
    const runs = await root.getDirectoryHandle('webtune-runs');
    await (await runs.getDirectoryHandle('run-0', { create: true })).getFileHandle('manifest.json', {
      create: true,
    });
    expect(await (await second.opfsStorage('run-0')).list('')).toEqual([]);
    await expect(second.opfsStorage('../x')).rejects.toThrow(/run name "..\/x" must be/);
  });

  it('shares one storage per run, so reading the run while a checkpoint is written loses nothing', async () => {
    const engine = await freshRealm();
    const trainer = await engine.opfsStorage('run-2');
    const weights = bytes(4096, 7);
    // The trainer saves a checkpoint while the Train tab asks for the run's checkpoints and
    // state (each of which opens the run), as a pause followed by Resume does.
    const saving = (async () => {
      await trainer.writeFile('.tmp-5/adapter_model.safetensors', weights);
      await trainer.writeFile('.tmp-5/trainer_state.json', '{}');
      await trainer.rename('.tmp-5', 'checkpoint-5');
    })();
    const reading = Promise.all([engine.listCheckpointsOf('run-2'), engine.opfsStorage('run-2')]);
    const [, [, reader]] = await Promise.all([saving, reading]);
    expect(reader).toBe(trainer);
    expect(await engine.listCheckpointsOf('run-2')).toEqual(['checkpoint-5']);
    expect(await reader.readFile('checkpoint-5/adapter_model.safetensors')).toEqual(weights);
    // And from a reopened tab, which collects garbage against the manifest on disk.
    const reopened = await (await freshRealm()).opfsStorage('run-2');
    expect(await reopened.readFile('checkpoint-5/adapter_model.safetensors')).toEqual(weights);
  });

  it('removes a run after the writes already queued on it, and a later open starts empty', async () => {
    const engine = await freshRealm();
    const storage = await engine.opfsStorage('run-3');
    const pending = storage.writeFile('a.bin', bytes(100, 3));
    await engine.removeRun('run-3');
    await pending;
    expect(await engine.listRuns()).toEqual([]);
    await expect(storage.readFile('a.bin')).rejects.toThrow(/run run-3 was removed/);
    const fresh = await engine.opfsStorage('run-3');
    expect(fresh).not.toBe(storage);
    expect(await fresh.list('')).toEqual([]);
    expect(await engine.listRuns()).toEqual(['run-3']);
  });
});

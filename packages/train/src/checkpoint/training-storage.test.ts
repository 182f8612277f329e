import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { directoryStorage, resumeRequestFor } from '../node.js';
import { memoryStorage, type TrainingStorage } from './training-storage.js';

const folder = mkdtempSync(join(tmpdir(), 'webtune-storage-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

describe.each([
  ['memory', () => memoryStorage()],
  ['directory', () => directoryStorage(join(folder, 'out'))],
] as [string, () => TrainingStorage][])('%s storage', (_, make) => {
  it('writes, appends, lists, renames folders and removes them', async () => {
    const storage = make();
    const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    expect(await storage.list('')).toEqual([]);
    await storage.writeFile('.tmp-a/x.bin', new Uint8Array([1, 2, 3]));
    await storage.writeFile('.tmp-a/state.json', '{}');
    await storage.appendText('log.jsonl', 'one\n');
    await storage.appendText('log.jsonl', 'two\n');
    expect(text(await storage.readFile('log.jsonl'))).toBe('one\ntwo\n');
    expect(await storage.list('')).toEqual(['.tmp-a', 'log.jsonl']);
    await storage.rename('.tmp-a', 'checkpoint-1');
    expect(await storage.exists('.tmp-a')).toBe(false);
    expect(Array.from(await storage.readFile('checkpoint-1/x.bin'))).toEqual([1, 2, 3]);
    expect(await storage.list('checkpoint-1')).toEqual(['state.json', 'x.bin']);
    await storage.writeFile('other/y', 'y');
    await expect(storage.rename('other', 'checkpoint-1')).rejects.toThrow(/exists/);
    await storage.remove('checkpoint-1');
    expect(await storage.exists('checkpoint-1')).toBe(false);
    await storage.remove('never-there');
  });
});

describe('directory storage', () => {
  it('refuses paths outside its folder', async () => {
    const storage = directoryStorage(join(folder, 'fenced'));
    await expect(storage.writeFile('../escape.txt', 'x')).rejects.toThrow(/outside/);
  });
});

describe.skipIf(!existsSync('/dev/full'))('directory storage on a full disk (issue 19)', () => {
  it('names the file and says how to resume', async () => {
    const out = join(folder, 'full');
    mkdirSync(join(out, 'checkpoint-2'), { recursive: true });
    symlinkSync('/dev/full', join(out, 'trainer_log.jsonl'));
    symlinkSync('/dev/full', join(out, 'checkpoint-2', 'state.json'));
    const storage = directoryStorage(out);
    for (const write of [
      () => storage.appendText('trainer_log.jsonl', 'row\n'),
      () => storage.writeFile('checkpoint-2/state.json', '{}'),
    ]) {
      await expect(write()).rejects.toThrow(
        /^no space left on the device writing .*\/full\/(trainer_log\.jsonl|checkpoint-2\/state\.json) \(ENOSPC\); the checkpoints saved before are complete: free some space, then resume with resume_from_checkpoint: true$/,
      );
    }
  });
});

describe('resumeRequestFor', () => {
  it('maps resume_from_checkpoint to a folder inside the output folder', () => {
    const out = join(folder, 'run');
    expect(resumeRequestFor(out, true)).toBe(true);
    expect(resumeRequestFor(out, 'true')).toBe(true);
    expect(resumeRequestFor(out, null)).toBe(null);
    expect(resumeRequestFor(out, false)).toBe(null);
    expect(resumeRequestFor(out, 'checkpoint-30')).toBe('checkpoint-30');
    expect(resumeRequestFor(out, join(out, 'checkpoint-30'))).toBe('checkpoint-30');
    expect(() => resumeRequestFor(out, join(folder, 'other', 'checkpoint-30'))).toThrow(
      /is not inside output_dir/,
    );
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorLines, trainExample, trainerLog } from '../testing/run-cli.js';

const STORIES = 'models/stories260K-hf';

describe.skipIf(!requireFixtures(STORIES))('webtune train: SFT packing and neat_packing', () => {
  let folder: string;
  beforeAll(() => {
    folder = mkdtempSync(join(tmpdir(), 'webtune-cli-packing-'));
  });
  afterAll(() => rmSync(folder, { recursive: true, force: true }));

  it('packs the quickstart rows into cutoff_len - 1 tokens and trains, with and without neat_packing', async () => {
    const losses: number[] = [];
    for (const packing of ['packing', 'neat_packing']) {
      const out = join(folder, packing);
      const result = await trainExample(fixturePath(STORIES), out, {
        [packing]: 'true',
        do_predict: 'false',
        max_steps: '2',
        logging_steps: '1',
        per_device_train_batch_size: '2',
        gradient_accumulation_steps: '1',
        cutoff_len: '96',
      });
      expect(errorLines(result.stderr), packing).toEqual([]);
      expect(result.code, packing).toBe(0);
      const log = trainerLog(out);
      expect(log).toHaveLength(2);
      losses.push(log[0].loss as number);
    }
    // Same packs, same weights: only the attention across packed examples differs.
    expect(losses[0]).not.toBeCloseTo(losses[1], 4);
  });
});

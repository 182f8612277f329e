import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { describe, expect, it } from 'vitest';
import { errorLines, webtune } from '../testing/run-cli.js';

const STORIES = 'models/stories260K-hf';

describe.skipIf(!requireFixtures(STORIES))('webtune bench', () => {
  it('generate --json measures prefill and decode tokens/s of a model', async () => {
    const result = await webtune([
      'bench',
      'generate',
      '--model',
      fixturePath(STORIES),
      '--prompt-tokens',
      '16',
      '--new-tokens',
      '8',
      '--repeats',
      '1',
      '--json',
    ]);
    expect(result.code).toBe(0);
    const row = JSON.parse(result.stdout.trim());
    expect(row).toMatchObject({ name: 'generate', parameters: 260032, promptTokens: 16, newTokens: 8 });
    expect(row.prefillTokensPerSecond).toBeGreaterThan(0);
    expect(row.decodeTokensPerSecond).toBeGreaterThan(0);
  });

  it('kernels --json runs the tensors kernel benchmark and prints JSON rows only', async () => {
    const result = await webtune(['bench', 'kernels', '--json', '--quick', '--only', '^add f32$']);
    expect(result.code).toBe(0);
    const rows = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      expect(row.name).toBe('add f32');
      expect(row.ms).toBeGreaterThan(0);
    }
  });

  it('rejects an unknown benchmark in one line', async () => {
    const result = await webtune(['bench', 'everything']);
    expect(result.code).toBe(2);
    expect(errorLines(result.stderr)).toEqual([
      expect.stringMatching(/unknown benchmark "everything"; benchmarks: kernels, train, generate/),
    ]);
  });
});

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorLines, REPO_ROOT, webtune } from './testing/run-cli.js';

// The quickstart needs nothing but the repository: no fixtures, no network.
describe('examples/quickstart.yaml', () => {
  let folder: string;

  beforeAll(() => {
    folder = mkdtempSync(join(tmpdir(), 'webtune-quickstart-'));
  });
  afterAll(() => rmSync(folder, { recursive: true, force: true }));

  it('ships the files its generator writes', () => {
    const generated = join(folder, 'generated');
    execFileSync(process.execPath, [join(REPO_ROOT, 'examples/quickstart/generate.mjs'), generated]);
    for (const part of ['model', 'data']) {
      const names = readdirSync(join(generated, part)).sort();
      expect(readdirSync(join(REPO_ROOT, 'examples/quickstart', part)).sort()).toEqual(names);
      for (const name of names) {
        // Compared as JSON: the formatter may lay the committed copies out differently.
        const read = (folder: string) => JSON.parse(readFileSync(join(folder, part, name), 'utf8'));
        expect(read(join(REPO_ROOT, 'examples/quickstart')), `${part}/${name}`).toEqual(read(generated));
      }
    }
  });

  it('teaches a random tiny model the answers it could not give before, and says so', async () => {
    const out = join(folder, 'run');
    const result = await webtune(['train', 'examples/quickstart.yaml', '--output_dir', out]);
    expect(errorLines(result.stderr)).toEqual([]);
    expect(result.code).toBe(0);
    const summary = result.stdout.match(
      /answers matching eval_dataset: (\d+)\/24 \(\d+%\) before -> (\d+)\/24 \(\d+%\) after training/,
    );
    expect(summary).not.toBeNull();
    expect(Number(summary![1])).toBe(0);
    expect(Number(summary![2])).toBeGreaterThanOrEqual(22);
    const results = JSON.parse(readFileSync(join(out, 'all_results.json'), 'utf8'));
    expect(results.predict_exact_match).toBeGreaterThanOrEqual(22 / 24);
    expect(results.final_loss).toBeLessThan(0.2);
    // The adapter and the drawn base model are usable afterwards: the `try it` command the run
    // prints works as printed (no --max-new-tokens: the answer fits the model's 128 positions).
    const hint = /try it:\s+webtune (chat .*)$/m.exec(result.stdout);
    expect(hint?.[1]).toContain('--template default');
    const chat = await webtune(hint![1].trim().split(/\s+/), { input: 'What color is a zib?\n' });
    expect(errorLines(chat.stderr)).toEqual([]);
    expect(chat.code).toBe(0);
    expect(chat.stdout).toMatch(/^tuned> red$/m);
  });
});

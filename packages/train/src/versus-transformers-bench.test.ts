import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// bench/versus-transformers.mjs, the harness `pnpm bench` runs (docs/guide/benchmarks.md). It runs
// the built packages (dist/), which turbo builds before the tests. The baseline is made absent
// here (fast, and the same on every machine); its rows must still print, saying why.
const script = fileURLToPath(new URL('../bench/versus-transformers.mjs', import.meta.url));

function runBench(args: string[]) {
  return spawnSync(process.execPath, ['--expose-gc', script, ...args], {
    encoding: 'utf8',
    env: { ...process.env, WEBTUNE_PYTHON: '/nonexistent/python3' },
    timeout: 120_000,
  });
}

describe('the webtune versus Transformers + PEFT benchmark', () => {
  it('prints one JSON row per case on stdout, with null baseline and ratio and the reason when absent', () => {
    const run = runBench(['--only=^prefill stories260K$', '--repeats=1', '--warmup=0']);
    expect(run.status, run.stderr).toBe(0);
    const rows = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(rows.map((row) => [row.case, row.unit, row.better])).toEqual([
      ['prefill stories260K', 'tokens/s', 'higher'],
      ['prefill stories260K peak memory', 'bytes', 'lower'],
    ]);
    for (const row of rows) {
      expect(row.webtune).toBeGreaterThan(0);
      expect(row).toMatchObject({
        baseline: null,
        ratio: null,
        shape: 'stories260K',
        prompt: 128,
        dtype: 'f32',
      });
      expect(row.statistic).toBe('median of 1 after 0 warm-up');
      expect(row.baseline_absent).toMatch(/\/nonexistent\/python3: not found.*WEBTUNE_SETUP_TORCH=1/);
      expect(row.lp_num_threads).toBeTruthy();
    }
    expect(rows[1].webtune_device_peak_bytes).toBeGreaterThan(0);
    expect(run.stderr).toMatch(/baseline absent/);
  }, 120_000);

  it('refuses bad options with exit code 2', () => {
    expect(runBench(['--repeats=0']).status).toBe(2);
    const none = runBench(['--only=^nothing$']);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/no case matches/);
  });
});

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// bench/lora-sft.mjs as `webtune bench train --json` runs it (apps/cli/src/commands/bench.ts):
// WEBTUNE_BENCH_JSON=1 and --steps=N, keeping the stdout lines that start with "{". It runs the
// built package (dist/), which turbo builds before the tests.
const script = fileURLToPath(new URL('../bench/lora-sft.mjs', import.meta.url));

function runBench(args: string[], env: Record<string, string>) {
  return spawnSync(process.execPath, ['--expose-gc', script, '--steps=1', '--only=stories260K', ...args], {
    encoding: 'utf8',
    // No PyTorch baseline: fast, and the same on every machine.
    env: { ...process.env, WEBTUNE_PYTHON: '/nonexistent/python3', ...env },
    timeout: 120_000,
  });
}

describe('the LoRA SFT benchmark', () => {
  it('prints one JSON row per case and nothing else on stdout with WEBTUNE_BENCH_JSON=1', () => {
    const run = runBench([], { WEBTUNE_BENCH_JSON: '1' });
    expect(run.status, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines.length).toBe(2);
    const rows = lines.map((line) => JSON.parse(line));
    expect(rows.map((row) => row.name)).toEqual(['lora-sft', 'lora-sft-grad-checkpointing']);
    for (const row of rows) {
      expect(row).toMatchObject({
        model: 'stories260K',
        shape: { batch: 8, seq: 256, hidden: 64, vocab: 512 },
      });
      expect(row.tokens_per_s).toBeGreaterThan(0);
      expect(Number.isInteger(row.peak_bytes) && row.peak_bytes > 0).toBe(true);
      expect(row).not.toHaveProperty('torch_tokens_per_s');
    }
    // Recomputing each layer in backward keeps less alive.
    expect(rows[1].peak_bytes).toBeLessThan(rows[0].peak_bytes);
    expect(run.stderr).toMatch(/steps timed: 1/);
  }, 120_000);

  it('prints a table and no JSON rows without --json; refuses a bad --steps', () => {
    const run = runBench([], { WEBTUNE_BENCH_JSON: '' });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/webtune tokens\/s/);
    expect(run.stdout.split('\n').some((line) => line.trim().startsWith('{'))).toBe(false);
    const bad = runBench(['--steps=0'], {});
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--steps must be a positive integer/);
  }, 120_000);
});

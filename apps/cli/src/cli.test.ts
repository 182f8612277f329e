import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const cli = join(dirname(fileURLToPath(import.meta.url)), '../dist/cli.js');

async function webtune(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], {
      env: { ...process.env, NO_COLOR: '1' },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('webtune', () => {
  it('lists commands and exits 2 without one', async () => {
    const result = await webtune();
    expect(result.code).toBe(2);
    expect(result.stdout).toMatch(/Commands:[\s\S]*env/);
  });

  it('rejects an unknown command in one line', async () => {
    const result = await webtune('frobnicate');
    expect(result.code).toBe(2);
    expect(
      result.stderr
        .trim()
        .split('\n')
        .filter((l) => !l.startsWith('Warning')).length,
    ).toBe(1);
    expect(result.stderr).toMatch(/unknown command "frobnicate"/);
  });

  it('env --json reports the adapter, limits and features', async () => {
    const result = await webtune('env', '--json');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.adapter.backend).toBe('dawn-node');
    expect(report.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
    expect(Array.isArray(report.features)).toBe(true);
  });

  it('env rejects an unknown option with exit code 2 and no stack trace', async () => {
    const result = await webtune('env', '--bogus');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/Unknown option '--bogus'/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('prints command help with examples', async () => {
    const result = await webtune('env', '--help');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/Examples:/);
  });
});

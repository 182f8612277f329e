import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { describe, expect, it } from 'vitest';
import { errorLines, webtune } from './testing/run-cli.js';

const COMMANDS = ['train', 'generate', 'chat', 'eval', 'export', 'serve', 'webui', 'data', 'bench', 'env'];

describe('webtune', () => {
  it('lists commands and exits 2 without one', async () => {
    const result = await webtune([]);
    expect(result.code).toBe(2);
    for (const command of COMMANDS) expect(result.stdout).toMatch(new RegExp(`\\n  ${command} `));
    expect(result.stdout).toMatch(/Exit codes: 0 success, 1 failure, 2 bad command line/);
  });

  it('rejects an unknown command in one line', async () => {
    const result = await webtune(['frobnicate']);
    expect(result.code).toBe(2);
    expect(errorLines(result.stderr)).toEqual([expect.stringMatching(/unknown command "frobnicate"/)]);
  });

  it('prints its version', async () => {
    const result = await webtune(['--version']);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('prints help with examples for every command, without a device', async () => {
    for (const command of COMMANDS) {
      const result = await webtune([command, '--help']);
      expect(result.code, command).toBe(0);
      expect(result.stdout, command).toMatch(new RegExp(`^webtune ${command}`));
      expect(result.stdout, command).toMatch(/Examples:\n {2}webtune /);
    }
  });

  it('env --json reports the adapter, limits and features', async () => {
    const result = await webtune(['env', '--json']);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.adapter.backend).toBe('dawn-node');
    expect(report.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
    expect(Array.isArray(report.features)).toBe(true);
    expect(report.webtune).toMatch(/^\d+\.\d+\.\d+/);
    // The matmul kernel a large product gets, and why; lavapipe offers no subgroup matrices.
    expect(report.kernels.matmul_4096.f32.selected).toBe('register');
    expect(report.kernels.matmul_4096.f32.selection_reason).toContain('tuning prefers it');
    expect(report.kernels.subgroup_matrix).toEqual({ feature: false, configs: [], self_check: {} });
  });

  it('rejects an unknown option with exit code 2 and no stack trace; --verbose adds the stack', async () => {
    const result = await webtune(['env', '--bogus']);
    expect(result.code).toBe(2);
    expect(errorLines(result.stderr)).toEqual([expect.stringMatching(/Unknown option '--bogus'/)]);
    const verbose = await webtune([
      'generate',
      '--model',
      'no/such/folder/here',
      '--prompt',
      'x',
      '--verbose',
    ]);
    expect(verbose.code).toBe(1);
    expect(verbose.stderr).toMatch(/\n\s+at /);
  });
});

describe.skipIf(!requireFixtures('models/stories260K-hf'))('bad model files (issue 19)', () => {
  it('names config.json and never echoes its control characters to the terminal', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'webtune-escape-'));
    try {
      cpSync(fixturePath('models/stories260K-hf'), folder, { recursive: true });
      writeFileSync(
        join(folder, 'config.json'),
        '{"architectures": ["LlamaForCausalLM"], "x": \u001b[2J\u001b]0;pwned\u0007 }',
      );
      const result = await webtune(['generate', '--model', folder, '--prompt', 'hi']);
      expect(result.code).toBe(1);
      // biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are what is looked for.
      expect(result.stderr).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
      expect(errorLines(result.stderr)).toEqual([
        expect.stringContaining(`${join(folder, 'config.json')} is not valid JSON: Unexpected token '\\x1b'`),
      ]);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});

/** Test helpers: run the built CLI (dist/cli.js) in a subprocess, as a user would. */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI = join(dirname(fileURLToPath(import.meta.url)), '../../dist/cli.js');
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../../..');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `webtune ...args` to the end; `input` is piped to standard input. */
export function webtune(
  args: string[],
  options: { input?: string; cwd?: string; env?: Record<string, string> } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: options.cwd ?? REPO_ROOT,
      env: { ...process.env, NO_COLOR: '1', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

/** stderr without Dawn's start-up warnings (printed by the native WebGPU binding, not by webtune). */
export function errorLines(stderr: string): string[] {
  return stderr
    .split('\n')
    .map((line) => line.trim())
    .filter(
      (line) =>
        line.length > 0 &&
        !line.startsWith('Warning: maxDynamic') &&
        !line.startsWith('(node:') &&
        !line.startsWith('(Use `node'),
    );
}

/** A long-running CLI process (serve, train to interrupt) with its output so far. */
export interface RunningCli {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the first match of `pattern` in stdout. */
  waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<RegExpMatchArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startCli(args: string[], options: { cwd?: string } = {}): RunningCli {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters: { pattern: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  child.stdout?.on('data', (chunk) => {
    stdout += chunk;
    for (const waiter of waiters.splice(0)) {
      const match = stdout.match(waiter.pattern);
      if (match) waiter.resolve(match);
      else waiters.push(waiter);
    }
  });
  child.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    waitFor: (pattern, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const match = stdout.match(pattern);
        if (match) return resolve(match);
        const timer = setTimeout(
          () => reject(new Error(`timed out waiting for ${pattern}; stdout: ${stdout}; stderr: ${stderr}`)),
          timeoutMs,
        );
        waiters.push({
          pattern,
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m);
          },
        });
        void exited.then(() => {
          clearTimeout(timer);
          reject(new Error(`exited before ${pattern}; stdout: ${stdout}; stderr: ${stderr}`));
        });
      }),
  };
}

/**
 * Runs `webtune train examples/hf-model-lora.yaml` for `model` into `outputDir`, each of `overrides`
 * (LLaMA-Factory keys, in order) given on the command line as `--key value`.
 */
export function trainExample(
  model: string,
  outputDir: string,
  overrides: Record<string, string> = {},
): Promise<CliResult> {
  return webtune([
    'train',
    join(REPO_ROOT, 'examples/hf-model-lora.yaml'),
    '--model_name_or_path',
    model,
    '--output_dir',
    outputDir,
    ...Object.entries(overrides).flatMap(([key, value]) => [`--${key}`, value]),
  ]);
}

/** The rows of a run's trainer_log.jsonl. */
export function trainerLog(outputDir: string): Record<string, unknown>[] {
  return readFileSync(join(outputDir, 'trainer_log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
}

/** The arguments of `webtune eval ab` / `eval judge`: `model` (base) against it with `adapter` (tuned). */
export function comparisonArgs(
  task: 'ab' | 'judge',
  model: string,
  adapter: string,
  prompts: string,
): string[] {
  return ['eval', task, '--model', model, '--adapter', adapter, '--prompts', prompts];
}

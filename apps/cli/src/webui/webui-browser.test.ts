/*
 * Remote mode against the real `webtune webui` (this CLI, built), started by this test: the board (the
 * built app of the @webtune/web dependency) is served by webui itself, and a run on the server's device (Dawn in Node) streams its log and
 * chart into the page.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const distFolder = join(dirname(createRequire(import.meta.url).resolve('@webtune/web/package.json')), 'dist');
const cli = join(here, '..', '..', 'dist', 'cli.js');
const artifacts = join(here, '..', '..', 'test-artifacts');
const chromiumPath = process.env.WEBTUNE_CHROMIUM ?? '/usr/bin/chromium';
const strict = process.env.WEBTUNE_REQUIRE_FIXTURES === '1';
const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--disable-gpu-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function prerequisites(): boolean {
  const missing = [
    !existsSync(chromiumPath) && `Chromium at ${chromiumPath}`,
    !existsSync(join(distFolder, 'index.html')) && 'the built app (pnpm --filter @webtune/web build)',
    !existsSync(cli) && 'the built CLI (pnpm --filter @webtune/cli build)',
  ].filter(Boolean);
  if (missing.length === 0) return true;
  const message = `the webui check needs ${missing.join(', ')}`;
  if (strict) throw new Error(message);
  console.warn(`skipping: ${message}`);
  return false;
}

const ready = requireFixtures('models/stories260K-hf') && prerequisites();

/** Starts `webtune webui` on a free port and resolves with its URL once it listens. */
function startWebui(outputRoot: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [cli, 'webui', '--port', '0', '--app', distFolder, '--output-root', outputRoot],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    },
  );
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`webtune webui did not start:\n${output}`)), 60_000);
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /webtune webui: (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1] });
      }
    };
    child.stdout!.on('data', read);
    child.stderr!.on('data', read);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`webtune webui exited with ${code}:\n${output}`));
    });
  });
}

describe.skipIf(!ready)('remote mode against webtune webui', () => {
  let webui: { child: ChildProcess; url: string };
  let workFolder: string;
  let browser: Browser;
  let page: Page;
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    workFolder = mkdtempSync(join(tmpdir(), 'webtune-webui-'));
    webui = await startWebui(join(workFolder, 'runs'));
    browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: CHROMIUM_FLAGS });
    page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(`page error: ${error.message}`));
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (webui && webui.child.exitCode === null) {
      const exited = new Promise((resolve) => webui.child.once('exit', resolve));
      webui.child.kill('SIGTERM');
      await exited;
    }
    if (workFolder) rmSync(workFolder, { recursive: true, force: true });
  }, 120_000);

  it('trains stories260K on the server from the board it serves, with the log and chart streamed', async () => {
    const dataset = join(workFolder, 'animals.jsonl');
    const rows = ['cat', 'dog', 'bird', 'fox', 'frog', 'fish'].map((animal) =>
      JSON.stringify({
        instruction: `Tell me about the ${animal}.`,
        input: '',
        output: `The ${animal} sat on the mat.`,
      }),
    );
    writeFileSync(dataset, `${rows.join('\n')}\n`);

    await page.goto(`${webui.url}/#remote`);
    const remote = page.locator('#panel-remote');
    await remote.getByLabel('Server', { exact: true }).fill(webui.url);
    await remote.getByRole('button', { name: 'Connect' }).click();
    await expect
      .poll(() => remote.locator('.task-status').textContent(), { timeout: 20_000 })
      .toMatch(/^Connected to webtune .* on mesa/);
    await remote
      .getByLabel('Model on the server', { exact: true })
      .fill(fixturePath('models/stories260K-hf'));
    await remote.getByLabel('Datasets', { exact: true }).fill(dataset);
    await remote.getByLabel('Chat template', { exact: true }).fill('empty');
    await remote.getByLabel('cutoff_len', { exact: true }).fill('64');
    await remote.getByLabel('Train on this server', { exact: false }).check();

    await page.getByRole('tab', { name: 'Train' }).click();
    const train = page.locator('#panel-train');
    await train.getByLabel('Run name').fill('remote-1');
    await train.getByLabel('Max steps').fill('3');
    await train.getByLabel('Batch size').fill('2');
    await train.getByLabel('Gradient accumulation').fill('1');
    await train.getByLabel('Learning rate', { exact: true }).fill('0.001');
    await train.getByLabel('Gradient checkpointing').uncheck();
    await train.getByRole('button', { name: 'Start' }).click();
    const status = train.locator('.task-status').first();
    await expect
      .poll(() => status.getAttribute('data-state'), { timeout: 240_000, interval: 500 })
      .toMatch(/^(done|error)$/);
    expect(await status.textContent()).toBe('Training completed after 3 steps.');
    expect(await train.locator('canvas.chart-canvas').getAttribute('data-loss-points')).toBe('3');
    const log = (await train.locator('.log').textContent()) ?? '';
    expect(log).toMatch(/Remote run \S+ started on/);
    expect(log).toContain('step 3/3');
    // The server wrote LLaMA-Factory's trainer log into the run's folder.
    const trainerLog = join(workFolder, 'runs', 'remote-1', 'trainer_log.jsonl');
    expect(existsSync(trainerLog)).toBe(true);
    expect(readFileSync(trainerLog, 'utf8').trim().split('\n').length).toBeGreaterThan(0);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(artifacts, 'remote-webui.png'), fullPage: true });
    expect(consoleErrors).toEqual([]);
  });
});

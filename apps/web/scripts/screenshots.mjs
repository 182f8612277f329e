#!/usr/bin/env node
/*
 * Screenshots of every tab of the board at 1280 px and 400 px wide, for docs/guide/web.md:
 * `pnpm --filter @webtune/web screenshots` (after `pnpm --filter @webtune/web build`).
 *
 * Serves the built app, and the stories260K fixture in the hub's URL layout (@webtune/hub's test
 * server, its API and resolve/), on 127.0.0.1, opens
 * the board in Chromium (playwright-core; WebGPU on SwiftShader), loads the model with the quick
 * start so the tabs have something to show, and writes docs/guide/images/web-<tab>-<width>.png.
 * WEBTUNE_CHROMIUM names another Chromium.
 */
import { createReadStream, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHubServer } from '@webtune/hub/testing';
import { chromium } from 'playwright-core';

const appRoot = fileURLToPath(new URL('..', import.meta.url));
const repoRoot = join(appRoot, '..', '..');
const dist = join(appRoot, 'dist');
const model = join(repoRoot, 'fixtures', 'models', 'stories260K-hf');
const out = join(repoRoot, 'docs', 'guide', 'images');
const chromiumPath = process.env.WEBTUNE_CHROMIUM ?? '/usr/bin/chromium';
const TABS = ['Model', 'Data', 'Train', 'Chat', 'Evaluate', 'Export', 'Remote'];
const WIDTHS = [1280, 400];
const TYPES = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
};

for (const [what, path] of [
  ['the built app (pnpm --filter @webtune/web build)', join(dist, 'index.html')],
  ['the stories260K fixture', join(model, 'config.json')],
  [`Chromium (set WEBTUNE_CHROMIUM)`, chromiumPath],
]) {
  if (!existsSync(path)) {
    console.error(`screenshots: ${what} is missing: ${path}`);
    process.exit(1);
  }
}

const modelFiles = Object.fromEntries(
  readdirSync(model).map((name) => [name, new Uint8Array(readFileSync(join(model, name)))]),
);
const hub = await startHubServer({
  'webtune/stories260K': { type: 'model', files: modelFiles, lfs: ['model.safetensors'] },
});
const mounts = { '/': dist };
const server = createServer(async (request, response) => {
  const path = decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname);
  const prefix = Object.keys(mounts).find((candidate) => path.startsWith(candidate));
  const root = mounts[prefix];
  let file = normalize(join(root, path.slice(prefix.length) || 'index.html'));
  if (!file.startsWith(normalize(root + sep))) return response.writeHead(403).end();
  try {
    if ((await stat(file)).isDirectory()) file = join(file, 'index.html');
    const info = await stat(file);
    response.writeHead(200, {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'content-length': info.size,
    });
    createReadStream(file).pipe(response);
  } catch {
    response.writeHead(404).end();
  }
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const site = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({
  executablePath: chromiumPath,
  headless: true,
  args: [
    '--no-sandbox',
    '--enable-unsafe-webgpu',
    '--disable-gpu-sandbox',
    '--no-first-run',
    '--disable-sync',
  ],
});
try {
  mkdirSync(out, { recursive: true });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(`${site}/?hub=${encodeURIComponent(hub.endpoint)}`);
  await page.waitForFunction(
    () => document.querySelector('.gpu-status')?.textContent?.startsWith('GPU: '),
    null,
    {
      timeout: 60_000,
    },
  );
  await page.getByLabel('Or a hub id').fill('webtune/stories260K');
  await page.getByRole('button', { name: 'Download and load' }).click();
  await page.waitForFunction(
    () => document.querySelector('.quick-start .task-status')?.getAttribute('data-state') === 'done',
    null,
    { timeout: 120_000 },
  );
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: width > 600 ? 900 : 860 });
    for (const tab of TABS) {
      await page.getByRole('tab', { name: tab }).click();
      await page.evaluate(() => window.scrollTo(0, 0));
      const path = join(out, `web-${tab.toLowerCase()}-${width}.png`);
      await page.screenshot({ path });
      console.log(`wrote ${path}`);
    }
  }
} finally {
  await browser.close();
  server.close();
  await hub.close();
}

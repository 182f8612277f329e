import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built app the browser tests serve. */
export const distFolder = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
export const chromiumPath = process.env.WEBTUNE_CHROMIUM ?? '/usr/bin/chromium';

/** Flags from docs/ENVIRONMENT.md: WebGPU on SwiftShader, headless, nothing phoning home. */
export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--disable-gpu-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Whether Chromium and the built app are here. .ci/run sets WEBTUNE_REQUIRE_FIXTURES=1: there a
 * missing browser or build fails instead of skipping.
 */
export function browserAvailable(): boolean {
  const missing = [
    !existsSync(chromiumPath) &&
      `Chromium at ${chromiumPath} (apt-get install chromium, or set WEBTUNE_CHROMIUM)`,
    !existsSync(join(distFolder, 'index.html')) && 'the built app (pnpm --filter @webtune/web build)',
  ].filter(Boolean);
  if (missing.length === 0) return true;
  const message = `browser checks need ${missing.join(' and ')}`;
  if (process.env.WEBTUNE_REQUIRE_FIXTURES === '1') throw new Error(message);
  console.warn(`skipping: ${message}`);
  return false;
}

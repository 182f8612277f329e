import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../../..');

/**
 * The shared fixtures folder: $WEBTUNE_FIXTURES, else ../shared/fixtures beside the repository.
 */
export function fixturesRoot(): string {
  return process.env.WEBTUNE_FIXTURES ?? resolve(repoRoot, '../shared/fixtures');
}

export function fixturePath(...parts: string[]): string {
  return join(fixturesRoot(), ...parts);
}

/**
 * Whether the fixtures a test needs are present. When they are not, tests skip with a message
 * naming what is missing, unless WEBTUNE_REQUIRE_FIXTURES=1 (set by .ci/run): then it throws.
 * Use as `describe.skipIf(!requireFixtures('models/stories260K-hf'))(...)`.
 */
export function requireFixtures(...relativePaths: string[]): boolean {
  const missing = relativePaths.filter((p) => !existsSync(fixturePath(p)));
  if (missing.length === 0) return true;
  const message = `missing fixtures under ${fixturesRoot()}: ${missing.join(', ')} (set WEBTUNE_FIXTURES to their folder)`;
  if (process.env.WEBTUNE_REQUIRE_FIXTURES === '1') throw new Error(message);
  console.warn(`skipping: ${message}`);
  return false;
}

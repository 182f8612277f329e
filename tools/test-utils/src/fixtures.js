// Plain JavaScript (types in fixtures.d.ts) so that bench scripts import it too: `@webtune/test-utils/fixtures`.
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../../..');

/**
 * The fixtures the repository carries (`fixtures/` at its root, see fixtures/PROVENANCE.md). Every test
 * that `requireFixtures` names finds its files here on a fresh clone. Files stored as `name.gz` are
 * decompressed once into node_modules/.cache and handed out from there.
 */
export function repositoryFixturesRoot() {
  return join(repoRoot, 'fixtures');
}

/**
 * Where larger, optional material lives: $WEBTUNE_FIXTURES, else ../shared/fixtures beside the repository.
 * Only `optionalFixtures` and `fixturePath` of files the repository does not carry look here.
 */
export function fixturesRoot() {
  return process.env.WEBTUNE_FIXTURES ?? resolve(repoRoot, '../shared/fixtures');
}

const cacheRoot = () => join(repoRoot, 'node_modules', '.cache', 'webtune-fixtures');

/** Writes through a temporary name and a rename, so parallel test workers never read half a file. */
function writeAtomically(path, bytes) {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  writeFileSync(temporary, bytes);
  renameSync(temporary, path);
}

const isFresh = (target, source) =>
  existsSync(target) && statSync(target).mtimeMs >= statSync(source).mtimeMs;

/** The decompressed copy of `relative`.gz in the cache. */
function inflated(relative) {
  const source = join(repositoryFixturesRoot(), `${relative}.gz`);
  const target = join(cacheRoot(), relative);
  if (!isFresh(target, source)) writeAtomically(target, gunzipSync(readFileSync(source)));
  return target;
}

function holdsCompressed(folder) {
  return readdirSync(folder, { withFileTypes: true }).some((entry) =>
    entry.isDirectory() ? holdsCompressed(join(folder, entry.name)) : entry.name.endsWith('.gz'),
  );
}

/** A folder of the repository's fixtures as readers expect it: a cached copy with `.gz` files inflated. */
function materialisedFolder(relative) {
  const source = join(repositoryFixturesRoot(), relative);
  if (!holdsCompressed(source)) return source;
  for (const entry of readdirSync(source, { withFileTypes: true })) {
    const child = join(relative, entry.name);
    if (entry.isDirectory()) materialisedFolder(child);
    else if (entry.name.endsWith('.gz')) inflated(child.slice(0, -'.gz'.length));
    else {
      const target = join(cacheRoot(), child);
      if (!isFresh(target, join(source, entry.name))) {
        writeAtomically(target, readFileSync(join(source, entry.name)));
      }
    }
  }
  return join(cacheRoot(), relative);
}

/** Whether the repository carries `relative` (as itself or as `relative.gz`). */
function inRepository(relative) {
  const root = repositoryFixturesRoot();
  return existsSync(join(root, relative)) || existsSync(join(root, `${relative}.gz`));
}

/**
 * The path of a fixture: the repository's copy when it has one (decompressed if stored gzipped),
 * else the same relative path under the optional fixtures folder (`fixturesRoot()`).
 */
export function fixturePath(...parts) {
  const relative = join(...parts);
  const root = repositoryFixturesRoot();
  const plain = join(root, relative);
  if (existsSync(plain)) return statSync(plain).isDirectory() ? materialisedFolder(relative) : plain;
  if (existsSync(`${plain}.gz`)) return inflated(relative);
  return join(fixturesRoot(), relative);
}

/** The text of a fixture file, read through `fixturePath`. */
export function readFixture(...parts) {
  return readFileSync(fixturePath(...parts), 'utf8');
}

/**
 * Whether the fixtures a test needs are present. The repository carries all of these on a fresh clone;
 * a missing one means a broken checkout. The test skips with a message naming what is missing, unless
 * WEBTUNE_REQUIRE_FIXTURES=1 (set by .ci/run): then it throws.
 * Use as `describe.skipIf(!requireFixtures('models/stories260K-hf'))(...)`.
 */
export function requireFixtures(...relativePaths) {
  const missing = relativePaths.filter((path) => !inRepository(path));
  if (missing.length === 0) return true;
  const message = `missing fixtures under ${repositoryFixturesRoot()}: ${missing.join(', ')} (the repository should carry them; see fixtures/PROVENANCE.md)`;
  if (process.env.WEBTUNE_REQUIRE_FIXTURES === '1') throw new Error(message);
  console.warn(`skipping: ${message}`);
  return false;
}

/**
 * Whether larger optional material (not carried by the repository: whole datasets, bigger models) is
 * present under `fixturesRoot()`. When it is not, the test skips with the reason, even under
 * WEBTUNE_REQUIRE_FIXTURES: a fresh clone runs everything else.
 */
export function optionalFixtures(...relativePaths) {
  const missing = relativePaths.filter((path) => !existsSync(join(fixturesRoot(), path)));
  if (missing.length === 0) return true;
  console.warn(
    `skipping: optional fixtures missing under ${fixturesRoot()}: ${missing.join(', ')} (set WEBTUNE_FIXTURES to a folder that has them)`,
  );
  return false;
}

/**
 * For benchmarks: the optional folder's copy when it has one (whole, untrimmed files), else the
 * repository's (trimmed) copy through `fixturePath`.
 */
export function fullFixturePath(...parts) {
  const optional = join(fixturesRoot(), ...parts);
  return existsSync(optional) ? optional : fixturePath(...parts);
}

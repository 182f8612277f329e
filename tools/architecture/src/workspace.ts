import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export interface PackageJson {
  name: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  exports?: string | Record<string, unknown>;
  bin?: string | Record<string, string>;
}

export interface WorkspacePackage {
  name: string;
  /** Folder relative to the repository root: packages/nn, apps/cli, tools/test-utils. */
  folder: string;
  json: PackageJson;
}

export interface SourceImport {
  /** File relative to the repository root. */
  file: string;
  specifier: string;
}

/** Every workspace package (packages/*, apps/*, tools/*: the globs of pnpm-workspace.yaml). */
export function workspacePackages(): WorkspacePackage[] {
  return ['packages', 'apps', 'tools'].flatMap((group) =>
    readdirSync(join(repoRoot, group), { withFileTypes: true })
      .filter((entry) => entry.isDirectory() && existsSync(join(repoRoot, group, entry.name, 'package.json')))
      .map((entry) => {
        const folder = `${group}/${entry.name}`;
        const json = JSON.parse(readFileSync(join(repoRoot, folder, 'package.json'), 'utf8')) as PackageJson;
        return { name: json.name, folder, json };
      }),
  );
}

const SOURCE = /\.(ts|tsx|mts|js|mjs)$/;

/** The source files of a folder (src/ of a package), relative to the repository root. */
export function sourceFiles(folder: string): string[] {
  const absolute = join(repoRoot, folder);
  if (!existsSync(absolute)) return [];
  return readdirSync(absolute, { withFileTypes: true }).flatMap((entry) => {
    const path = `${folder}/${entry.name}`;
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : sourceFiles(path);
    return SOURCE.test(entry.name) && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Test code: *.test.ts and *.bench.ts, and helpers in testing/, test-support/ or test-helpers.ts that only tests import. */
export function isTestFile(file: string): boolean {
  const parts = file.split('/');
  return (
    /\.(test|bench)\.(ts|tsx|mts|js|mjs)$/.test(file) ||
    parts.some((part) => part === 'testing' || part === 'test-support' || part === '__fixtures__') ||
    basename(file).startsWith('test-helpers.')
  );
}

/** Module specifiers a file imports: static and dynamic imports, re-exports, and `new URL(x, import.meta.url)`. */
export function importsOf(file: string): string[] {
  const text = readFileSync(join(repoRoot, file), 'utf8').replace(/^\s*\/\/.*$/gm, '');
  const patterns = [
    /(?:^|[\s;}])(?:import|export)\s[^'"`;]*?\sfrom\s*['"]([^'"]+)['"]/g,
    /(?:^|[\s;])import\s*['"]([^'"]+)['"]/g,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\bnew URL\(\s*['"](\.[^'"]+)['"]\s*,\s*import\.meta\.url\s*\)/g,
  ];
  return patterns.flatMap((pattern) => [...text.matchAll(pattern)].map((match) => match[1]));
}

/** The package a bare specifier names, and the subpath after it: '@webtune/nn/node' -> ['@webtune/nn', './node']. */
export function splitSpecifier(specifier: string): [name: string, subpath: string] {
  const parts = specifier.split('/');
  const length = specifier.startsWith('@') ? 2 : 1;
  const rest = parts.slice(length).join('/');
  return [parts.slice(0, length).join('/'), rest === '' ? '.' : `./${rest}`];
}

/** Whether a package's `exports` map offers `subpath` ('.', './node', './bench/x.mjs' through './bench/*'). */
export function exportsSubpath(json: PackageJson, subpath: string): boolean {
  if (json.exports === undefined) return subpath === '.';
  if (typeof json.exports === 'string') return subpath === '.';
  return Object.keys(json.exports).some((key) => {
    if (key === subpath) return true;
    const star = key.indexOf('*');
    return star >= 0 && subpath.startsWith(key.slice(0, star)) && subpath.endsWith(key.slice(star + 1));
  });
}

/** A relative specifier resolved to a source file (x.js -> x.ts, folder -> index.ts), relative to the root. */
export function resolveRelative(file: string, specifier: string): string | null {
  const base = join(repoRoot, dirname(file), specifier);
  const candidates = [
    base,
    base.replace(/\.(js|mjs)$/, '.ts'),
    base.replace(/\.js$/, '.tsx'),
    `${base}.ts`,
    join(base, 'index.ts'),
  ];
  const found = candidates.find((candidate) => existsSync(candidate) && statSync(candidate).isFile());
  return found ? relative(repoRoot, found).split(sep).join('/') : null;
}

/** The source files a package's published entry points (exports and bin, dist/X.js -> src/X.ts) start from. */
export function entryFiles(pkg: WorkspacePackage): string[] {
  const targets: string[] = [];
  const collect = (value: unknown): void => {
    if (typeof value === 'string') targets.push(value);
    else if (value && typeof value === 'object') for (const inner of Object.values(value)) collect(inner);
  };
  collect(pkg.json.exports);
  collect(pkg.json.bin);
  return targets
    .map((target) => /^\.\/dist\/(.+)\.js$/.exec(target)?.[1])
    .filter((stem): stem is string => stem !== undefined)
    .map((stem) => `${pkg.folder}/src/${stem}.ts`)
    .filter((file) => existsSync(join(repoRoot, file)));
}

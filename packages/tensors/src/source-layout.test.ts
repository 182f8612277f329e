import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/*
 * The package's source layout, checked: no two modules import each other (directly or through a
 * ring, type imports included), and code that ships imports no dev-only package.
 */

const root = dirname(fileURLToPath(import.meta.url));
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?\sfrom\s+'([^']+)'/g;

function sourceFiles(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return entry.name === '__fixtures__' ? [] : sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Tests, benches and the test support in src/testing/ do not ship. */
const isTest = (file: string) =>
  /\.(test|bench)\.ts$/.test(file) || relative(root, file).startsWith('testing/');

function imports(file: string): string[] {
  return [...readFileSync(file, 'utf8').matchAll(IMPORT)].map((match) => match[1]);
}

/** Every ring of modules that import each other, as paths relative to src/. */
function importCycles(files: readonly string[]): string[][] {
  const edges = new Map<string, string[]>();
  for (const file of files) {
    const targets = imports(file)
      .filter((specifier) => specifier.startsWith('.'))
      .map((specifier) => resolve(dirname(file), specifier.replace(/\.js$/, '.ts')));
    edges.set(file, targets);
  }
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    stack.push(file);
    for (const target of edges.get(file) ?? []) {
      if (state.get(target) === 'open')
        cycles.push(stack.slice(stack.indexOf(target)).map((f) => relative(root, f)));
      else if (!state.has(target)) visit(target);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of files) if (!state.has(file)) visit(file);
  return cycles;
}

describe('source layout', () => {
  const files = sourceFiles(root);
  const shipped = files.filter((file) => !isTest(file));

  it('has no import cycle among the modules that ship', () => {
    expect(importCycles(shipped)).toEqual([]);
  });

  it('reports a ring, type imports included (the check itself)', () => {
    const folder = mkdtempSync(join(tmpdir(), 'webtune-cycle-'));
    try {
      const first = join(folder, 'first.ts');
      const second = join(folder, 'second.ts');
      writeFileSync(first, "import type { B } from './second.js';\nexport type A = B;\n");
      writeFileSync(second, "import { x } from './first.js';\nexport const y = x;\n");
      expect(importCycles([first, second])).toHaveLength(1);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('keeps the tensor free of the device implementation (device.ts imports tensor.ts, not back)', () => {
    expect(imports(join(root, 'device/device.ts'))).toContain('../tensor/tensor.js');
    expect(
      imports(join(root, 'tensor/tensor.ts')).filter((specifier) => specifier.includes('/device.')),
    ).toEqual([]);
  });

  it('keeps test support out of code that ships', () => {
    const offenders = shipped.filter((file) =>
      imports(file).some((specifier) => specifier.includes('/testing/')),
    );
    expect(offenders.map((file) => relative(root, file))).toEqual([]);
  });

  it('imports no dev-only package from code that ships', () => {
    const manifest = JSON.parse(readFileSync(join(root, '../package.json'), 'utf8')) as {
      devDependencies?: Record<string, string>;
    };
    const devOnly = Object.keys(manifest.devDependencies ?? {});
    const offenders = shipped.flatMap((file) =>
      imports(file)
        .filter((specifier) => devOnly.some((name) => specifier === name || specifier.startsWith(`${name}/`)))
        .map((specifier) => `${relative(root, file)} imports ${specifier}`),
    );
    expect(offenders).toEqual([]);
  });
});

import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ALLOWED_DEPENDENCIES,
  ASSET_ONLY_DEPENDENCIES,
  DEV_ONLY,
  GPU_ROOT,
  WITHOUT_GPU,
} from './allowed-dependencies.js';
import {
  entryFiles,
  exportsSubpath,
  importsOf,
  isTestFile,
  type PackageJson,
  repoRoot,
  resolveRelative,
  sourceFiles,
  splitSpecifier,
  type WorkspacePackage,
  workspacePackages,
} from './workspace.js';

const workspace = workspacePackages();
const byName = new Map(workspace.map((pkg) => [pkg.name, pkg]));
const isWorkspace = (name: string) => byName.has(name);
const builtin = new Set(builtinModules);
/** The root package.json's devDependencies (vitest, vite, ...): for test code of every package. */
const rootDev = Object.keys(
  (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as PackageJson).devDependencies ?? {},
);
const declared = (pkg: WorkspacePackage, field: 'dependencies' | 'devDependencies') =>
  Object.keys(pkg.json[field] ?? {});
/** Code of packages/*\/src and apps/*\/src (tools are checked for their package.json only). */
const checked = workspace.filter(
  (pkg) => pkg.folder.startsWith('packages/') || pkg.folder.startsWith('apps/'),
);

describe('the documented dependency graph (tools/architecture/src/allowed-dependencies.ts)', () => {
  it('has a row for every workspace package, and only for packages that exist or are planned', () => {
    const missing = workspace.map((pkg) => pkg.name).filter((name) => !(name in ALLOWED_DEPENDENCIES));
    expect(missing, 'add the new package to ALLOWED_DEPENDENCIES (and docs/architecture/README.md)').toEqual(
      [],
    );
  });

  it('is acyclic, and no package may depend on an app', () => {
    const apps = workspace.filter((pkg) => pkg.folder.startsWith('apps/')).map((pkg) => pkg.name);
    for (const pkg of workspace.filter((candidate) => candidate.folder.startsWith('packages/'))) {
      expect(
        ALLOWED_DEPENDENCIES[pkg.name].filter((name) => apps.includes(name)),
        pkg.name,
      ).toEqual([]);
    }
    const visiting = new Set<string>();
    const done = new Set<string>();
    const visit = (name: string, path: string[]): void => {
      if (done.has(name)) return;
      if (visiting.has(name)) throw new Error(`cycle: ${[...path, name].join(' -> ')}`);
      visiting.add(name);
      for (const next of ALLOWED_DEPENDENCIES[name] ?? []) visit(next, [...path, name]);
      visiting.delete(name);
      done.add(name);
    };
    for (const name of Object.keys(ALLOWED_DEPENDENCIES)) visit(name, []);
  });
});

describe('package.json files', () => {
  it('declare only workspace dependencies the graph allows (dev-only tools excepted)', () => {
    const violations = workspace.flatMap((pkg) =>
      [...declared(pkg, 'dependencies'), ...declared(pkg, 'devDependencies')]
        .filter((name) => isWorkspace(name) && !DEV_ONLY.includes(name))
        .filter((name) => !(ALLOWED_DEPENDENCIES[pkg.name] ?? []).includes(name))
        .map((name) => `${pkg.folder}/package.json: ${pkg.name} -> ${name}`),
    );
    expect(violations).toEqual([]);
  });

  it('keep data, tokenizers and safetensors free of GPU code: no runtime path to @webtune/tensors', () => {
    for (const name of WITHOUT_GPU) {
      const reached = new Set<string>();
      const walk = (current: string): void => {
        const pkg = byName.get(current);
        for (const next of pkg ? declared(pkg, 'dependencies').filter(isWorkspace) : []) {
          if (!reached.has(next)) {
            reached.add(next);
            walk(next);
          }
        }
      };
      walk(name);
      expect(reached.has(GPU_ROOT), `${name} reaches ${GPU_ROOT}`).toBe(false);
    }
  });
});

describe('imports in packages/*/src and apps/*/src', () => {
  const files = checked.flatMap((pkg) => sourceFiles(`${pkg.folder}/src`).map((file) => ({ pkg, file })));

  it('finds the source files it checks', () => {
    expect(files.length).toBeGreaterThan(200);
  });

  it('name only declared, allowed packages, through their exports (no src/ or dist/ reach-ins)', () => {
    const violations: string[] = [];
    for (const { pkg, file } of files) {
      const runtime = declared(pkg, 'dependencies');
      const dev = declared(pkg, 'devDependencies');
      for (const specifier of importsOf(file)) {
        if (specifier.startsWith('.') || specifier.startsWith('node:') || builtin.has(specifier)) continue;
        if (specifier.startsWith('/') || specifier.startsWith('virtual:') || specifier.includes('?'))
          continue;
        const [name, subpath] = splitSpecifier(specifier);
        const say = (why: string) => violations.push(`${file}: '${specifier}' ${why}`);
        if (name === pkg.name) continue;
        if (isTestFile(file) && rootDev.includes(name)) continue;
        if (!runtime.includes(name) && !dev.includes(name)) {
          say(`names ${name}, which ${pkg.folder}/package.json does not declare`);
          continue;
        }
        if (!isWorkspace(name)) continue;
        if (/^\.\/(src|dist)(\/|$)/.test(subpath)) say('reaches into another package’s src/ or dist/');
        if ((ASSET_ONLY_DEPENDENCIES[pkg.name] ?? []).includes(name) && subpath !== './package.json')
          say(`imports code of ${name}, which ${pkg.name} may only use for its built files`);
        if (!exportsSubpath(byName.get(name)!.json, subpath)) say(`is not in the exports of ${name}`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('use relative paths only inside their own package', () => {
    const violations = files.flatMap(({ pkg, file }) =>
      importsOf(file)
        .filter((specifier) => specifier.startsWith('.'))
        .map((specifier) => ({ specifier, target: resolveRelative(file, specifier) }))
        .filter(({ target }) => target !== null && !target.startsWith(`${pkg.folder}/`))
        .map(({ specifier }) => `${file}: '${specifier}' leaves ${pkg.folder}`),
    );
    expect(violations).toEqual([]);
  });

  it('ship no dev-only import: what the entry points reach imports runtime dependencies only', () => {
    const violations: string[] = [];
    for (const pkg of checked) {
      const runtime = new Set(declared(pkg, 'dependencies'));
      const dev = new Set(declared(pkg, 'devDependencies').filter((name) => !runtime.has(name)));
      const entries = entryFiles(pkg);
      // An app bundled by Vite has no package entry points: all its non-test code ships.
      const start =
        entries.length > 0 ? entries : sourceFiles(`${pkg.folder}/src`).filter((f) => !isTestFile(f));
      const seen = new Set<string>();
      const queue = [...start];
      while (queue.length > 0) {
        const file = queue.pop()!;
        if (seen.has(file)) continue;
        seen.add(file);
        for (const specifier of importsOf(file)) {
          if (specifier.startsWith('.')) {
            const target = resolveRelative(file, specifier);
            if (target && !seen.has(target)) queue.push(target);
          } else if (dev.has(splitSpecifier(specifier)[0])) {
            violations.push(
              `${file}: '${specifier}' is a devDependency, reached from ${pkg.name}'s entry points`,
            );
          }
        }
      }
    }
    expect(violations).toEqual([]);
  });
});

import { describe, expect, it } from 'vitest';
import { exportsSubpath, isTestFile, resolveRelative, splitSpecifier } from './workspace.js';

describe('reading the workspace', () => {
  it('splits a specifier into package and subpath', () => {
    expect(splitSpecifier('@webtune/nn')).toEqual(['@webtune/nn', '.']);
    expect(splitSpecifier('@webtune/nn/node')).toEqual(['@webtune/nn', './node']);
    expect(splitSpecifier('@webtune/nn/src/index.js')).toEqual(['@webtune/nn', './src/index.js']);
    expect(splitSpecifier('yaml')).toEqual(['yaml', '.']);
  });

  it('matches subpaths against exports, patterns included', () => {
    const json = { name: 'x', exports: { '.': './dist/index.js', './node': {}, './bench/*': './bench/*' } };
    expect(exportsSubpath(json, '.')).toBe(true);
    expect(exportsSubpath(json, './node')).toBe(true);
    expect(exportsSubpath(json, './bench/kernels.mjs')).toBe(true);
    expect(exportsSubpath(json, './src/index.js')).toBe(false);
    expect(exportsSubpath({ name: 'y' }, './dist/index.js')).toBe(false);
  });

  it('tells test code from shipped code', () => {
    expect(isTestFile('packages/nn/src/a.test.ts')).toBe(true);
    expect(isTestFile('packages/tensors/src/k/e.bench.ts')).toBe(true);
    expect(isTestFile('packages/train/src/testing/stories.ts')).toBe(true);
    expect(isTestFile('packages/tokenizers/src/test-helpers.ts')).toBe(true);
    expect(isTestFile('packages/nn/src/testing-utils.ts')).toBe(false);
    expect(isTestFile('packages/nn/src/index.ts')).toBe(false);
  });

  it('resolves relative .js imports to .ts sources, and sees a path that leaves the package', () => {
    expect(resolveRelative('tools/architecture/src/workspace.test.ts', './workspace.js')).toBe(
      'tools/architecture/src/workspace.ts',
    );
    expect(resolveRelative('tools/architecture/src/workspace.ts', '../../test-utils/src/index.ts')).toBe(
      'tools/test-utils/src/index.ts',
    );
  });
});

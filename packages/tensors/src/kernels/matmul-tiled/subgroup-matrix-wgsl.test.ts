import { describe, expect, it } from 'vitest';
import type { SubgroupMatrixConfig } from './subgroup-matrix-config.js';
import {
  type SubgroupMatrixShape,
  subgroupMatrixKey,
  subgroupMatrixLayout,
  subgroupMatrixSource,
  subgroupMatrixTile,
  subgroupMatrixWorkgroupBytes,
} from './subgroup-matrix-wgsl.js';

// The generated WGSL is read back structurally for configurations the adapters of the proposal's
// platforms report (square 8 and 16, non-square, K of 4 and 32): every matrix type is the
// configuration's, and the loads, stores and multiply-accumulates cover the staged panels and the
// result tile exactly once, inside their arrays. (The kernel itself runs, with the builtins
// emulated, in subgroup-matrix.test.ts.)
const configs: SubgroupMatrixConfig[] = [
  { componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 },
  { componentType: 'f32', resultComponentType: 'f32', M: 8, N: 8, K: 8 },
  { componentType: 'f16', resultComponentType: 'f32', M: 8, N: 8, K: 8 },
  { componentType: 'f16', resultComponentType: 'f32', M: 16, N: 8, K: 16 },
  { componentType: 'f32', resultComponentType: 'f32', M: 32, N: 8, K: 4 },
  { componentType: 'f16', resultComponentType: 'f32', M: 8, N: 16, K: 32 },
];

function shapeFor(config: SubgroupMatrixConfig, variant: number): SubgroupMatrixShape {
  return {
    config,
    lanes: [32, 64, 16][variant % 3],
    ...subgroupMatrixLayout(config),
    dtype: config.componentType as 'f32' | 'f16',
    a: { vector: variant % 2 === 0, kContiguous: true },
    b: { vector: false, kContiguous: variant % 2 === 1 },
    bias: variant % 2 === 0,
  };
}

/** Every `name(args)` call's arguments, split at top-level commas. */
function calls(source: string, name: string): string[][] {
  const out: string[][] = [];
  let at = source.indexOf(`${name}`);
  while (at >= 0) {
    let open = source.indexOf('(', at);
    // Skip a template list (subgroupMatrixLoad<...>(...)).
    if (source[at + name.length] === '<') open = source.indexOf('(', source.indexOf('>>', at));
    let depth = 0;
    let start = open + 1;
    const args: string[] = [];
    for (let i = open; i < source.length; i++) {
      const c = source[i];
      if (c === '(' || c === '<') depth++;
      if (c === ')' || c === '>') depth--;
      if (c === ',' && depth === 1) {
        args.push(source.slice(start, i).trim());
        start = i + 1;
      }
      if (depth === 0) {
        args.push(source.slice(start, i).trim());
        break;
      }
    }
    out.push(args);
    at = source.indexOf(name, at + name.length);
  }
  return out;
}

const uint = (text: string) => {
  expect(text).toMatch(/^\d+u$/);
  return Number.parseInt(text, 10);
};

/** Marks the elements [r, c] of a rows x cols matrix at offset/stride/majorness; each once overall. */
function cover(
  seen: Uint8Array,
  offset: number,
  colMajor: boolean,
  stride: number,
  rows: number,
  cols: number,
) {
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const at = colMajor ? offset + c * stride + r : offset + r * stride + c;
      expect(at).toBeLessThan(seen.length);
      seen[at]++;
    }
  }
}

describe.each(
  configs.map(
    (config, i) => [`${config.componentType} ${config.M}x${config.N}x${config.K}`, config, i] as const,
  ),
)('subgroupMatrixSource %s', (_name, config, variant) => {
  const shape = shapeFor(config, variant);
  const source = subgroupMatrixSource(shape);
  const { rows, cols, depth } = subgroupMatrixTile(shape);
  const { M, N, K } = config;
  const T = config.componentType;
  const steps = shape.kSteps;

  it('enables what it uses, first, and runs one workgroup of subgroupMaxSize lanes', () => {
    const enables = source.split('\n').filter((line) => line.startsWith('enable '));
    expect(enables).toEqual([
      ...(T === 'f16' ? ['enable f16;'] : []),
      'enable subgroups;',
      'enable chromium_experimental_subgroup_matrix;',
    ]);
    expect(source.startsWith(enables.join('\n'))).toBe(true);
    expect(source).toContain(`@compute @workgroup_size(${shape.lanes}, 1, 1)`);
    expect(depth % 4).toBe(0);
    expect(depth).toBeGreaterThanOrEqual(16);
    expect(rows).toBeLessThanOrEqual(Math.max(32, M));
    expect(cols).toBeLessThanOrEqual(Math.max(32, N));
  });

  it("declares only the configuration's matrix types, column count first", () => {
    const types = new Set(source.match(/subgroup_matrix_(left|right|result)<[^>]*>/g));
    expect([...types].sort()).toEqual(
      [
        `subgroup_matrix_left<${T}, ${K}, ${M}>`,
        `subgroup_matrix_right<${T}, ${N}, ${K}>`,
        `subgroup_matrix_result<f32, ${N}, ${M}>`,
      ].sort(),
    );
    expect(source).toContain(`var<workgroup> panel_a: array<${T}, ${rows * depth}>;`);
    expect(source).toContain(`var<workgroup> panel_b: array<${T}, ${cols * depth}>;`);
    expect(source).toContain(`var<workgroup> result_tile: array<f32, ${rows * cols}>;`);
    expect(subgroupMatrixWorkgroupBytes(shape)).toBe(
      (rows + cols) * depth * (T === 'f16' ? 2 : 4) + rows * cols * 4,
    );
  });

  it('loads every staged panel element once per step, inside the panels', () => {
    const loads = calls(source, 'subgroupMatrixLoad');
    const panelA = new Uint8Array(rows * depth);
    const panelB = new Uint8Array(cols * depth);
    let lefts = 0;
    let rights = 0;
    for (const [pointer, offset, colMajor, stride] of loads) {
      if (pointer === '&panel_a') {
        lefts++;
        expect(colMajor).toBe('false');
        expect(uint(stride)).toBe(depth);
        cover(panelA, uint(offset), false, depth, M, K);
      } else {
        rights++;
        expect(pointer).toBe('&panel_b');
        expect(colMajor).toBe('true');
        expect(uint(stride)).toBe(depth);
        cover(panelB, uint(offset), true, depth, K, N);
      }
    }
    expect(lefts).toBe(steps * shape.fragmentsM);
    expect(rights).toBe(steps * shape.fragmentsN);
    expect(panelA.every((n) => n === 1)).toBe(true);
    expect(panelB.every((n) => n === 1)).toBe(true);
  });

  it('accumulates every (step, row block, column block) product once, and stores every result once', () => {
    const products = calls(source, 'subgroupMatrixMultiplyAccumulate').map((args) => args.join(' '));
    const want: string[] = [];
    for (let s = 0; s < steps; s++) {
      for (let i = 0; i < shape.fragmentsM; i++) {
        for (let j = 0; j < shape.fragmentsN; j++) want.push(`left_${s}_${i} right_${s}_${j} acc_${i}_${j}`);
      }
    }
    expect(products.sort()).toEqual(want.sort());
    const tile = new Uint8Array(rows * cols);
    const stores = calls(source, 'subgroupMatrixStore');
    expect(stores).toHaveLength(shape.fragmentsM * shape.fragmentsN);
    for (const [pointer, offset, , colMajor, stride] of stores) {
      expect(pointer).toBe('&result_tile');
      expect(colMajor).toBe('false');
      cover(tile, uint(offset), false, uint(stride), M, N);
    }
    expect(tile.every((n) => n === 1)).toBe(true);
  });

  it('stages whole panels, masks the output edge and adds the bias only when bound', () => {
    expect(source).toContain(`for (var s = lid.x; s < ${(rows * depth) / 4}u; s += ${shape.lanes}u)`);
    expect(source).toContain(`for (var s = lid.x; s < ${(cols * depth) / 4}u; s += ${shape.lanes}u)`);
    expect(source).toContain(`for (var k0 = 0u; k0 < params.k; k0 += ${depth}u)`);
    expect(source).toContain('if (row < params.m && col < params.n)');
    expect(source.includes('bias[col]')).toBe(shape.bias);
    expect(source.includes('var<storage, read> bias')).toBe(shape.bias);
    expect(source.match(/workgroupBarrier\(\)/g)).toHaveLength(4);
  });
});

describe('subgroupMatrixSource refusals and keys', () => {
  it('refuses a configuration that does not accumulate in f32 or whose inputs are not the dtype', () => {
    const half = { componentType: 'f16', resultComponentType: 'f16', M: 16, N: 16, K: 16 } as const;
    expect(() => subgroupMatrixSource({ ...shapeFor(configs[0], 0), config: half })).toThrow(/f32 result/);
    expect(() => subgroupMatrixSource({ ...shapeFor(configs[0], 0), dtype: 'f32' })).toThrow(/f32 inputs/);
  });

  it('keys differ for everything that changes the WGSL', () => {
    const base = shapeFor(configs[0], 0);
    const keys = new Set(
      [
        base,
        { ...base, lanes: 64 },
        { ...base, bias: false },
        { ...base, a: { vector: false, kContiguous: false } },
        { ...base, config: configs[3] },
        { ...base, emulated: true },
      ].map(subgroupMatrixKey),
    );
    expect(keys.size).toBe(6);
  });

  it('emulated, it declares no subgroup matrices and enables only f16', () => {
    const source = subgroupMatrixSource({ ...shapeFor(configs[0], 0), emulated: true });
    expect(source).not.toContain('subgroup_matrix');
    expect(source).not.toContain('enable subgroups');
    expect(source.startsWith('enable f16;')).toBe(true);
  });
});

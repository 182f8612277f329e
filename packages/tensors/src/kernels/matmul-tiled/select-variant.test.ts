import { describe, expect, it } from 'vitest';
import { type AdapterClass, tuningFor } from '../../device/adapter-class.js';
import {
  type MatmulCapabilities,
  type MatmulProblemSummary,
  type SubgroupMatrixCapabilities,
  selectMatmulVariant,
} from './select-variant.js';

/** A fake adapter: only capabilities, no vendor name anywhere. */
function caps(
  adapterClass: AdapterClass,
  features: string[],
  overrides: Partial<Omit<MatmulCapabilities, 'features'>> = {},
): MatmulCapabilities {
  return {
    adapterClass,
    features: new Set(features),
    subgroupMinSize: 32,
    maxComputeWorkgroupStorageSize: 16384,
    maxComputeInvocationsPerWorkgroup: 256,
    tuning: tuningFor(adapterClass),
    ...overrides,
  };
}

const training: MatmulProblemSummary = {
  dtype: 'f32',
  rows: 1024,
  cols: 512,
  folded: true,
  transposeA: false,
  chunked: false,
};

describe('selectMatmulVariant', () => {
  it('keeps the register kernel on software adapters whatever they expose', () => {
    const all = ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix'];
    expect(selectMatmulVariant(caps('software', all), training).variant).toBe('register');
    expect(selectMatmulVariant(caps('software', all), { ...training, dtype: 'f16' }).variant).toBe(
      'register',
    );
  });

  it('takes the small-rows kernel for a few folded rows, on every class', () => {
    for (const adapterClass of ['software', 'integrated', 'discrete'] as const) {
      const limit = tuningFor(adapterClass).matmulSmallRowsMax;
      const few = { ...training, rows: limit };
      expect(selectMatmulVariant(caps(adapterClass, ['subgroups']), few).variant).toBe('small-rows');
      // Not when a is transposed or batched against a batched b (the small-rows kernel takes neither).
      expect(selectMatmulVariant(caps(adapterClass, []), { ...few, transposeA: true }).variant).not.toBe(
        'small-rows',
      );
      expect(selectMatmulVariant(caps(adapterClass, []), { ...few, folded: false }).variant).not.toBe(
        'small-rows',
      );
    }
  });

  it('gives GPUs the workgroup-tiled kernel when workgroup memory and invocations allow', () => {
    for (const adapterClass of ['integrated', 'discrete'] as const) {
      expect(selectMatmulVariant(caps(adapterClass, []), training).variant).toBe('workgroup-tiled');
      expect(
        selectMatmulVariant(caps(adapterClass, ['shader-f16']), { ...training, dtype: 'f16' }).variant,
      ).toBe('workgroup-tiled');
    }
  });

  it('takes 128 x 128 tiles for large products where 16 KiB of workgroup memory is allowed', () => {
    const big = { ...training, rows: 4096, cols: 4096 };
    expect(selectMatmulVariant(caps('discrete', []), big)).toMatchObject({
      variant: 'workgroup-tiled',
      perThread: 8,
    });
    expect(selectMatmulVariant(caps('discrete', []), training)).toMatchObject({ perThread: 4 });
    const tight = caps('integrated', [], { maxComputeWorkgroupStorageSize: 16383 });
    expect(selectMatmulVariant(tight, big)).toMatchObject({ variant: 'workgroup-tiled', perThread: 4 });
  });

  it('falls back by capability: subgroups when workgroup memory is short, else the register kernel', () => {
    const tiny = { maxComputeWorkgroupStorageSize: 4096 };
    const few = { maxComputeInvocationsPerWorkgroup: 128 };
    const sub = selectMatmulVariant(caps('discrete', ['subgroups'], tiny), training);
    expect(sub).toMatchObject({ variant: 'subgroup-tiled', lanes: 32, rows: 8 });
    expect(selectMatmulVariant(caps('discrete', ['subgroups'], few), training).variant).toBe(
      'subgroup-tiled',
    );
    expect(selectMatmulVariant(caps('discrete', [], tiny), training).variant).toBe('register');
    // The subgroups feature alone is not enough: the subgroup size must be known and >= 4.
    expect(
      selectMatmulVariant(caps('discrete', ['subgroups'], { ...tiny, subgroupMinSize: 0 }), training).variant,
    ).toBe('register');
  });

  it('honours a tuning that prefers subgroups only where the adapter has them', () => {
    const tuning = { ...tuningFor('integrated'), matmulKernel: 'subgroup' as const };
    const withSubgroups = selectMatmulVariant(
      caps('integrated', ['subgroups'], { tuning, subgroupMinSize: 16 }),
      training,
    );
    expect(withSubgroups).toMatchObject({ variant: 'subgroup-tiled', lanes: 16, rows: 8 });
    // A subgroup size that is not a power of two is rounded down; rows never exceed lanes.
    const odd = selectMatmulVariant(
      caps('integrated', ['subgroups'], { tuning, subgroupMinSize: 6 }),
      training,
    );
    expect(odd).toMatchObject({ variant: 'subgroup-tiled', lanes: 4, rows: 4 });
    const without = selectMatmulVariant(caps('integrated', [], { tuning }), training);
    expect(without.variant).toBe('workgroup-tiled');
    expect(without.reason).toMatch(/no usable subgroups/);
  });

  it('keeps chunked operands, and f16 without shader-f16, on the register kernel', () => {
    expect(selectMatmulVariant(caps('discrete', ['subgroups']), { ...training, chunked: true }).variant).toBe(
      'register',
    );
    expect(selectMatmulVariant(caps('discrete', ['subgroups']), { ...training, dtype: 'f16' }).variant).toBe(
      'register',
    );
  });
});

describe('selectMatmulVariant with subgroup matrices (fake adapters)', () => {
  const matrixFeature = 'chromium-experimental-subgroup-matrix';
  const f16Config = { componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 } as const;
  const f32Config = { componentType: 'f32', resultComponentType: 'f32', M: 8, N: 8, K: 8 } as const;
  const passed = { passed: true, reason: 'products match' };
  const matrices = (
    check: SubgroupMatrixCapabilities['check'],
    configs: SubgroupMatrixCapabilities['configs'] = [f16Config, f32Config],
  ): Partial<MatmulCapabilities> => ({ subgroupMatrix: { configs, subgroupMaxSize: 32, check } });
  const gpu = (features: string[], extra: Partial<MatmulCapabilities>) =>
    caps('discrete', ['shader-f16', 'subgroups', ...features], extra);

  it('picks the subgroup-matrix kernel for a dtype whose self-check passed, with its configuration', () => {
    const chosen = selectMatmulVariant(gpu([matrixFeature], matrices({ f16: passed, f32: passed })), {
      ...training,
      dtype: 'f16',
    });
    expect(chosen.variant).toBe('subgroup-matrix');
    expect(chosen.subgroupMatrix).toEqual({ config: f16Config, lanes: 32 });
    expect(chosen.reason).toContain('f16 16x16x16 -> f32');
    expect(chosen.reason).toContain('self-check passed');
    const single = selectMatmulVariant(gpu([matrixFeature], matrices({ f32: passed })), training);
    expect(single.subgroupMatrix?.config).toEqual(f32Config);
    // Also on the integrated class, whose tuning prefers the workgroup kernel.
    const integrated = caps('integrated', ['subgroups', matrixFeature], matrices({ f32: passed }));
    expect(selectMatmulVariant(integrated, training).variant).toBe('subgroup-matrix');
  });

  it('never picks an unchecked or failed kernel: the fallback names why', () => {
    const unchecked = selectMatmulVariant(gpu([matrixFeature], matrices({})), training);
    expect(unchecked.variant).toBe('workgroup-tiled');
    expect(unchecked.reason).toContain(
      'subgroup-matrix not used: f32 8x8x8 -> f32 has not been self-checked',
    );
    const failed = { passed: false, reason: 'product 1: element 7 is 0.5, the float64 reference 0.25' };
    const rejected = selectMatmulVariant(
      gpu([matrixFeature], matrices({ f32: failed, f16: passed })),
      training,
    );
    expect(rejected.variant).toBe('workgroup-tiled');
    expect(rejected.reason).toContain('failed the self-check: product 1: element 7');
    // The other dtype's pass does not carry over.
    const f16 = selectMatmulVariant(gpu([matrixFeature], matrices({ f32: failed, f16: passed })), {
      ...training,
      dtype: 'f16',
    });
    expect(f16.variant).toBe('subgroup-matrix');
  });

  it('needs the feature itself, usable configurations and room for the tile', () => {
    // Configurations without the feature (a stale adapter info) are not enough; no reason is added.
    const noFeature = selectMatmulVariant(gpu([], matrices({ f32: passed })), training);
    expect(noFeature.variant).toBe('workgroup-tiled');
    expect(noFeature.reason).not.toContain('subgroup-matrix');
    const halfResult = [{ ...f16Config, resultComponentType: 'f16' } as const];
    const accumulatesInHalf = selectMatmulVariant(
      gpu([matrixFeature], matrices({ f16: passed }, halfResult)),
      {
        ...training,
        dtype: 'f16',
      },
    );
    expect(accumulatesInHalf.variant).toBe('workgroup-tiled');
    expect(accumulatesInHalf.reason).toContain('do not accumulate in f32');
    const small = gpu([matrixFeature], {
      ...matrices({ f32: passed }),
      maxComputeWorkgroupStorageSize: 4096,
    });
    expect(selectMatmulVariant(small, training).variant).not.toBe('subgroup-matrix');
    expect(selectMatmulVariant(small, training).reason).toContain('bytes of workgroup memory');
    const noLanes = gpu([matrixFeature], {
      subgroupMatrix: { configs: [f32Config], subgroupMaxSize: 0, check: { f32: passed } },
    });
    expect(selectMatmulVariant(noLanes, training).reason).toContain('subgroupMaxSize 0');
  });

  it('keeps the earlier rules first: software class, few rows, chunks, f16 without shader-f16', () => {
    const all = matrices({ f16: passed, f32: passed });
    expect(selectMatmulVariant(caps('software', [matrixFeature, 'shader-f16'], all), training).variant).toBe(
      'register',
    );
    const discrete = gpu([matrixFeature], all);
    expect(selectMatmulVariant(discrete, { ...training, rows: 2 }).variant).toBe('small-rows');
    expect(selectMatmulVariant(discrete, { ...training, chunked: true }).variant).toBe('register');
    const noHalf = caps('discrete', ['subgroups', matrixFeature], all);
    expect(selectMatmulVariant(noHalf, { ...training, dtype: 'f16' }).variant).toBe('register');
  });
});

import { describe, expect, it } from 'vitest';
import { type AdapterClass, tuningFor } from '../../device/adapter-class.js';
import { type MatmulCapabilities, type MatmulProblemSummary, selectMatmulVariant } from './select-variant.js';

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

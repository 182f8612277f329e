import { describe, expect, it } from 'vitest';
import {
  chooseSubgroupMatrixConfig,
  describeSubgroupMatrixConfig,
  parseSubgroupMatrixConfigs,
  type SubgroupMatrixConfig,
} from './subgroup-matrix-config.js';

const config = (
  componentType: SubgroupMatrixConfig['componentType'],
  resultComponentType: SubgroupMatrixConfig['resultComponentType'],
  M: number,
  N: number,
  K: number,
): SubgroupMatrixConfig => ({ componentType, resultComponentType, M, N, K });

describe('parseSubgroupMatrixConfigs', () => {
  it('reads the adapter list, an iterable of plain objects, in order', () => {
    const raw = [
      { componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 },
      { componentType: 'f32', resultComponentType: 'f32', M: 8, N: 8, K: 8 },
    ];
    const parsed = parseSubgroupMatrixConfigs(new Set(raw));
    expect(parsed.configs).toEqual([config('f16', 'f32', 16, 16, 16), config('f32', 'f32', 8, 8, 8)]);
    expect(parsed.ignored).toEqual([]);
  });

  it('has no configurations where the adapter reports none or nothing', () => {
    expect(parseSubgroupMatrixConfigs(undefined)).toEqual({ configs: [], ignored: [] });
    expect(parseSubgroupMatrixConfigs(null)).toEqual({ configs: [], ignored: [] });
    expect(parseSubgroupMatrixConfigs([])).toEqual({ configs: [], ignored: [] });
  });

  it('leaves out, and names, entries it does not understand', () => {
    const parsed = parseSubgroupMatrixConfigs([
      { componentType: 'bf16', resultComponentType: 'f32', M: 16, N: 16, K: 16 },
      { componentType: 'f16', resultComponentType: 'f32', M: 16, N: 0, K: 16 },
      { componentType: 'f16', resultComponentType: 'f32', M: 16.5, N: 16, K: 16 },
      null,
      { componentType: 'i8', resultComponentType: 'i32', M: 8, N: 8, K: 32 },
    ]);
    expect(parsed.configs).toEqual([config('i8', 'i32', 8, 8, 32)]);
    expect(parsed.ignored).toHaveLength(4);
    expect(parsed.ignored[0]).toContain('subgroupMatrixConfigs[0]');
    expect(parsed.ignored[0]).toContain('bf16');
    expect(parsed.ignored[1]).toContain('subgroupMatrixConfigs[1]');
    expect(parsed.ignored[3]).toContain('subgroupMatrixConfigs[3]');
    expect(parseSubgroupMatrixConfigs(42).ignored[0]).toContain('not a list');
  });
});

describe('chooseSubgroupMatrixConfig', () => {
  const offered = [
    config('i8', 'i32', 8, 8, 32),
    config('f16', 'f16', 16, 16, 16),
    config('f16', 'f32', 16, 8, 16),
    config('f16', 'f32', 16, 16, 16),
    config('f32', 'f32', 8, 8, 8),
  ];

  it('takes the first listed configuration of the dtype that accumulates in f32', () => {
    expect(chooseSubgroupMatrixConfig(offered, 'f16').config).toEqual(config('f16', 'f32', 16, 8, 16));
    expect(chooseSubgroupMatrixConfig(offered, 'f32').config).toEqual(config('f32', 'f32', 8, 8, 8));
  });

  it('refuses f16 accumulation, other input types and an empty list, saying why', () => {
    const halfOnly = chooseSubgroupMatrixConfig([config('f16', 'f16', 8, 8, 8)], 'f16');
    expect(halfOnly.config).toBeNull();
    expect('reason' in halfOnly && halfOnly.reason).toContain('do not accumulate in f32');
    const integers = chooseSubgroupMatrixConfig([config('i8', 'i32', 8, 8, 32)], 'f32');
    expect('reason' in integers && integers.reason).toContain('no subgroup-matrix configuration takes f32');
    const none = chooseSubgroupMatrixConfig([], 'f32');
    expect('reason' in none && none.reason).toContain('lists no subgroup-matrix configuration');
  });

  it('describes a configuration by its types and sizes', () => {
    expect(describeSubgroupMatrixConfig(config('f16', 'f32', 16, 8, 16))).toBe('f16 16x8x16 -> f32');
  });
});

/**
 * The adapter's subgroup-matrix configurations (`GPUAdapterInfo.subgroupMatrixConfigs`, Dawn's
 * `chromium-experimental-subgroup-matrix`) and the one a matmul of a given dtype can use.
 *
 * A configuration says the adapter multiplies an M x K `componentType` matrix by a K x N one into
 * an M x N `resultComponentType` matrix, one subgroup at a time (tensor cores and the like). webtune
 * takes one only where its inputs are the product's own dtype (f16 or f32, so operands are staged
 * without conversion loss) and its result is f32: an f16 result would accumulate in f16, which at
 * K in the thousands loses digits the other kernels keep.
 */
export type SubgroupMatrixComponent = 'f32' | 'f16' | 'u32' | 'i32' | 'u8' | 'i8';

export interface SubgroupMatrixConfig {
  componentType: SubgroupMatrixComponent;
  resultComponentType: SubgroupMatrixComponent;
  M: number;
  N: number;
  K: number;
}

const COMPONENTS: readonly SubgroupMatrixComponent[] = ['f32', 'f16', 'u32', 'i32', 'u8', 'i8'];

/**
 * Reads `adapter.info.subgroupMatrixConfigs` (absent or not an array: none). Entries with an
 * unknown component type or dimensions that are not positive integers up to 256 are left out and
 * named in `ignored`, so a browser or driver reporting something new never breaks the selection.
 */
export function parseSubgroupMatrixConfigs(raw: unknown): {
  configs: SubgroupMatrixConfig[];
  ignored: string[];
} {
  const configs: SubgroupMatrixConfig[] = [];
  const ignored: string[] = [];
  if (raw === undefined || raw === null) return { configs, ignored };
  if (typeof (raw as Iterable<unknown>)[Symbol.iterator] !== 'function') {
    return { configs, ignored: [`subgroupMatrixConfigs is not a list (${typeof raw})`] };
  }
  let index = 0;
  for (const entry of raw as Iterable<unknown>) {
    const at = `subgroupMatrixConfigs[${index++}]`;
    const record = (entry ?? {}) as Record<string, unknown>;
    const componentType = record.componentType as SubgroupMatrixComponent;
    const resultComponentType = record.resultComponentType as SubgroupMatrixComponent;
    if (!COMPONENTS.includes(componentType) || !COMPONENTS.includes(resultComponentType)) {
      ignored.push(
        `${at}: component types ${String(record.componentType)} -> ${String(record.resultComponentType)} are not known`,
      );
      continue;
    }
    const dims = (['M', 'N', 'K'] as const).map((name) => record[name]);
    if (!dims.every((d) => typeof d === 'number' && Number.isInteger(d) && d > 0 && d <= 256)) {
      ignored.push(`${at}: M, N, K ${dims.map(String).join(', ')} are not integers in 1..256`);
      continue;
    }
    const [M, N, K] = dims as number[];
    configs.push({ componentType, resultComponentType, M, N, K });
  }
  return { configs, ignored };
}

export function describeSubgroupMatrixConfig(config: SubgroupMatrixConfig): string {
  return `${config.componentType} ${config.M}x${config.N}x${config.K} -> ${config.resultComponentType}`;
}

/**
 * The configuration for a product of `dtype`, or why there is none. Of the usable ones (inputs of
 * the dtype, f32 result) the first
 * listed wins: Vulkan lists a driver's preferred configurations first and Dawn keeps that order.
 */
export function chooseSubgroupMatrixConfig(
  configs: readonly SubgroupMatrixConfig[],
  dtype: 'f32' | 'f16',
): { config: SubgroupMatrixConfig } | { config: null; reason: string } {
  if (configs.length === 0)
    return { config: null, reason: 'the adapter lists no subgroup-matrix configuration' };
  const ofDtype = configs.filter((c) => c.componentType === dtype);
  if (ofDtype.length === 0) {
    return {
      config: null,
      reason: `no subgroup-matrix configuration takes ${dtype} inputs (${configs.map(describeSubgroupMatrixConfig).join(', ')})`,
    };
  }
  const usable = ofDtype.filter((c) => c.resultComponentType === 'f32');
  if (usable.length === 0) {
    return {
      config: null,
      reason: `the ${dtype} subgroup-matrix configurations do not accumulate in f32 (${ofDtype.map(describeSubgroupMatrixConfig).join(', ')})`,
    };
  }
  return { config: usable[0] };
}

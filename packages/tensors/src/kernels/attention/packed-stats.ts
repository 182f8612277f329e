import type { Device } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import { storageBuffersPerStage } from '../shared/joint-binding.js';
import type { KernelSourceSpec } from '../shared/wgsl.js';

/**
 * Storage buffers the attention backward's dk/dv pass binds when it reads its two per-row
 * statistics apart: q, k, v, dO, logsumexp, delta, the padding mask, dk and dv.
 */
export const SEPARATE_STATS_BINDINGS = 9;

/**
 * Whether the backward reads logsumexp and delta from one packed buffer (`stats`, vec2 per query
 * row: x the logsumexp, y delta). Chosen by capability: devices with fewer storage buffers per
 * stage than the separate form binds (WebGPU's default is 8) get it; the others keep the separate
 * buffers. Both read the same values, so the gradients are bit-identical.
 */
export function packedAttentionStats(device: Device): boolean {
  return storageBuffersPerStage(device) < SEPARATE_STATS_BINDINGS;
}

/**
 * A backward kernel's spec reading the packed `stats` buffer in place of its `lse` and `delta`
 * bindings: the two bindings become one `stats: array<vec2<f32>>` (at the first one's place), and
 * every `lse[i]` / `delta[i]` read becomes `stats[i].x` / `stats[i].y`. Index expressions hold no
 * brackets in these kernels; one that did would be left behind, so it is refused.
 */
export function packedStatsSpec(spec: KernelSourceSpec, lse: string, delta: string): KernelSourceSpec {
  const storage = spec.storage
    .filter((binding) => binding.name !== delta)
    .map((binding) =>
      binding.name === lse ? { name: 'stats', type: 'vec2<f32>' as const, access: 'read' as const } : binding,
    );
  if (storage.length !== spec.storage.length - 1) {
    throw new TensorError(`packedStatsSpec: the kernel binds no "${lse}" and "${delta}" to pack`);
  }
  const rewrite = (wgsl: string): string => {
    const out = wgsl
      .replace(new RegExp(`\\b${lse}\\[([^\\[\\]]*)\\]`, 'g'), 'stats[$1].x')
      .replace(new RegExp(`\\b${delta}\\[([^\\[\\]]*)\\]`, 'g'), 'stats[$1].y');
    if (new RegExp(`\\b(${lse}|${delta})\\[`).test(out)) {
      throw new TensorError(`packedStatsSpec: a read of ${lse} or ${delta} has a nested index`);
    }
    return out;
  };
  return { ...spec, storage, body: rewrite(spec.body), helpers: spec.helpers && rewrite(spec.helpers) };
}

import type { Device, KernelLaunch } from '../device/device.js';
import { KERNELS } from './names.js';

/**
 * The named variant of a matmul, attention, packed-weight or decode pipeline, from its cache key (what the GPU
 * benchmark reports per case); null for other kernels.
 * - matmul: 'small-rows', 'register', 'workgroup-tiled', 'subgroup-tiled', 'subgroup-matrix'
 *   (kernels/matmul-tiled/select-variant.ts says when each is chosen);
 * - attention forward: 'workgroup-tiled' (GPUs, kernels/attention-tiled/), 'subgroup-shared'
 *   (rows shared with subgroupBroadcast), 'key-lanes', 'prompt-chunked' (promptAttention), 'unrolled' or
 *   'looped' over the head dim; attention backward: 'workgroup-tiled', 'subgroup-shared' or 'lanes';
 * - packed frozen weights by kernel and format, fused decode steps by kind.
 */
export function kernelVariant(key: string): string | null {
  const parts = key.split(':');
  if (parts[0] === KERNELS.matmul) {
    if (parts[1] === 'tiled') return `matmul ${parts[2]}-tiled`;
    if (parts[1] === 'sgmatrix') return 'matmul subgroup-matrix';
    if (parts[1] === 'small') return 'matmul small-rows';
    return 'matmul register';
  }
  if (parts[0] === KERNELS.attention) {
    if (parts[1] === 'tiled') return 'attention workgroup-tiled';
    if (parts[1] === 'key-lanes') return 'attention key-lanes';
    if (parts[1] === 'prompt') return 'attention prompt-chunked';
    const kind = parts.at(-1);
    return `attention ${kind === 'shared' ? 'subgroup-shared' : kind}`;
  }
  if (parts[0] === KERNELS.attentionBackward) {
    if (parts[1] === 'tiled') return 'attention-backward workgroup-tiled';
    return `attention-backward ${parts.at(-1) === 'sg' ? 'subgroup-shared' : 'lanes'}`;
  }
  // Frozen packed weights (forward, input gradient, unpack, gather) by format.
  if (parts[0].startsWith(KERNELS.packedMatmul) || parts[0] === KERNELS.packedGather) {
    return `${parts[0]} ${parts[1] ?? ''}`.trim();
  }
  // Fused decode steps: matvec (subgroup or workgroup lanes), attention over the cache, sampling.
  if (parts[0] === KERNELS.decode) {
    return parts[1] === 'matvec'
      ? `decode matvec ${parts.at(-1) === 'sg' ? 'subgroup' : 'workgroup'}`
      : `decode ${parts[1]}`;
  }
  return null;
}

/**
 * Counts the dispatches of each matmul and attention variant on `device` until the returned
 * function is called, which stops counting and returns the counts ({ 'matmul workgroup-tiled': 84, ... }).
 */
export function countKernelVariants(device: Device): () => Record<string, number> {
  const counts: Record<string, number> = {};
  const original = device.dispatch;
  device.dispatch = function (this: Device, launch: KernelLaunch) {
    const variant = kernelVariant(launch.key);
    if (variant) counts[variant] = (counts[variant] ?? 0) + 1;
    return original.call(this, launch);
  };
  return () => {
    device.dispatch = original;
    return { ...counts };
  };
}

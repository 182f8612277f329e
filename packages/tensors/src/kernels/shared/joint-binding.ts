import type { Device } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { KernelSourceSpec } from './wgsl.js';

/** Storage buffers a kernel may bind per shader stage on this device (WebGPU's default is 8). */
export function storageBuffersPerStage(device: Device): number {
  // device.info.limits is a plain object (cheap on a hot path); the GPU's own object otherwise.
  return (
    device.info?.limits?.maxStorageBuffersPerShaderStage ?? device.gpu.limits.maxStorageBuffersPerShaderStage
  );
}

/**
 * A kernel's spec reading two small read-only arrays from one binding, for devices that hold fewer
 * storage buffers per stage than the kernel binds otherwise: bindings `first` and `second` become
 * one `joint` binding (at `first`'s place) that holds first's values, then second's from element
 * `offset` (a WGSL u32 expression); every `first[i]` read becomes `joint[i]` and every
 * `second[i]` becomes `joint[offset + (i)]`. Index expressions must hold no brackets; a read that
 * would be left behind is refused.
 */
export function jointBindingSpec(
  spec: KernelSourceSpec,
  first: string,
  second: string,
  joint: string,
  offset: string,
): KernelSourceSpec {
  const firstBinding = spec.storage.find((binding) => binding.name === first);
  const secondBinding = spec.storage.find((binding) => binding.name === second);
  const storage = spec.storage
    .filter((binding) => binding.name !== second)
    .map((binding) => (binding.name === first ? { ...binding, name: joint } : binding));
  if (
    !firstBinding ||
    !secondBinding ||
    storage.length !== spec.storage.length - 1 ||
    firstBinding.access !== 'read' ||
    secondBinding.access !== 'read' ||
    firstBinding.type !== secondBinding.type
  ) {
    throw new TensorError(
      `jointBindingSpec: the kernel binds no read-only "${first}" and "${second}" to join`,
    );
  }
  const rewrite = (wgsl: string): string => {
    const out = wgsl
      .replace(new RegExp(`\\b${first}\\[([^\\[\\]]*)\\]`, 'g'), `${joint}[$1]`)
      .replace(new RegExp(`\\b${second}\\[([^\\[\\]]*)\\]`, 'g'), `${joint}[${offset} + ($1)]`);
    if (new RegExp(`\\b(${first}|${second})\\[`).test(out)) {
      throw new TensorError(`jointBindingSpec: a read of ${first} or ${second} has a nested index`);
    }
    return out;
  };
  return { ...spec, storage, body: rewrite(spec.body), helpers: spec.helpers && rewrite(spec.helpers) };
}

/**
 * A new f32 tensor holding `first`'s values, then `second`'s (two buffer copies recorded in
 * order with the kernels), for a kernel built by jointBindingSpec. The caller disposes it after
 * its dispatch. Copied at each use, so weights that change between calls are read as they are.
 */
export function jointTensor(device: Device, first: Tensor, second: Tensor): Tensor {
  if (first.dtype !== 'f32' || second.dtype !== 'f32') {
    throw new TensorError(`jointTensor: ${first.describe()} and ${second.describe()} must be f32`);
  }
  const joint = device.empty([first.size + second.size], 'f32');
  const target = joint.binding('jointTensor');
  let at = 0;
  for (const part of [first, second]) {
    const source = part.binding('jointTensor');
    const size = part.size * 4;
    device.copyBuffer(
      { buffer: source.buffer, offset: source.offset, size },
      { buffer: target.buffer, offset: target.offset + at, size },
    );
    at += size;
  }
  return joint;
}

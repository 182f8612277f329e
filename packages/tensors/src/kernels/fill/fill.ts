import type { Device } from '../../device/device.js';
import { grid } from '../../device/device.js';
import type { DType } from '../../tensor/dtype.js';
import type { Shape } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { kernelSource, workgroupsFor } from '../wgsl.js';

const FIELDS = [
  { name: 'n', type: 'u32' as const },
  { name: 'start', type: 'f32' as const },
  { name: 'step', type: 'f32' as const },
  { name: 'offset', type: 'u32' as const },
];

/** Writes start + step * i into every element i of `target` (a constant when step is 0). */
export function fillRange(target: Tensor, start: number, step: number): Tensor {
  const device = target.device;
  const wg = device.tuning.elementwiseWorkgroup;
  const dtype = target.dtype;
  const value =
    dtype === 'i32' || dtype === 'u32'
      ? `${dtype}(i32(params.start) + i32(params.step) * i32(index + params.offset))`
      : `${dtype}(params.start + params.step * f32(index + params.offset))`;
  for (const chunk of target.chunks) {
    device.dispatch({
      key: `${KERNELS.fill}:${dtype}`,
      source: () =>
        kernelSource({
          storage: [{ name: 'out', type: dtype, access: 'read_write' }],
          uniforms: FIELDS,
          workgroupSize: wg,
          body: `
  let index = flat_workgroup(wid, nwg) * WG + lid.x;
  if (index >= params.n) { return; }
  out[index] = ${value};`,
        }),
      bindings: [{ buffer: chunk.buffer, offset: 0, size: chunk.buffer.size }],
      uniforms: { fields: FIELDS, values: { n: chunk.elements, start, step, offset: chunk.elementOffset } },
      workgroups: grid(workgroupsFor(chunk.elements, wg), device.maxWorkgroupsPerDimension),
    });
  }
  return target;
}

export function full<D extends DType>(device: Device, shape: Shape, value: number, dtype: D): Tensor<D> {
  return fillRange(device.empty(shape, dtype), value, 0) as Tensor<D>;
}

import type { Device } from '../../device/device.js';
import type { DType } from '../../tensor/dtype.js';
import type { Shape } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { elementwiseGrid, elementwiseLoop } from '../shared/elementwise-loop.js';
import { kernelSource } from '../shared/wgsl.js';

const FIELDS = [
  { name: 'n', type: 'u32' as const },
  { name: 'start', type: 'f32' as const },
  { name: 'step', type: 'f32' as const },
  { name: 'offset', type: 'u32' as const },
];

/** WGSL for the value of element `position` (a u32 or vec4u expression) of type `type`. */
function valueAt(dtype: DType, position: string, vector: boolean): string {
  const wrap = (scalar: string) => (vector ? `vec4<${scalar}>` : scalar);
  if (dtype === 'i32' || dtype === 'u32') {
    return `${wrap(dtype)}(${wrap('i32')}(i32(params.start)) + i32(params.step) * ${wrap('i32')}(${position}))`;
  }
  return `${wrap(dtype)}(params.start + params.step * ${wrap('f32')}(${position}))`;
}

/** Writes start + step * i into every element i of `target` (a constant when step is 0). */
export function fillRange(target: Tensor, start: number, step: number): Tensor {
  const device = target.device;
  const wg = device.tuning.elementwiseWorkgroup;
  const perInvocation = device.tuning.elementwisePerInvocation;
  const dtype = target.dtype;
  for (const chunk of target.chunks) {
    // Four elements per item (vec4 stores) when the chunk holds a multiple of four.
    const vector = chunk.elements % 4 === 0;
    const items = vector ? chunk.elements / 4 : chunk.elements;
    const position = vector
      ? 'vec4u(4u * index + params.offset) + vec4u(0u, 1u, 2u, 3u)'
      : 'index + params.offset';
    device.dispatch({
      key: `${KERNELS.fill}:${dtype}:${vector ? 4 : 1}:${perInvocation}`,
      source: () =>
        kernelSource({
          storage: [{ name: 'out', type: vector ? `vec4<${dtype}>` : dtype, access: 'read_write' }],
          uniforms: FIELDS,
          workgroupSize: wg,
          body: elementwiseLoop(
            perInvocation,
            (index) => `out[${index}] = ${valueAt(dtype, position.replaceAll('index', index), vector)};`,
          ),
        }),
      bindings: [{ buffer: chunk.buffer, offset: 0, size: chunk.buffer.size }],
      uniforms: { fields: FIELDS, values: { n: items, start, step, offset: chunk.elementOffset } },
      workgroups: elementwiseGrid(device, items, perInvocation),
    });
  }
  return target;
}

/** A tensor of `shape` with every element equal to `value`. */
export function full<D extends DType>(device: Device, shape: Shape, value: number, dtype: D): Tensor<D> {
  return fillRange(device.empty(shape, dtype), value, 0) as Tensor<D>;
}

import { TensorError } from '../../device/errors.js';
import type { DType } from '../../tensor/dtype.js';
import { formatShape, sameShape } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { elementwiseGrid, elementwiseLoop } from './elementwise-loop.js';
import { kernelSource, type StorageBinding } from './wgsl.js';

export interface ElementwiseMap {
  /** Pipeline key prefix: kernel name and everything else that changes the WGSL. */
  key: string;
  /** The op, for error messages. */
  op: string;
  /** Named inputs of one shape and one float dtype; in the body each is a value of type T. */
  inputs: Record<string, Tensor>;
  /** Names of the outputs; the body must define `let <name> = ...;` for each. */
  outputs: readonly string[];
  /** WGSL statements computing the outputs in f32 (T is f32 or vec4<f32>). */
  body: string;
  /** Module-scope WGSL the body needs (given whether T is a vector). */
  helpers?: (vector: boolean) => string;
}

const FIELDS = [{ name: 'n', type: 'u32' as const }];

/**
 * Runs an elementwise function of several same-shape float tensors with several outputs, in one
 * dispatch per chunk: vec4 loads where a chunk's length allows, f16 computed in f32. Returns the
 * outputs in the order of `outputs`.
 */
export function elementwiseMap(spec: ElementwiseMap): Tensor[] {
  const named = Object.entries(spec.inputs);
  const [, first] = named[0];
  const device = first.device;
  const dtype: DType = first.dtype;
  for (const [name, t] of named) {
    t.assertLive();
    if (t.device !== device) throw new TensorError(`${spec.op}: ${name} lives on another device`);
    if (t.dtype !== dtype || (dtype !== 'f32' && dtype !== 'f16')) {
      throw new TensorError(
        `${spec.op}: ${name} ${t.describe()} must be f32 or f16 like ${first.describe()}`,
      );
    }
    if (!sameShape(t.shape, first.shape)) {
      throw new TensorError(
        `${spec.op}: ${name} ${formatShape(t.shape)} must have the shape ${formatShape(first.shape)}`,
      );
    }
  }
  const outputs = spec.outputs.map(() => device.empty(first.shape, dtype));
  if (first.size === 0) return outputs;
  const perInvocation = device.tuning.elementwisePerInvocation;
  first.chunks.forEach((chunk, c) => {
    const vector = chunk.elements % 4 === 0;
    const computeType = vector ? 'vec4<f32>' : 'f32';
    const storageType = (vector ? `vec4<${dtype}>` : dtype) as StorageBinding['type'];
    const storeType = vector ? `vec4<${dtype}>` : dtype;
    const items = vector ? chunk.elements / 4 : chunk.elements;
    const loads = named.map(([name]) => `let ${name} = ${computeType}(in_${name}[index]);`).join(' ');
    const stores = spec.outputs.map((name) => `out_${name}[index] = ${storeType}(${name});`).join(' ');
    const body = spec.body.replace(/\bT\b/g, computeType);
    const bindings = [...named.map(([, t]) => t.chunks[c]), ...outputs.map((t) => t.chunks[c])];
    device.dispatch({
      key: `${spec.key}:${dtype}:${vector ? 4 : 1}:${perInvocation}`,
      source: () =>
        kernelSource({
          storage: [
            ...named.map(([name]) => ({ name: `in_${name}`, type: storageType, access: 'read' as const })),
            ...spec.outputs.map((name) => ({
              name: `out_${name}`,
              type: storageType,
              access: 'read_write' as const,
            })),
          ],
          uniforms: FIELDS,
          workgroupSize: device.tuning.elementwiseWorkgroup,
          helpers: spec.helpers?.(vector),
          body: elementwiseLoop(perInvocation, (index) =>
            `${loads} ${body} ${stores}`.replaceAll('[index]', `[${index}]`),
          ),
        }),
      bindings: bindings.map((b) => ({ buffer: b.buffer, offset: 0, size: b.buffer.size })),
      uniforms: { fields: FIELDS, values: { n: items } },
      workgroups: elementwiseGrid(device, items, perInvocation),
    });
  });
  return outputs;
}

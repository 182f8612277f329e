import { TensorError } from '../../device/errors.js';
import type { DType } from '../../tensor/dtype.js';
import {
  broadcastShapes,
  broadcastStrides,
  collapseDims,
  formatShape,
  type Shape,
  sameShape,
} from '../../tensor/shape.js';
import type { Chunk } from '../../tensor/storage.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { elementwiseGrid, elementwiseLoop } from '../shared/elementwise-loop.js';
import { MAX_RANK, padDims, stridedFields, stridedOffsets } from '../shared/strided.js';
import { kernelSource } from '../shared/wgsl.js';

type Operand = Tensor | number;

/** The uniform type that carries a number operand for values of `dtype`. */
function scalarUniformType(dtype: DType): 'f32' | 'i32' | 'u32' {
  return dtype === 'f16' ? 'f32' : dtype;
}

/**
 * WGSL function `is_true(c)` for a condition of `dtype` (scalar or vec4). Float conditions are
 * tested on their bits: `c != 0.0` is an ordered comparison on some drivers (NaN != 0 is false
 * on lavapipe), and NaN must count as true. Both zeros are false.
 */
function conditionHelper(dtype: DType, vector: boolean): string {
  const type = vector ? `vec4<${dtype}>` : dtype;
  const result = vector ? 'vec4<bool>' : 'bool';
  let body: string;
  if (dtype === 'u32' || dtype === 'i32') body = `return c != ${type}(0);`;
  else if (dtype === 'f32') {
    body = vector
      ? 'return (bitcast<vec4u>(c) & vec4u(0x7fffffffu)) != vec4u(0u);'
      : 'return (bitcast<u32>(c) & 0x7fffffffu) != 0u;';
  } else if (vector) {
    body =
      'let w = bitcast<vec2u>(c);\n  return (vec4u(w.x, w.x >> 16u, w.y, w.y >> 16u) & vec4u(0x7fffu)) != vec4u(0u);';
  } else {
    body = 'return (bitcast<u32>(vec2<f16>(c, 0.0h)) & 0x7fffu) != 0u;';
  }
  return `fn is_true(c: ${type}) -> ${result} {\n  ${body}\n}`;
}

function describeOperand(operand: Operand): string {
  return typeof operand === 'number' ? `the number ${operand}` : operand.describe();
}

/**
 * `condition ? a : b` elementwise, with NumPy broadcasting of all three. The condition may have
 * any dtype; nonzero (NaN included) is true. `a` or `b` may be a number (at most one of them),
 * which takes the dtype of the other. The result has the dtype of `a` and `b`.
 */
export function where(condition: Tensor, a: Operand, b: Operand): Tensor {
  condition.assertLive();
  const device = condition.device;
  const tensors = [a, b].filter((t): t is Tensor => typeof t !== 'number');
  if (tensors.length === 0) {
    throw new TensorError('where: a or b must be a tensor (both are numbers, so the dtype is unknown)');
  }
  for (const t of tensors) {
    t.assertLive();
    if (t.device !== device) throw new TensorError('where: operands live on different devices');
  }
  const dtype = tensors[0].dtype;
  if (tensors.some((t) => t.dtype !== dtype)) {
    throw new TensorError(
      `where: a and b have different dtypes (${describeOperand(a)}, ${describeOperand(b)}); cast one first`,
    );
  }
  for (const operand of [a, b]) {
    if (typeof operand === 'number' && (dtype === 'i32' || dtype === 'u32') && !Number.isInteger(operand)) {
      throw new TensorError(`where: ${operand} is not an integer but the other operand is ${dtype}`);
    }
  }
  const shapeOf = (operand: Operand): Shape => (typeof operand === 'number' ? [] : operand.shape);
  let shape: number[];
  try {
    shape = broadcastShapes(broadcastShapes(condition.shape, shapeOf(a)), shapeOf(b));
  } catch {
    throw new TensorError(
      `where: condition ${formatShape(condition.shape)}, a ${formatShape(shapeOf(a))} and b ${formatShape(shapeOf(b))} cannot be broadcast together`,
    );
  }
  const out = device.empty(shape, dtype);
  if (out.size === 0) return out;

  const conditionType = condition.dtype;
  const scalarType = scalarUniformType(dtype);
  const fields = [
    { name: 'n', type: 'u32' as const },
    { name: 'a_value', type: scalarType },
    { name: 'b_value', type: scalarType },
  ];
  const values = { a_value: typeof a === 'number' ? a : 0, b_value: typeof b === 'number' ? b : 0 };
  const flat = [a, b].every((operand) => typeof operand === 'number' || sameShape(operand.shape, shape));
  const sameAsOutput = flat && sameShape(condition.shape, shape);
  const variant = `${conditionType}:${dtype}:${typeof a === 'number' ? 's' : 't'}${typeof b === 'number' ? 's' : 't'}`;

  if (sameAsOutput) {
    const chunkLists = [condition, ...tensors, out].map((t) => t.chunks);
    const aligned = chunkLists.every(
      (list) =>
        list.length === chunkLists[0].length &&
        list.every(
          (c, i) =>
            c.elementOffset === chunkLists[0][i].elementOffset && c.elements === chunkLists[0][i].elements,
        ),
    );
    if (!aligned) {
      throw new TensorError(
        `where: ${[condition, ...tensors].map((t) => t.describe()).join(', ')} are split in chunks that do not line up; cast the condition to the dtype of a and b first`,
      );
    }
    out.chunks.forEach((target, i) => {
      const chunkOf = (operand: Operand) => (typeof operand === 'number' ? null : operand.chunks[i]);
      launchFlat(condition.chunks[i], chunkOf(a), chunkOf(b), target);
    });
    return out;
  }

  const parts = [condition, a, b].filter((t): t is Tensor => typeof t !== 'number');
  for (const t of [...parts, out]) t.binding('where with broadcasting');
  const names = [
    'condition',
    ...(typeof a === 'number' ? [] : ['a']),
    ...(typeof b === 'number' ? [] : ['b']),
  ];
  const collapsed = collapseDims(
    shape,
    parts.map((t) => broadcastStrides(t.shape, shape)),
  );
  const rank = collapsed.shape.length;
  if (rank > MAX_RANK) throw new TensorError(`where: broadcasting needs more than ${MAX_RANK} dimensions`);
  const stridedUniforms = [...fields, ...stridedFields(names)];
  const strideValues: Record<string, number[]> = {};
  names.forEach((name, k) => {
    strideValues[`stride_${name}`] = padDims(collapsed.strides[k]);
  });
  const wg = device.tuning.elementwiseWorkgroup;
  device.dispatch({
    key: `${KERNELS.where}:strided:${variant}:${rank}`,
    source: () =>
      kernelSource({
        storage: [
          ...names.map((name) => ({
            name,
            type: name === 'condition' ? conditionType : dtype,
            access: 'read' as const,
          })),
          { name: 'out', type: dtype, access: 'read_write' },
        ],
        uniforms: stridedUniforms,
        workgroupSize: wg,
        helpers: conditionHelper(conditionType, false),
        body: `
  let index = flat_workgroup(wid, nwg) * WG + lid.x;
  if (index >= params.n) { return; }
${stridedOffsets(rank, names)}
  let a = ${typeof a === 'number' ? `${dtype}(params.a_value)` : 'a[offset_a]'};
  let b = ${typeof b === 'number' ? `${dtype}(params.b_value)` : 'b[offset_b]'};
  out[index] = select(b, a, is_true(condition[offset_condition]));`,
      }),
    bindings: [...parts, out],
    uniforms: {
      fields: stridedUniforms,
      values: { n: out.size, ...values, shape: padDims(collapsed.shape, 1), ...strideValues },
    },
    workgroups: elementwiseGrid(device, out.size, 1),
  });
  return out;

  function launchFlat(conditionChunk: Chunk, aChunk: Chunk | null, bChunk: Chunk | null, target: Chunk) {
    const perInvocation = device.tuning.elementwisePerInvocation;
    const vector = target.elements % 4 === 0;
    const wrap = (type: string) => (vector ? `vec4<${type}>` : type);
    const items = vector ? target.elements / 4 : target.elements;
    const range = (chunk: Chunk) => ({ buffer: chunk.buffer, offset: 0, size: chunk.buffer.size });
    const storage = [
      { name: 'condition', type: wrap(conditionType) as never, access: 'read' as const },
      ...(aChunk ? [{ name: 'a', type: wrap(dtype) as never, access: 'read' as const }] : []),
      ...(bChunk ? [{ name: 'b', type: wrap(dtype) as never, access: 'read' as const }] : []),
      { name: 'out', type: wrap(dtype) as never, access: 'read_write' as const },
    ];
    const value = (name: 'a' | 'b', chunk: Chunk | null, index: string) =>
      chunk ? `${name}[${index}]` : `${wrap(dtype)}(${dtype}(params.${name}_value))`;
    device.dispatch({
      key: `${KERNELS.where}:flat:${variant}:${vector ? 4 : 1}:${perInvocation}`,
      source: () =>
        kernelSource({
          storage,
          uniforms: fields,
          workgroupSize: device.tuning.elementwiseWorkgroup,
          helpers: conditionHelper(conditionType, vector),
          body: elementwiseLoop(
            perInvocation,
            (index) =>
              `out[${index}] = select(${value('b', bChunk, index)}, ${value('a', aChunk, index)}, ` +
              `is_true(condition[${index}]));`,
          ),
        }),
      bindings: [conditionChunk, aChunk, bChunk, target].filter((c): c is Chunk => c !== null).map(range),
      uniforms: { fields, values: { n: items, ...values } },
      workgroups: elementwiseGrid(device, items, perInvocation),
    });
  }
}

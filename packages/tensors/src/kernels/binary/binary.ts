import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import type { DType } from '../../tensor/dtype.js';
import {
  broadcastShapes,
  broadcastStrides,
  collapseDims,
  formatShape,
  sameShape,
} from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { chunkRange } from '../shared/chunks.js';
import { elementwiseGrid, elementwiseLoop } from '../shared/elementwise-loop.js';
import { MAX_RANK, padDims, stridedFields, stridedOffsets } from '../shared/strided.js';
import { kernelSource, workgroupsFor } from '../shared/wgsl.js';

export type BinaryOp =
  | 'add'
  | 'sub'
  | 'mul'
  | 'div'
  | 'pow'
  | 'maximum'
  | 'minimum'
  | 'eq'
  | 'ne'
  | 'lt'
  | 'le'
  | 'gt'
  | 'ge';

const COMPARISONS: Partial<Record<BinaryOp, string>> = {
  eq: '==',
  ne: '!=',
  lt: '<',
  le: '<=',
  gt: '>',
  ge: '>=',
};

/** WGSL for `a op b` on values of type T (scalars or vectors). */
function expression(op: BinaryOp, vectorType: string | null): string {
  const comparison = COMPARISONS[op];
  if (comparison) {
    const zero = vectorType ? 'vec4u(0u)' : '0u';
    const one = vectorType ? 'vec4u(1u)' : '1u';
    return `select(${zero}, ${one}, a ${comparison} b)`;
  }
  switch (op) {
    case 'add':
      return 'a + b';
    case 'sub':
      return 'a - b';
    case 'mul':
      return 'a * b';
    case 'div':
      return 'a / b';
    case 'pow':
      return 'pow(a, b)';
    case 'maximum':
      return 'max(a, b)';
    case 'minimum':
      return 'min(a, b)';
  }
  throw new Error(`unknown binary op ${op}`);
}

/** dtype of the result: comparisons give u32 masks (1 or 0), arithmetic keeps the input dtype. */
export function binaryResultType(op: BinaryOp, dtype: DType): DType {
  return COMPARISONS[op] ? 'u32' : dtype;
}

/**
 * Elementwise `a op b` with NumPy broadcasting. `b` may be a number (a scalar in the launch's
 * uniforms, no upload). f16 tensors compute in f32.
 */
export function binary(op: BinaryOp, a: Tensor, b: Tensor | number): Tensor {
  a.assertLive();
  const device = a.device;
  const dtype = a.dtype;
  if (op === 'pow' && (dtype === 'i32' || dtype === 'u32')) {
    throw new TensorError(`${op} is defined for float tensors, not ${dtype}`);
  }
  if (typeof b !== 'number') {
    b.assertLive();
    if (b.device !== device) throw new TensorError(`${op}: operands live on different devices`);
    if (b.dtype !== dtype) {
      throw new TensorError(`${op}: dtypes differ (${a.describe()} and ${b.describe()}); cast one first`);
    }
  }
  const bShape = typeof b === 'number' ? [] : b.shape;
  const shape = broadcastShapes(a.shape, bShape);
  const outType = binaryResultType(op, dtype);
  const out = device.empty(shape, outType);
  if (out.size === 0) return out;

  const compute = dtype === 'f16' ? 'f32' : dtype;
  const load = (name: string, at: string) => (dtype === 'f16' ? `f32(${name}[${at}])` : `${name}[${at}]`);
  const store = (value: string) => (outType === 'f16' ? `f16(${value})` : value);
  const scalar = typeof b === 'number';
  const simple = scalar || sameShape(a.shape, b.shape);

  if (a.chunked || out.chunked || (!scalar && b.chunked)) {
    if (!simple) {
      throw new TensorError(
        `${op}: broadcasting ${formatShape(a.shape)} with ${formatShape(bShape)} is not supported for tensors split in chunks`,
      );
    }
    a.chunks.forEach((chunk, i) => {
      launchContiguous(
        chunk.elements,
        chunkRange(chunk),
        scalar ? null : chunkRange(b.chunks[i]),
        out.chunks[i],
      );
    });
    return out;
  }
  launchContiguousOrStrided();
  return out;

  function launchContiguousOrStrided() {
    if (simple) {
      launchContiguous(out.size, a.binding(), scalar ? null : (b as Tensor).binding(), out.chunks[0]);
      return;
    }
    const bTensor = b as Tensor;
    const collapsed = collapseDims(shape, [
      broadcastStrides(a.shape, shape),
      broadcastStrides(bTensor.shape, shape),
    ]);
    const rank = collapsed.shape.length;
    if (rank > MAX_RANK) throw new TensorError(`${op}: broadcast needs more than ${MAX_RANK} dimensions`);
    const wg = device.tuning.elementwiseWorkgroup;
    device.dispatch({
      key: `${KERNELS.binary}:strided:${op}:${dtype}:${rank}`,
      source: () =>
        kernelSource({
          storage: [
            { name: 'a', type: dtype, access: 'read' },
            { name: 'b', type: dtype, access: 'read' },
            { name: 'out', type: outType, access: 'read_write' },
          ],
          uniforms: [{ name: 'n', type: 'u32' }, ...stridedFields(['a', 'b'])],
          workgroupSize: wg,
          body: `
  let index = flat_workgroup(wid, nwg) * WG + lid.x;
  if (index >= params.n) { return; }
${stridedOffsets(rank, ['a', 'b'])}
  let a = ${load('a', 'offset_a')};
  let b = ${load('b', 'offset_b')};
  out[index] = ${store(expression(op, null))};`,
        }),
      bindings: [a, bTensor, out],
      uniforms: {
        fields: [{ name: 'n', type: 'u32' }, ...stridedFields(['a', 'b'])],
        values: {
          n: out.size,
          shape: padDims(collapsed.shape, 1),
          stride_a: padDims(collapsed.strides[0]),
          stride_b: padDims(collapsed.strides[1]),
        },
      },
      workgroups: grid(workgroupsFor(out.size, wg), device.maxWorkgroupsPerDimension),
    });
  }

  function launchContiguous(
    n: number,
    aRange: { buffer: GPUBuffer; offset: number; size: number },
    bRange: { buffer: GPUBuffer; offset: number; size: number } | null,
    target: { buffer: GPUBuffer },
  ) {
    const wg = device.tuning.elementwiseWorkgroup;
    const perInvocation = device.tuning.elementwisePerInvocation;
    // Four elements per item through vec4 loads when the length allows it (f16 as vec4<f16>).
    const vector = n % 4 === 0 ? 4 : 1;
    const elementType = vector === 4 ? `vec4<${dtype}>` : dtype;
    const outElement = vector === 4 ? `vec4<${outType}>` : outType;
    const scalarType = compute;
    const computeType = vector === 4 ? `vec4<${compute}>` : compute;
    const loadItem = (name: string, at: string) =>
      dtype === 'f16' ? `${computeType}(${name}[${at}])` : `${name}[${at}]`;
    const storeItem = (value: string) => (outType === 'f16' ? `${outElement}(${value})` : value);
    const bValue = bRange
      ? loadItem('b', 'index')
      : vector === 4
        ? `vec4<${scalarType}>(${scalarType}(params.scalar))`
        : `${scalarType}(params.scalar)`;
    const uniformFields = [
      { name: 'n', type: 'u32' as const },
      { name: 'scalar', type: 'f32' as const },
    ];
    const storage = [
      { name: 'a', type: elementType as never, access: 'read' as const },
      ...(bRange ? [{ name: 'b', type: elementType as never, access: 'read' as const }] : []),
      { name: 'out', type: outElement as never, access: 'read_write' as const },
    ];
    const items = n / vector;
    device.dispatch({
      key: `${KERNELS.binary}:flat:${op}:${dtype}:${vector}:${perInvocation}:${bRange ? 't' : 's'}`,
      source: () =>
        kernelSource({
          storage,
          uniforms: uniformFields,
          workgroupSize: wg,
          body: elementwiseLoop(
            perInvocation,
            (index) =>
              `let a = ${loadItem('a', index)}; let b = ${bValue}; ` +
              `out[${index}] = ${storeItem(expression(op, vector === 4 ? elementType : null))};`,
          ),
        }),
      bindings: bRange
        ? [aRange, bRange, { buffer: target.buffer, offset: 0, size: target.buffer.size }]
        : [aRange, { buffer: target.buffer, offset: 0, size: target.buffer.size }],
      uniforms: { fields: uniformFields, values: { n: items, scalar: typeof b === 'number' ? b : 0 } },
      workgroups: elementwiseGrid(device, items, perInvocation),
    });
  }
}

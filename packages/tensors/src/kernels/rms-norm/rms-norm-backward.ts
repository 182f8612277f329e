import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import type { DType } from '../../tensor/dtype.js';
import { formatShape, sameShape } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import {
  assertFloat,
  assertSameDevice,
  computeType,
  loadF32,
  rowHelpers,
  rowWorkgroupFor,
  storeAs,
  vectorType,
} from '../shared/row-kernel.js';
import { kernelSource, type StorageBinding, workgroupsFor } from '../shared/wgsl.js';

/** Rows one invocation of the weight-gradient pass sums before the partial sums are added. */
const ROWS_PER_SEGMENT = 64;

const ROW_FIELDS = [
  { name: 'rows', type: 'u32' as const },
  { name: 'length', type: 'u32' as const },
  { name: 'hidden', type: 'f32' as const },
  { name: 'eps', type: 'f32' as const },
];

const COLUMN_FIELDS = [
  { name: 'rows', type: 'u32' as const },
  { name: 'length', type: 'u32' as const },
  { name: 'segments', type: 'u32' as const },
  { name: 'segment_rows', type: 'u32' as const },
];

export interface RmsNormBackwardOptions {
  /** Compute dw (default true); false skips its two passes and returns weight null (a frozen norm). */
  weightGradient?: boolean;
  /** A tensor of x's shape and dtype added into dx (the gradient already summed for x elsewhere). */
  add?: Tensor | null;
}

/**
 * Gradients of y = x r w (RMSNorm over the last axis, r = 1 / sqrt(mean(x^2) + eps)):
 *   dx = r (g w) - x r^3 mean((g w) x),   dw = sum over rows of g x r.
 * Pass 1, a workgroup per row, recomputes r and the row's dot product (one read of x and g) and
 * writes dx and r. When there is a weight, pass 2 sums g x r over segments of rows, one
 * invocation per (segment, 4 columns), and pass 3 adds the segments up in f32. Memory-bound:
 * cheap to recompute under gradient checkpointing. `options.add` is added into dx in pass 1;
 * without `options.weightGradient` passes 2 and 3 do not run.
 */
export function rmsNormBackward(
  x: Tensor,
  weight: Tensor | null,
  grad: Tensor,
  eps: number,
  options: RmsNormBackwardOptions = {},
): { input: Tensor; weight: Tensor | null } {
  const op = 'rmsNormBackward';
  const add = options.add ?? null;
  if (add) {
    assertSameDevice(op, x, add);
    if (!sameShape(add.shape, x.shape) || add.dtype !== x.dtype) {
      throw new TensorError(`${op}: add ${add.describe()} must match x ${x.describe()}`);
    }
  }
  assertFloat(op, x);
  assertFloat(op, grad, 'grad');
  assertSameDevice(op, x, grad);
  if (!sameShape(x.shape, grad.shape) || grad.dtype !== x.dtype || x.rank === 0) {
    throw new TensorError(`${op}: grad ${grad.describe()} must match x ${x.describe()} (rank >= 1)`);
  }
  const hidden = x.shape[x.rank - 1];
  if (weight) {
    assertFloat(op, weight, 'weight');
    assertSameDevice(op, x, weight);
    if (weight.rank !== 1 || weight.shape[0] !== hidden) {
      throw new TensorError(
        `${op}: weight ${formatShape(weight.shape)} must be [${hidden}] for ${x.describe()}`,
      );
    }
  }
  const device = x.device;
  const rows = hidden === 0 ? 0 : x.size / hidden;
  const dx = device.empty(x.shape, x.dtype);
  const dw = weight && options.weightGradient !== false ? device.empty([hidden], weight.dtype) : null;
  if (rows === 0) {
    return { input: dx, weight: dw };
  }
  const width: 1 | 4 = hidden % 4 === 0 ? 4 : 1;
  // Fewer lanes for short rows, as the forward does (on lavapipe 64 lanes over a row of 72 vec4s
  // took 5x the forward's time).
  // Short rows: a row per invocation, no workgroup reduction (tuning.rowPerInvocationLength).
  const perInvocation = hidden / width <= device.tuning.rowPerInvocationLength;
  const workgroup = perInvocation ? device.tuning.rowWorkgroup : rowWorkgroupFor(device, hidden / width);
  const inverse = device.empty([rows], 'f32');
  const weightType = weight?.dtype ?? null;
  device.dispatch({
    key: `${KERNELS.rmsNormBackward}:rows:${x.dtype}:${weightType}:${width}:${workgroup}${add ? ':add' : ''}${perInvocation ? ':lane' : ''}`,
    source: () => rowSource(x.dtype, weightType, width, workgroup, add !== null, perInvocation),
    bindings: [
      x.binding(op),
      grad.binding(op),
      ...(weight ? [weight.binding(op)] : []),
      ...(add ? [add.binding(op)] : []),
      dx.binding(op),
      inverse,
    ],
    uniforms: { fields: ROW_FIELDS, values: { rows, length: hidden / width, hidden, eps } },
    workgroups: grid(perInvocation ? Math.ceil(rows / workgroup) : rows, device.maxWorkgroupsPerDimension),
  });
  if (weight && dw) {
    const segments = Math.ceil(rows / ROWS_PER_SEGMENT);
    const partial = device.empty([segments, hidden], 'f32');
    const columns = hidden / width;
    const values = { rows, length: columns, segments, segment_rows: ROWS_PER_SEGMENT };
    const wg = device.tuning.elementwiseWorkgroup;
    device.dispatch({
      key: `${KERNELS.rmsNormBackward}:segments:${x.dtype}:${width}:${wg}`,
      source: () => segmentSource(x.dtype, width, wg),
      bindings: [x.binding(op), grad.binding(op), inverse, partial],
      uniforms: { fields: COLUMN_FIELDS, values },
      workgroups: grid(workgroupsFor(segments * columns, wg), device.maxWorkgroupsPerDimension),
    });
    device.dispatch({
      key: `${KERNELS.rmsNormBackward}:total:${weight.dtype}:${width}:${wg}`,
      source: () => totalSource(weight.dtype, width, wg),
      bindings: [partial, dw],
      uniforms: { fields: COLUMN_FIELDS, values },
      workgroups: grid(workgroupsFor(columns, wg), device.maxWorkgroupsPerDimension),
    });
    partial.dispose();
  }
  inverse.dispose();
  return { input: dx, weight: dw };
}

function rowSource(
  dtype: DType,
  weightType: DType | null,
  width: 1 | 4,
  workgroup: number,
  add: boolean,
  perInvocation: boolean,
): string {
  const storage: StorageBinding[] = [
    { name: 'x', type: vectorType(dtype, width), access: 'read' },
    { name: 'grad', type: vectorType(dtype, width), access: 'read' },
  ];
  if (weightType) storage.push({ name: 'weight', type: vectorType(weightType, width), access: 'read' });
  if (add) storage.push({ name: 'earlier', type: vectorType(dtype, width), access: 'read' });
  storage.push({ name: 'dx', type: vectorType(dtype, width), access: 'read_write' });
  storage.push({ name: 'inverse_rms', type: 'f32', access: 'read_write' });
  const gw = weightType
    ? `${loadF32('grad', 'base + j', width)} * ${loadF32('weight', 'j', width)}`
    : loadF32('grad', 'base + j', width);
  const dxValue = storeAs(
    dtype,
    `inverse * (${gw}) - value * correction${add ? ` + ${loadF32('earlier', 'base + j', width)}` : ''}`,
    width,
  );
  if (perInvocation) {
    return kernelSource({
      storage,
      uniforms: ROW_FIELDS,
      workgroupSize: workgroup,
      helpers: rowHelpers(width),
      body: `
  let r = flat_workgroup(wid, nwg) * WG + lid.x;
  if (r >= params.rows) { return; }
  let base = r * params.length;
  var squares = ${computeType(width)}(0.0);
  var dot = ${computeType(width)}(0.0);
  for (var j = 0u; j < params.length; j++) {
    let value = ${loadF32('x', 'base + j', width)};
    squares += value * value;
    dot += (${gw}) * value;
  }
  let inverse = inverseSqrt(horizontal_sum(squares) / params.hidden + params.eps);
  let correction = inverse * inverse * inverse * horizontal_sum(dot) / params.hidden;
  for (var j = 0u; j < params.length; j++) {
    let value = ${loadF32('x', 'base + j', width)};
    dx[base + j] = ${dxValue};
  }
  inverse_rms[r] = inverse;`,
    });
  }
  return kernelSource({
    storage,
    uniforms: ROW_FIELDS,
    workgroupSize: workgroup,
    helpers: rowHelpers(width),
    body: `
  let r = flat_workgroup(wid, nwg);
  if (r >= params.rows) { return; }
  let base = r * params.length;
  var squares = ${computeType(width)}(0.0);
  var dot = ${computeType(width)}(0.0);
  for (var j = lid.x; j < params.length; j += WG) {
    let value = ${loadF32('x', 'base + j', width)};
    squares += value * value;
    dot += (${gw}) * value;
  }
  let inverse = inverseSqrt(workgroup_sum(horizontal_sum(squares), lid.x) / params.hidden + params.eps);
  let correction = inverse * inverse * inverse * workgroup_sum(horizontal_sum(dot), lid.x) / params.hidden;
  for (var j = lid.x; j < params.length; j += WG) {
    let value = ${loadF32('x', 'base + j', width)};
    dx[base + j] = ${dxValue};
  }
  if (lid.x == 0u) { inverse_rms[r] = inverse; }`,
  });
}

function segmentSource(dtype: DType, width: 1 | 4, workgroup: number): string {
  return kernelSource({
    storage: [
      { name: 'x', type: vectorType(dtype, width), access: 'read' },
      { name: 'grad', type: vectorType(dtype, width), access: 'read' },
      { name: 'inverse_rms', type: 'f32', access: 'read' },
      { name: 'partial', type: vectorType('f32', width), access: 'read_write' },
    ],
    uniforms: COLUMN_FIELDS,
    workgroupSize: workgroup,
    body: `
  let index = flat_workgroup(wid, nwg) * WG + lid.x;
  if (index >= params.segments * params.length) { return; }
  let segment = index / params.length;
  let column = index % params.length;
  let first = segment * params.segment_rows;
  let last = min(params.rows, first + params.segment_rows);
  var total = ${computeType(width)}(0.0);
  for (var r = first; r < last; r++) {
    let at = r * params.length + column;
    total += ${loadF32('grad', 'at', width)} * ${loadF32('x', 'at', width)} * inverse_rms[r];
  }
  partial[index] = total;`,
  });
}

function totalSource(weightType: DType, width: 1 | 4, workgroup: number): string {
  return kernelSource({
    storage: [
      { name: 'partial', type: vectorType('f32', width), access: 'read' },
      { name: 'dw', type: vectorType(weightType, width), access: 'read_write' },
    ],
    uniforms: COLUMN_FIELDS,
    workgroupSize: workgroup,
    body: `
  let column = flat_workgroup(wid, nwg) * WG + lid.x;
  if (column >= params.length) { return; }
  var total = ${computeType(width)}(0.0);
  for (var s = 0u; s < params.segments; s++) { total += partial[s * params.length + column]; }
  dw[column] = ${storeAs(weightType, 'total', width)};`,
  });
}

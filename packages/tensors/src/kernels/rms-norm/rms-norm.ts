import { TensorError } from '../../device/errors.js';
import type { DType } from '../../tensor/dtype.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { assertNormParameter, dispatchNormRows } from '../shared/norm-rows.js';
import {
  assertFloat,
  computeType,
  loadF32,
  NORM_FIELDS,
  rowHelpers,
  rowWorkgroupFor,
  storeAs,
  vectorType,
} from '../shared/row-kernel.js';
import { kernelSource, type StorageBinding } from '../shared/wgsl.js';

export interface RmsNormOptions {
  /** Also return the per-row 1 / sqrt(mean(x^2) + eps) that the backward pass needs. */
  saveStats?: boolean;
}

export interface RmsNormResult {
  output: Tensor;
  /** f32, shape x.shape without its last axis: 1 / sqrt(mean(x^2) + eps) per row. */
  inverseRms: Tensor<'f32'>;
}

const FIELDS = NORM_FIELDS;

/**
 * Llama's RMSNorm over the last axis: x * rsqrt(mean(x^2) + eps) * weight, computed in f32 (f16
 * inputs round once, on store). `weight` has shape [hidden] (f32 or f16) or is null for no
 * scale. With `{ saveStats: true }` also returns the per-row inverse RMS (f32). `x` may be split
 * in chunks (above one binding).
 */
export function rmsNorm(
  x: Tensor,
  weight: Tensor | null,
  eps?: number,
  options?: { saveStats?: false },
): Tensor;
export function rmsNorm(
  x: Tensor,
  weight: Tensor | null,
  eps: number,
  options: { saveStats: true },
): RmsNormResult;
export function rmsNorm(
  x: Tensor,
  weight: Tensor | null,
  eps = 1e-6,
  options: RmsNormOptions = {},
): Tensor | RmsNormResult {
  assertFloat('rmsNorm', x);
  if (x.rank === 0) throw new TensorError(`rmsNorm: ${x.describe()} needs at least one axis`);
  const hidden = x.shape[x.rank - 1];
  if (weight) assertNormParameter('rmsNorm', x, weight, 'weight');
  const device = x.device;
  const rows = hidden === 0 ? 0 : x.size / hidden;
  const output = device.empty(x.shape, x.dtype);
  const inverseRms = options.saveStats ? device.empty(x.shape.slice(0, -1), 'f32') : null;
  if (rows > 0) {
    const width: 1 | 4 = hidden % 4 === 0 ? 4 : 1;
    // Short rows: a row per invocation, no workgroup reduction (tuning.rowPerInvocationLength).
    const perInvocation = hidden / width <= device.tuning.rowPerInvocationLength;
    const workgroup = perInvocation ? device.tuning.rowWorkgroup : rowWorkgroupFor(device, hidden / width);
    const variant = {
      perInvocation,
      dtype: x.dtype,
      weightType: weight?.dtype ?? null,
      saveStats: !!inverseRms,
      width,
      workgroup,
    };
    dispatchNormRows('rmsNorm', x, output, {
      key: `${KERNELS.rmsNorm}:${x.dtype}:${variant.weightType}:${variant.saveStats}:${width}:${workgroup}${perInvocation ? ':rows' : ''}`,
      source: () => rmsNormSource(variant),
      width,
      eps,
      rowsPerWorkgroup: perInvocation ? workgroup : 1,
      bindings: (input, out) => [
        input,
        ...(weight ? [weight.binding('rmsNorm')] : []),
        out,
        ...(inverseRms ? [inverseRms.binding('rmsNorm')] : []),
      ],
    });
  }
  return inverseRms ? { output, inverseRms } : output;
}

function rmsNormSource(variant: {
  perInvocation: boolean;
  dtype: DType;
  weightType: DType | null;
  saveStats: boolean;
  width: 1 | 4;
  workgroup: number;
}): string {
  const { dtype, weightType, width } = variant;
  const storage: StorageBinding[] = [{ name: 'x', type: vectorType(dtype, width), access: 'read' }];
  if (weightType) storage.push({ name: 'weight', type: vectorType(weightType, width), access: 'read' });
  storage.push({ name: 'out', type: vectorType(dtype, width), access: 'read_write' });
  if (variant.saveStats) storage.push({ name: 'inverse_rms', type: 'f32', access: 'read_write' });
  const scaled = weightType ? `value * inverse * ${loadF32('weight', 'j', width)}` : 'value * inverse';
  if (variant.perInvocation) {
    return kernelSource({
      storage,
      uniforms: FIELDS,
      workgroupSize: variant.workgroup,
      helpers: rowHelpers(width),
      body: `
  let r = flat_workgroup(wid, nwg) * WG + lid.x;
  if (r >= params.rows) { return; }
  let base = r * params.length;
  var partial = ${computeType(width)}(0.0);
  for (var j = 0u; j < params.length; j++) {
    let value = ${loadF32('x', 'base + j', width)};
    partial += value * value;
  }
  let inverse = inverseSqrt(horizontal_sum(partial) / params.hidden + params.eps);
  for (var j = 0u; j < params.length; j++) {
    let value = ${loadF32('x', 'base + j', width)};
    out[base + j] = ${storeAs(dtype, scaled, width)};
  }
${variant.saveStats ? '  inverse_rms[params.row_offset + r] = inverse;' : ''}`,
    });
  }
  return kernelSource({
    storage,
    uniforms: FIELDS,
    workgroupSize: variant.workgroup,
    helpers: rowHelpers(width),
    body: `
  let r = flat_workgroup(wid, nwg);
  if (r >= params.rows) { return; }
  let base = r * params.length;
  var partial = ${computeType(width)}(0.0);
  for (var j = lid.x; j < params.length; j += WG) {
    let value = ${loadF32('x', 'base + j', width)};
    partial += value * value;
  }
  let mean_square = workgroup_sum(horizontal_sum(partial), lid.x) / params.hidden;
  let inverse = inverseSqrt(mean_square + params.eps);
  for (var j = lid.x; j < params.length; j += WG) {
    let value = ${loadF32('x', 'base + j', width)};
    out[base + j] = ${storeAs(dtype, scaled, width)};
  }
${variant.saveStats ? '  if (lid.x == 0u) { inverse_rms[params.row_offset + r] = inverse; }' : ''}`,
  });
}

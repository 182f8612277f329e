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

export interface LayerNormOptions {
  /** Also return the per-row mean and 1 / sqrt(var + eps) that the backward pass needs. */
  saveStats?: boolean;
}

export interface LayerNormResult {
  output: Tensor;
  /** f32, shape x.shape without its last axis. */
  mean: Tensor<'f32'>;
  /** f32, shape x.shape without its last axis: 1 / sqrt(biased variance + eps). */
  rstd: Tensor<'f32'>;
}

const FIELDS = NORM_FIELDS;

/**
 * LayerNorm over the last axis as in PyTorch: (x - mean) / sqrt(var + eps) * weight + bias with
 * the biased variance, computed in f32 with a two-pass variance (no cancellation for rows with a
 * large mean). `weight` and `bias` have shape [hidden] (f32 or f16) or are null. With
 * `{ saveStats: true }` also returns the per-row mean and rstd (f32). `x` may be split in chunks
 * (above one binding).
 */
export function layerNorm(
  x: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  eps?: number,
  options?: { saveStats?: false },
): Tensor;
export function layerNorm(
  x: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  eps: number,
  options: { saveStats: true },
): LayerNormResult;
export function layerNorm(
  x: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  eps = 1e-5,
  options: LayerNormOptions = {},
): Tensor | LayerNormResult {
  assertFloat('layerNorm', x);
  if (x.rank === 0) throw new TensorError(`layerNorm: ${x.describe()} needs at least one axis`);
  const hidden = x.shape[x.rank - 1];
  if (weight) assertNormParameter('layerNorm', x, weight, 'weight');
  if (bias) assertNormParameter('layerNorm', x, bias, 'bias');
  const device = x.device;
  const rows = hidden === 0 ? 0 : x.size / hidden;
  const output = device.empty(x.shape, x.dtype);
  const statsShape = x.shape.slice(0, -1);
  const stats = options.saveStats
    ? { mean: device.empty(statsShape, 'f32'), rstd: device.empty(statsShape, 'f32') }
    : null;
  if (rows > 0) {
    const width: 1 | 4 = hidden % 4 === 0 ? 4 : 1;
    const workgroup = rowWorkgroupFor(device, hidden / width);
    const variant = {
      dtype: x.dtype,
      weightType: weight?.dtype ?? null,
      biasType: bias?.dtype ?? null,
      saveStats: !!stats,
      width,
      workgroup,
    } as const;
    dispatchNormRows('layerNorm', x, output, {
      key: `${KERNELS.layerNorm}:${x.dtype}:${variant.weightType}:${variant.biasType}:${variant.saveStats}:${width}:${workgroup}`,
      source: () => layerNormSource(variant),
      width,
      eps,
      bindings: (input, out) => [
        input,
        ...(weight ? [weight.binding('layerNorm')] : []),
        ...(bias ? [bias.binding('layerNorm')] : []),
        out,
        ...(stats ? [stats.mean.binding('layerNorm'), stats.rstd.binding('layerNorm')] : []),
      ],
    });
  }
  return stats ? { output, ...stats } : output;
}

function layerNormSource(variant: {
  dtype: DType;
  weightType: DType | null;
  biasType: DType | null;
  saveStats: boolean;
  width: 1 | 4;
  workgroup: number;
}): string {
  const { dtype, weightType, biasType, width } = variant;
  const storage: StorageBinding[] = [{ name: 'x', type: vectorType(dtype, width), access: 'read' }];
  if (weightType) storage.push({ name: 'weight', type: vectorType(weightType, width), access: 'read' });
  if (biasType) storage.push({ name: 'bias', type: vectorType(biasType, width), access: 'read' });
  storage.push({ name: 'out', type: vectorType(dtype, width), access: 'read_write' });
  if (variant.saveStats) {
    storage.push({ name: 'row_mean', type: 'f32', access: 'read_write' });
    storage.push({ name: 'row_rstd', type: 'f32', access: 'read_write' });
  }
  let value = 'centered * rstd';
  if (weightType) value = `${value} * ${loadF32('weight', 'j', width)}`;
  if (biasType) value = `${value} + ${loadF32('bias', 'j', width)}`;
  const load = loadF32('x', 'base + j', width);
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
  for (var j = lid.x; j < params.length; j += WG) { partial += ${load}; }
  let mean = workgroup_sum(horizontal_sum(partial), lid.x) / params.hidden;
  var squares = ${computeType(width)}(0.0);
  for (var j = lid.x; j < params.length; j += WG) {
    let centered = ${load} - mean;
    squares += centered * centered;
  }
  let variance = workgroup_sum(horizontal_sum(squares), lid.x) / params.hidden;
  let rstd = inverseSqrt(variance + params.eps);
  for (var j = lid.x; j < params.length; j += WG) {
    let centered = ${load} - mean;
    out[base + j] = ${storeAs(dtype, value, width)};
  }
${variant.saveStats ? '  if (lid.x == 0u) {\n    row_mean[params.row_offset + r] = mean;\n    row_rstd[params.row_offset + r] = rstd;\n  }' : ''}`,
  });
}

import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import type { DType } from '../../tensor/dtype.js';
import { formatShape } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { chunkRange, forEachChunk } from '../shared/chunks.js';
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

const FIELDS = [
  { name: 'rows', type: 'u32' as const },
  { name: 'row_offset', type: 'u32' as const },
  { name: 'length', type: 'u32' as const },
  { name: 'hidden', type: 'f32' as const },
  { name: 'eps', type: 'f32' as const },
];

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
  if (weight) {
    assertSameDevice('rmsNorm', x, weight);
    assertFloat('rmsNorm', weight, 'weight');
    if (weight.rank !== 1 || weight.shape[0] !== hidden) {
      throw new TensorError(
        `rmsNorm: weight ${formatShape(weight.shape)} must have shape [${hidden}] to match the last axis of ${x.describe()}`,
      );
    }
  }
  const device = x.device;
  const rows = hidden === 0 ? 0 : x.size / hidden;
  const output = device.empty(x.shape, x.dtype);
  const inverseRms = options.saveStats ? device.empty(x.shape.slice(0, -1), 'f32') : null;
  if (rows > 0) {
    const width: 1 | 4 = hidden % 4 === 0 ? 4 : 1;
    const workgroup = rowWorkgroupFor(device, hidden / width);
    const variant = {
      dtype: x.dtype,
      weightType: weight?.dtype ?? null,
      saveStats: !!inverseRms,
      width,
      workgroup,
    };
    const bytes = x.storage.bytesPerElement;
    // Chunks of a tensor above one binding hold whole rows; the output is split the same way.
    forEachChunk('rmsNorm', [x, output], ([chunk, outputChunk]) => {
      const chunkRows = chunk.elements / hidden;
      device.dispatch({
        key: `${KERNELS.rmsNorm}:${x.dtype}:${variant.weightType}:${variant.saveStats}:${width}:${workgroup}`,
        source: () => rmsNormSource(variant),
        bindings: [
          chunkRange(chunk, bytes),
          ...(weight ? [weight.binding('rmsNorm')] : []),
          chunkRange(outputChunk, bytes),
          ...(inverseRms ? [inverseRms.binding('rmsNorm')] : []),
        ],
        uniforms: {
          fields: FIELDS,
          values: {
            rows: chunkRows,
            row_offset: chunk.elementOffset / hidden,
            length: hidden / width,
            hidden,
            eps,
          },
        },
        workgroups: grid(chunkRows, device.maxWorkgroupsPerDimension),
      });
    });
  }
  return inverseRms ? { output, inverseRms } : output;
}

function rmsNormSource(variant: {
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

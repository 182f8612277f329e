/**
 * Pieces shared by the row-wise kernels (reduce, softmax, norms, cross-entropy, global norm): the
 * WGSL of workgroup tree reductions and of blocked, compensated summation, and host helpers
 * that view a tensor as [outer, axis, inner].
 */
import type { Device } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import type { DType } from '../../tensor/dtype.js';
import { formatShape, type Shape } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { StorageBinding } from './wgsl.js';

/**
 * -infinity in WGSL. Infinities are not valid constant expressions, so the bits come from
 * module-scope private variables declared by rowHelpers() (not constant-folded by WGSL).
 */
export const NEG_INF = 'bitcast<f32>(negative_infinity_bits)';
/** A quiet NaN in WGSL (needs rowHelpers(), like NEG_INF). */
export const NAN = 'bitcast<f32>(quiet_nan_bits)';

/** Values summed naively before they are folded into the compensated (Kahan) accumulator. */
export const SUM_BLOCK = 64;

/** Storage element type of a row read `width` elements at a time. */
export function vectorType(dtype: DType, width: 1 | 4): StorageBinding['type'] {
  return width === 4 ? (`vec4<${dtype}>` as StorageBinding['type']) : dtype;
}

/** WGSL type of the f32 value a load of `width` elements gives. */
export function computeType(width: 1 | 4): string {
  return width === 4 ? 'vec4<f32>' : 'f32';
}

/** WGSL expression loading `name[index]` widened to f32 (or vec4<f32>). */
export function loadF32(name: string, index: string, width: 1 | 4): string {
  return width === 4 ? `vec4<f32>(${name}[${index}])` : `f32(${name}[${index}])`;
}

/** WGSL expression converting an f32 (or vec4<f32>) value to a storage type of dtype. */
export function storeAs(dtype: DType, value: string, width: 1 | 4): string {
  if (dtype === 'f32') return value;
  return width === 4 ? `vec4<${dtype}>(${value})` : `${dtype}(${value})`;
}

/**
 * WGSL helpers of the row kernels. `workgroup_sum/max` reduce one value per invocation over the
 * workgroup (a tree in workgroup memory; WG must be a power of two; call from uniform control
 * flow). `kahan_add` adds to a compensated accumulator (x: running sum, y: lost low-order part).
 * `horizontal_sum/max` fold a loaded value (f32 or vec4<f32>) to an f32.
 */
export function rowHelpers(width: 1 | 4): string {
  const horizontal =
    width === 4
      ? `fn horizontal_sum(v: vec4<f32>) -> f32 { return (v.x + v.y) + (v.z + v.w); }
fn horizontal_max(v: vec4<f32>) -> f32 { return max(max(v.x, v.y), max(v.z, v.w)); }`
      : `fn horizontal_sum(v: f32) -> f32 { return v; }
fn horizontal_max(v: f32) -> f32 { return v; }`;
  return `
var<private> negative_infinity_bits: u32 = 0xff800000u;
var<private> quiet_nan_bits: u32 = 0x7fc00000u;
var<workgroup> row_scratch: array<f32, WG>;
fn workgroup_sum(value: f32, lane: u32) -> f32 {
  row_scratch[lane] = value;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lane < stride) { row_scratch[lane] = row_scratch[lane] + row_scratch[lane + stride]; }
    workgroupBarrier();
  }
  let result = row_scratch[0];
  workgroupBarrier();
  return result;
}
fn workgroup_max(value: f32, lane: u32) -> f32 {
  row_scratch[lane] = value;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lane < stride) { row_scratch[lane] = max(row_scratch[lane], row_scratch[lane + stride]); }
    workgroupBarrier();
  }
  let result = row_scratch[0];
  workgroupBarrier();
  return result;
}
fn kahan_add(accumulator: ptr<function, vec2<f32>>, value: f32) {
  let corrected = value - (*accumulator).y;
  let total = (*accumulator).x + corrected;
  (*accumulator).y = (total - (*accumulator).x) - corrected;
  (*accumulator).x = total;
}
${horizontal}`;
}

/**
 * WGSL statements that sum `term(index)` over index = first, first + step, ... < end into the f32
 * variable `resultName`: blocks of SUM_BLOCK terms are summed naively, block sums are added with
 * Kahan compensation. On 10^6 terms the error stays near f32 rounding, where a plain running sum
 * drifts by ~1e-4 relative. Declares variables with `prefix` so two sums can share a scope.
 */
export function blockedSum(options: {
  resultName: string;
  prefix: string;
  first: string;
  end: string;
  step: string;
  /** WGSL expression of one term, f32 or vec4<f32>, reading the variable `${prefix}_index`. */
  term: (index: string) => string;
  width: 1 | 4;
}): string {
  const { prefix, width } = options;
  const index = `${prefix}_index`;
  const zero = width === 4 ? 'vec4<f32>(0.0)' : '0.0';
  return `
  var ${prefix}_accumulator = vec2<f32>(0.0);
  var ${index} = ${options.first};
  loop {
    if (${index} >= ${options.end}) { break; }
    let ${prefix}_block_end = min(${options.end}, ${index} + ${SUM_BLOCK}u * (${options.step}));
    var ${prefix}_block = ${zero};
    for (; ${index} < ${prefix}_block_end; ${index} += ${options.step}) {
      ${prefix}_block += ${options.term(index)};
    }
    kahan_add(&${prefix}_accumulator, horizontal_sum(${prefix}_block));
  }
  let ${options.resultName} = ${prefix}_accumulator.x - ${prefix}_accumulator.y;`;
}

/**
 * WGSL statements that run `loop` (a for-header whose body may read the loaded value as
 * `value`) once and leave, per invocation, the running maximum `running_max` (f32) and the sum
 * of exp(value - running_max) in `running_sum` (f32 or vec4<f32>): the online softmax
 * statistics, rescaled whenever the maximum grows, so a row is read once instead of twice.
 * The maximum starts at -FLT_MAX, not -infinity, so -infinity inputs (masked logits) add
 * exp(-inf) = 0 instead of NaN. Combine invocations with combineOnlineStatistics().
 */
export function onlineStatistics(options: {
  loop: string;
  load: string;
  width: 1 | 4;
  extra?: string;
}): string {
  return `
  var running_max = -3.4028234663852886e38;
  var running_sum = ${computeType(options.width)}(0.0);
  ${options.loop} {
    let value = ${options.load};
    let value_max = horizontal_max(value);
    if (value_max > running_max) {
      running_sum = running_sum * exp(running_max - value_max);
      running_max = value_max;
    }
    running_sum += exp(value - running_max);${options.extra ? `\n    ${options.extra}` : ''}
  }`;
}

/**
 * WGSL defining `row_max` and `row_sum` (f32) from every invocation's online statistics; over
 * the workgroup (call from uniform control flow) or, when `workgroup` is false, from this
 * invocation alone.
 */
export function combineOnlineStatistics(workgroup: boolean): string {
  return workgroup
    ? `
  let row_max = workgroup_max(running_max, lid.x);
  let row_sum = workgroup_sum(horizontal_sum(running_sum) * exp(running_max - row_max), lid.x);`
    : `
  let row_max = running_max;
  let row_sum = horizontal_sum(running_sum);`;
}

/** The largest power of two not above `n` (row kernels need a power-of-two workgroup). */
export function powerOfTwoAtMost(n: number): number {
  return 2 ** Math.floor(Math.log2(Math.max(1, n)));
}

/** Invocations per workgroup of the row kernels on this device. */
export function rowWorkgroupSize(device: Device): number {
  return Math.min(
    powerOfTwoAtMost(device.tuning.rowWorkgroup),
    powerOfTwoAtMost(device.gpu.limits.maxComputeInvocationsPerWorkgroup),
  );
}

/** Fewest loads each invocation of a row workgroup should make before the tree reduction. */
const LOADS_PER_INVOCATION = 8;

/**
 * Invocations per workgroup for rows of `units` loads: the device's row workgroup, or fewer
 * (down to 8) for short rows, where barriers and idle lanes would cost more than the loads.
 * Measured on lavapipe: RMSNorm of [2048, 288] took half the time with 16 invocations as with 64.
 */
export function rowWorkgroupFor(device: Device, units: number): number {
  const wanted = 2 ** Math.ceil(Math.log2(Math.max(1, units / LOADS_PER_INVOCATION)));
  return Math.min(rowWorkgroupSize(device), Math.max(8, wanted));
}

/** A tensor viewed as [outer, length, inner] around one axis. */
export interface AxisSplit {
  axis: number;
  outer: number;
  length: number;
  inner: number;
}

/** Resolves `axis` (negative counts from the end) and splits the shape around it. */
export function splitAtAxis(op: string, shape: Shape, axis: number): AxisSplit {
  const rank = Math.max(shape.length, 1);
  const resolved = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(axis) || resolved < 0 || resolved >= rank) {
    throw new TensorError(`${op}: axis ${axis} is out of range for shape ${formatShape(shape)}`);
  }
  const dims = shape.length ? shape : [1];
  let outer = 1;
  let inner = 1;
  for (let d = 0; d < resolved; d++) outer *= dims[d];
  for (let d = resolved + 1; d < dims.length; d++) inner *= dims[d];
  return { axis: resolved, outer, length: dims[resolved], inner };
}

/** Throws unless `x` is a live f32 or f16 tensor. */
export function assertFloat(op: string, x: Tensor, what = 'input'): void {
  x.assertLive();
  if (x.dtype !== 'f32' && x.dtype !== 'f16') {
    throw new TensorError(`${op}: ${what} ${x.describe()} must be f32 or f16`);
  }
}

/** Throws unless `other` is live and on the same device as `x`. */
export function assertSameDevice(op: string, x: Tensor, other: Tensor): void {
  other.assertLive();
  if (other.device !== x.device) {
    throw new TensorError(`${op}: ${x.describe()} and ${other.describe()} live on different devices`);
  }
}

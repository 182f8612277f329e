import { TensorError } from '../../device/errors.js';
import { DTYPE_BYTES, type DType } from '../../tensor/dtype.js';
import type { Chunk } from '../../tensor/storage.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { elementwiseGrid, elementwiseLoop } from '../shared/elementwise-loop.js';
import { kernelSource } from '../shared/wgsl.js';

const DTYPES: readonly DType[] = ['f32', 'f16', 'i32', 'u32'];

/**
 * WGSL conversions, written on bits so every driver gives the same result:
 * - f32 -> f16 rounds to nearest even, overflows to inf and keeps NaN (a port of f32ToF16Bits);
 *   WGSL's own f16(x) leaves the rounding of inexact values to the implementation.
 * - f16 -> f32 is exact, subnormals included (no flush to zero).
 * - float -> integer truncates toward zero and saturates; NaN gives 0 (tested on bits: some
 *   drivers compare NaN as ordered).
 * - i32 <-> u32 reinterpret the bits (two's complement), like NumPy's astype.
 */
const HELPERS = {
  toF16Bits: `
fn f16_bits(value: f32) -> u32 {
  let x = bitcast<u32>(value);
  let sign = (x >> 16u) & 0x8000u;
  let exponent = (x >> 23u) & 0xffu;
  var mantissa = x & 0x7fffffu;
  if (exponent == 0xffu) { return sign | 0x7c00u | select(0u, 0x200u, mantissa != 0u); }
  let e = i32(exponent) - 112;
  if (e >= 31) { return sign | 0x7c00u; }
  if (e <= 0) {
    if (e < -10) { return sign; }
    mantissa = mantissa | 0x800000u;
    let shift = u32(14 - e);
    var half = mantissa >> shift;
    let remainder = mantissa & ((1u << shift) - 1u);
    let halfway = 1u << (shift - 1u);
    if (remainder > halfway || (remainder == halfway && (half & 1u) == 1u)) { half = half + 1u; }
    return sign | half;
  }
  var half = (u32(e) << 10u) | (mantissa >> 13u);
  let remainder = mantissa & 0x1fffu;
  if (remainder > 0x1000u || (remainder == 0x1000u && (half & 1u) == 1u)) { half = half + 1u; }
  return sign | half;
}
fn to_f16(value: f32) -> f16 { return bitcast<vec2<f16>>(f16_bits(value)).x; }`,
  fromF16: `
fn from_f16(h: f16) -> f32 {
  let bits = bitcast<u32>(vec2<f16>(h, 0.0h)) & 0xffffu;
  let sign = (bits & 0x8000u) << 16u;
  let exponent = (bits >> 10u) & 0x1fu;
  let mantissa = bits & 0x3ffu;
  if (exponent == 0u) { return bitcast<f32>(bitcast<u32>(f32(mantissa) * 5.9604644775390625e-8) | sign); }
  if (exponent == 31u) { return bitcast<f32>(sign | 0x7f800000u | (mantissa << 13u)); }
  return bitcast<f32>(sign | ((exponent + 112u) << 23u) | (mantissa << 13u));
}`,
  toI32: `
fn to_i32(value: f32) -> i32 {
  if ((bitcast<u32>(value) & 0x7fffffffu) > 0x7f800000u) { return 0; }
  if (value >= 2147483648.0) { return 2147483647; }
  if (value <= -2147483648.0) { return -2147483647 - 1; }
  return i32(value);
}`,
  toU32: `
fn to_u32(value: f32) -> u32 {
  if ((bitcast<u32>(value) & 0x7fffffffu) > 0x7f800000u) { return 0u; }
  if (value >= 4294967296.0) { return 4294967295u; }
  if (value <= 0.0) { return 0u; }
  return u32(value);
}`,
};

/** The WGSL expression converting `value` (stored as `from`) to `to`, and the helpers it needs. */
function conversion(from: DType, to: DType): { text: string; helpers: string[] } {
  const helpers: string[] = [];
  let value = 'value';
  let type: DType = from;
  if (from === 'f16') {
    helpers.push(HELPERS.fromF16);
    value = 'from_f16(value)';
    type = 'f32';
  }
  if (to === 'f32' || to === 'f16') {
    if (type !== 'f32') value = `f32(${value})`;
    if (to === 'f16') {
      helpers.push(HELPERS.toF16Bits);
      value = `to_f16(${value})`;
    }
    return { text: value, helpers };
  }
  if (type === 'f32') {
    helpers.push(to === 'i32' ? HELPERS.toI32 : HELPERS.toU32);
    return { text: `to_${to}(${value})`, helpers };
  }
  return { text: `bitcast<${to}>(${value})`, helpers };
}

const FIELDS = [
  { name: 'n', type: 'u32' as const },
  { name: 'source_start', type: 'u32' as const },
  { name: 'target_start', type: 'u32' as const },
];

/**
 * `x` converted to `dtype` (f32, f16, i32, u32), as a new tensor. Floats to integers truncate
 * toward zero and saturate (NaN -> 0); i32 <-> u32 keep the bits; to f16 rounds to nearest even.
 * Casting to the same dtype copies. Tensors split in chunks are converted chunk by chunk (the
 * chunks of the two dtypes need not line up).
 */
export function cast<D extends DType>(x: Tensor, dtype: D): Tensor<D> {
  x.assertLive();
  if (!DTYPES.includes(dtype)) {
    throw new TensorError(`cast: unknown dtype '${dtype}' (expected one of ${DTYPES.join(', ')})`);
  }
  const device = x.device;
  if ((dtype === 'f16' || x.dtype === 'f16') && !device.hasF16) {
    throw new TensorError(`cast of ${x.describe()} to ${dtype}: f16 needs the adapter feature shader-f16`);
  }
  const out = device.empty(x.shape, dtype);
  if (out.size === 0) return out;
  const from = x.dtype;
  if (from === dtype) {
    x.chunks.forEach((chunk, i) => {
      const size = Math.ceil((chunk.elements * DTYPE_BYTES[dtype]) / 4) * 4;
      device.copyBuffer(
        { buffer: chunk.buffer, offset: 0, size },
        { buffer: out.chunks[i].buffer, offset: 0, size },
      );
    });
    return out;
  }
  const { text, helpers } = conversion(from, dtype);
  const perInvocation = device.tuning.elementwisePerInvocation;
  const launch = (source: Chunk, target: Chunk, start: number, end: number) => {
    const items = end - start;
    device.dispatch({
      key: `${KERNELS.cast}:${from}:${dtype}:${perInvocation}`,
      source: () =>
        kernelSource({
          storage: [
            { name: 'input', type: from, access: 'read' },
            { name: 'output', type: dtype, access: 'read_write' },
          ],
          uniforms: FIELDS,
          workgroupSize: device.tuning.elementwiseWorkgroup,
          helpers: helpers.join('\n'),
          body: elementwiseLoop(
            perInvocation,
            (index) =>
              `let value = input[params.source_start + ${index}]; output[params.target_start + ${index}] = ${text};`,
          ),
        }),
      bindings: [
        { buffer: source.buffer, offset: 0, size: source.buffer.size },
        { buffer: target.buffer, offset: 0, size: target.buffer.size },
      ],
      uniforms: {
        fields: FIELDS,
        values: {
          n: items,
          source_start: start - source.elementOffset,
          target_start: start - target.elementOffset,
        },
      },
      workgroups: elementwiseGrid(device, items, perInvocation),
    });
  };
  for (const target of out.chunks) {
    for (const source of x.chunks) {
      const start = Math.max(source.elementOffset, target.elementOffset);
      const end = Math.min(source.elementOffset + source.elements, target.elementOffset + target.elements);
      if (end > start) launch(source, target, start, end);
    }
  }
  return out;
}

import type { SafetensorsDtype } from './dtype.js';
import { SafetensorsError } from './errors.js';

/** Dtypes `toFloat32` converts. */
export type FloatDtype = 'F16' | 'BF16' | 'F32' | 'F64';

const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

let halfTable: Uint32Array | undefined;

/** f32 bit patterns of all 65,536 f16 values, built on first use (256 KiB). */
function halfToFloatTable(): Uint32Array {
  if (halfTable !== undefined) return halfTable;
  halfTable = new Uint32Array(65536);
  for (let half = 0; half < 65536; half++) halfTable[half] = halfBitsToFloatBits(half);
  return halfTable;
}

/** Widens the bits of an IEEE binary16 to the bits of the equal binary32 (exact). */
export function halfBitsToFloatBits(half: number): number {
  const sign = (half & 0x8000) << 16;
  const exponent = (half >> 10) & 0x1f;
  let mantissa = half & 0x3ff;
  if (exponent === 0) {
    if (mantissa === 0) return sign >>> 0;
    // Subnormal: shift the mantissa up until its leading 1 reaches the implicit bit.
    let shift = 0;
    while ((mantissa & 0x400) === 0) {
      mantissa <<= 1;
      shift++;
    }
    return (sign | ((113 - shift) << 23) | ((mantissa & 0x3ff) << 13)) >>> 0;
  }
  if (exponent === 0x1f) return (sign | 0x7f800000 | (mantissa << 13)) >>> 0;
  return (sign | ((exponent + 112) << 23) | (mantissa << 13)) >>> 0;
}

/** Narrows binary32 bits to binary16 bits, rounding to nearest even; NaN stays NaN. */
export function floatBitsToHalfBits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa === 0 ? 0 : 0x200 | (mantissa >>> 13));
  const halfExponent = exponent - 112;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    if (halfExponent < -10) return sign;
    const full = mantissa | 0x800000;
    const shift = 14 - halfExponent;
    let half = full >>> shift;
    const remainder = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (remainder > halfway || (remainder === halfway && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (halfExponent << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  if (remainder > 0x1000 || (remainder === 0x1000 && (half & 1) === 1)) half++;
  return sign | half;
}

/** Narrows binary32 bits to bfloat16 bits, rounding to nearest even; NaN stays NaN. */
export function floatBitsToBfloat16Bits(bits: number): number {
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) return ((bits >>> 16) | 0x40) & 0xffff;
  const rounded = bits + 0x7fff + ((bits >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

function readUint16(data: Uint8Array, count: number): Uint16Array {
  if (littleEndianHost && data.byteOffset % 2 === 0)
    return new Uint16Array(data.buffer, data.byteOffset, count);
  const out = new Uint16Array(count);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let index = 0; index < count; index++) out[index] = view.getUint16(index * 2, true);
  return out;
}

/**
 * Converts a floating-point tensor's bytes to a new Float32Array (never a view of `data`).
 * F16 and BF16 widen exactly; F64 rounds to nearest. Other dtypes throw, naming the tensor.
 */
export function toFloat32(entry: { name?: string; dtype: SafetensorsDtype; data: Uint8Array }): Float32Array {
  const { dtype, data } = entry;
  const where = { tensorName: entry.name };
  const size = dtype === 'F64' ? 8 : dtype === 'F32' ? 4 : 2;
  if (data.byteLength % size !== 0) {
    throw new SafetensorsError(`${data.byteLength} bytes is not a whole number of ${dtype} values`, where);
  }
  const count = data.byteLength / size;
  switch (dtype) {
    case 'F32': {
      if (littleEndianHost) {
        const out = new Float32Array(count);
        new Uint8Array(out.buffer).set(data);
        return out;
      }
      const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
      return Float32Array.from({ length: count }, (_, index) => view.getFloat32(index * 4, true));
    }
    case 'F16': {
      const table = halfToFloatTable();
      const halves = readUint16(data, count);
      const out = new Uint32Array(count);
      for (let index = 0; index < count; index++) out[index] = table[halves[index]];
      return new Float32Array(out.buffer);
    }
    case 'BF16': {
      const halves = readUint16(data, count);
      const out = new Uint32Array(count);
      for (let index = 0; index < count; index++) out[index] = halves[index] << 16;
      return new Float32Array(out.buffer);
    }
    case 'F64': {
      const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
      const out = new Float32Array(count);
      for (let index = 0; index < count; index++) out[index] = view.getFloat64(index * 8, true);
      return out;
    }
    default:
      throw new SafetensorsError(`toFloat32 converts F16, BF16, F32 and F64, not ${dtype}`, where);
  }
}

/**
 * Encodes float values as little-endian bytes of `dtype` (F32 copies; F16 and BF16 round to
 * nearest even; F64 widens exactly), ready for `writeSafetensors`.
 */
export function fromFloat32(values: Float32Array | readonly number[], dtype: FloatDtype): Uint8Array {
  const floats = values instanceof Float32Array ? values : Float32Array.from(values);
  const count = floats.length;
  switch (dtype) {
    case 'F32': {
      const out = new Uint8Array(count * 4);
      const view = new DataView(out.buffer);
      if (littleEndianHost) out.set(new Uint8Array(floats.buffer, floats.byteOffset, count * 4));
      else for (let index = 0; index < count; index++) view.setFloat32(index * 4, floats[index], true);
      return out;
    }
    case 'F64': {
      const out = new Uint8Array(count * 8);
      const view = new DataView(out.buffer);
      for (let index = 0; index < count; index++) view.setFloat64(index * 8, floats[index], true);
      return out;
    }
    case 'F16':
    case 'BF16': {
      const bits = new Uint32Array(floats.buffer, floats.byteOffset, count);
      const narrow = dtype === 'F16' ? floatBitsToHalfBits : floatBitsToBfloat16Bits;
      const out = new Uint8Array(count * 2);
      const view = new DataView(out.buffer);
      for (let index = 0; index < count; index++) view.setUint16(index * 2, narrow(bits[index]), true);
      return out;
    }
    default:
      throw new SafetensorsError(`fromFloat32 encodes F16, BF16, F32 and F64, not ${String(dtype)}`);
  }
}

import { GgufError } from './errors.js';
import { GGML_BLOCK_LAYOUT } from './ggml-types.js';
import { floatToBfloat16Bits, floatToHalfBits, halfToFloatTable } from './half.js';

const f32 = Math.fround;

/** C's roundf: halves away from zero. */
function roundAway(value: number): number {
  return value < 0 ? -Math.round(-value) : Math.round(value);
}

/** Types `quantize` writes. */
export type QuantizableType = 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'Q4_0' | 'Q5_0' | 'Q4_K' | 'Q6_K';

/**
 * Encodes float32 values as `type` blocks (row length must be a whole number of blocks; the
 * caller checks the innermost dimension). Q8_0, Q4_0 and Q5_0 follow ggml's reference quantizers
 * step for step (same scale choice, same rounding), so the bytes are the ones llama.cpp's
 * `quantize_row_*_ref` writes. Q4_K and Q6_K use this package's own scale search (a least-squares
 * refit of each sub-block's scale and min, described at `quantizeQ4K`), not ggml's; any scale
 * choice is a valid block that every GGUF reader decodes the same way.
 */
export function quantize(type: QuantizableType, values: Float32Array): Uint8Array {
  const { blockSize, blockBytes } = GGML_BLOCK_LAYOUT[type];
  if (values.length % blockSize !== 0) {
    throw new GgufError(`${values.length} values is not a whole number of ${type} blocks of ${blockSize}`);
  }
  const out = new Uint8Array((values.length / blockSize) * blockBytes);
  const view = new DataView(out.buffer);
  const blocks = values.length / blockSize;
  switch (type) {
    case 'F32':
      for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i], true);
      return out;
    case 'F16':
      for (let i = 0; i < values.length; i++) view.setUint16(i * 2, floatToHalfBits(values[i]), true);
      return out;
    case 'BF16':
      for (let i = 0; i < values.length; i++) view.setUint16(i * 2, floatToBfloat16Bits(values[i]), true);
      return out;
    case 'Q8_0':
      for (let b = 0; b < blocks; b++) quantizeQ8_0(values, b * 32, out, b * 34, view);
      return out;
    case 'Q4_0':
      for (let b = 0; b < blocks; b++) quantizeQ4_0(values, b * 32, out, b * 18, view);
      return out;
    case 'Q5_0':
      for (let b = 0; b < blocks; b++) quantizeQ5_0(values, b * 32, out, b * 22, view);
      return out;
    case 'Q4_K':
      for (let b = 0; b < blocks; b++) quantizeQ4K(values, b * 256, out, b * 144, view);
      return out;
    case 'Q6_K':
      for (let b = 0; b < blocks; b++) quantizeQ6K(values, b * 256, out, b * 210, view);
      return out;
  }
}

function quantizeQ8_0(x: Float32Array, from: number, _out: Uint8Array, at: number, view: DataView): void {
  let amax = 0;
  for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[from + j]));
  const d = f32(amax / 127);
  const inverse = d !== 0 ? f32(1 / d) : 0;
  view.setUint16(at, floatToHalfBits(d), true);
  for (let j = 0; j < 32; j++) view.setInt8(at + 2 + j, roundAway(f32(x[from + j] * inverse)));
}

/** Signed value of largest magnitude (the first such, as ggml's loop keeps it). */
function signedMax(x: Float32Array, from: number, count: number): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < count; j++) {
    const value = x[from + j];
    if (amax < Math.abs(value)) {
      amax = Math.abs(value);
      max = value;
    }
  }
  return max;
}

function quantizeQ4_0(x: Float32Array, from: number, out: Uint8Array, at: number, view: DataView): void {
  const d = f32(signedMax(x, from, 32) / -8);
  const inverse = d !== 0 ? f32(1 / d) : 0;
  view.setUint16(at, floatToHalfBits(d), true);
  for (let j = 0; j < 16; j++) {
    const low = Math.min(15, Math.trunc(f32(f32(x[from + j] * inverse) + 8.5)));
    const high = Math.min(15, Math.trunc(f32(f32(x[from + j + 16] * inverse) + 8.5)));
    out[at + 2 + j] = low | (high << 4);
  }
}

function quantizeQ5_0(x: Float32Array, from: number, out: Uint8Array, at: number, view: DataView): void {
  const d = f32(signedMax(x, from, 32) / -16);
  const inverse = d !== 0 ? f32(1 / d) : 0;
  view.setUint16(at, floatToHalfBits(d), true);
  let fifthBits = 0;
  for (let j = 0; j < 16; j++) {
    const low = Math.min(31, Math.trunc(f32(f32(x[from + j] * inverse) + 16.5)));
    const high = Math.min(31, Math.trunc(f32(f32(x[from + j + 16] * inverse) + 16.5)));
    out[at + 6 + j] = (low & 0x0f) | ((high & 0x0f) << 4);
    fifthBits |= ((low & 0x10) >> 4) << j;
    fifthBits |= ((high & 0x10) >> 4) << (j + 16);
  }
  view.setUint32(at + 2, fifthBits >>> 0, true);
}

/**
 * Fits `x ≈ scale * q - offset` with q in 0..levels over `count` values: starts from the
 * min/max range, then twice re-solves scale and offset by least squares for the chosen q.
 * Returns [scale, offset] with offset >= 0 (the min is clamped to <= 0, as ggml does).
 */
function fitAffine(x: Float32Array, from: number, count: number, levels: number): [number, number] {
  let min = 0;
  let max = -Infinity;
  for (let j = 0; j < count; j++) {
    min = Math.min(min, x[from + j]);
    max = Math.max(max, x[from + j]);
  }
  if (!(max > min)) return [0, -min];
  let scale = (max - min) / levels;
  let offset = -min;
  let bestError = affineError(x, from, count, levels, scale, offset);
  let best: [number, number] = [scale, offset];
  for (let iteration = 0; iteration < 2; iteration++) {
    let sumQ = 0;
    let sumQQ = 0;
    let sumX = 0;
    let sumQX = 0;
    for (let j = 0; j < count; j++) {
      const q = Math.min(levels, Math.max(0, Math.round((x[from + j] + offset) / scale)));
      sumQ += q;
      sumQQ += q * q;
      sumX += x[from + j];
      sumQX += q * x[from + j];
    }
    const determinant = count * sumQQ - sumQ * sumQ;
    if (determinant <= 0) break;
    const nextScale = (count * sumQX - sumQ * sumX) / determinant;
    const nextOffset = Math.max(0, (sumQ * sumQX - sumQQ * sumX) / determinant);
    if (!(nextScale > 0)) break;
    scale = nextScale;
    offset = nextOffset;
    const error = affineError(x, from, count, levels, scale, offset);
    if (error < bestError) {
      bestError = error;
      best = [scale, offset];
    }
  }
  return best;
}

function affineError(
  x: Float32Array,
  from: number,
  count: number,
  levels: number,
  scale: number,
  offset: number,
): number {
  let error = 0;
  for (let j = 0; j < count; j++) {
    const q = Math.min(levels, Math.max(0, Math.round((x[from + j] + offset) / scale)));
    const difference = scale * q - offset - x[from + j];
    error += difference * difference;
  }
  return error;
}

/**
 * Q4_K: eight sub-blocks of 32 values, each `d * sc * q - dmin * m` with q in 0..15 and 6-bit
 * sc, m. Each sub-block's scale and offset come from `fitAffine`; the block's d and dmin map the
 * largest of them to 63; q is then chosen against the scales as they will be decoded.
 */
function quantizeQ4K(x: Float32Array, from: number, out: Uint8Array, at: number, view: DataView): void {
  const half = halfToFloatTable();
  const scales = new Float64Array(8);
  const offsets = new Float64Array(8);
  for (let s = 0; s < 8; s++) [scales[s], offsets[s]] = fitAffine(x, from + s * 32, 32, 15);
  const maxScale = Math.max(...scales);
  const maxOffset = Math.max(...offsets);
  const dBits = floatToHalfBits(maxScale / 63);
  const dminBits = floatToHalfBits(maxOffset / 63);
  const d = half[dBits];
  const dmin = half[dminBits];
  view.setUint16(at, dBits, true);
  view.setUint16(at + 2, dminBits, true);
  const sc = new Uint8Array(8);
  const mn = new Uint8Array(8);
  for (let s = 0; s < 8; s++) {
    sc[s] = d > 0 && scales[s] > 0 ? Math.min(63, Math.max(1, Math.round(scales[s] / d))) : 0;
    mn[s] = dmin > 0 ? Math.min(63, Math.round(offsets[s] / dmin)) : 0;
  }
  const packed = at + 4;
  for (let s = 0; s < 4; s++) {
    out[packed + s] = sc[s];
    out[packed + s + 4] = mn[s];
  }
  for (let s = 4; s < 8; s++) {
    out[packed + s + 4] = (sc[s] & 0x0f) | ((mn[s] & 0x0f) << 4);
    out[packed + s - 4] |= (sc[s] >> 4) << 6;
    out[packed + s] |= (mn[s] >> 4) << 6;
  }
  const levels = new Uint8Array(256);
  for (let s = 0; s < 8; s++) {
    const step = f32(d * sc[s]);
    const offset = f32(dmin * mn[s]);
    for (let j = 0; j < 32; j++) {
      const q = step > 0 ? Math.round((x[from + s * 32 + j] + offset) / step) : 0;
      levels[s * 32 + j] = Math.min(15, Math.max(0, q));
    }
  }
  let quants = at + 16;
  for (let j = 0; j < 256; j += 64) {
    for (let l = 0; l < 32; l++) out[quants + l] = levels[j + l] | (levels[j + l + 32] << 4);
    quants += 32;
  }
}

/**
 * Q6_K: sixteen sub-blocks of 16 values, each `d * sc * q` with q in -32..31 and int8 sc. A
 * sub-block's scale maps its largest-magnitude value to -32 (as Q4_0 does with -8); the block's d
 * maps the largest scale to -128; q is chosen against the decoded scales.
 */
function quantizeQ6K(x: Float32Array, from: number, out: Uint8Array, at: number, view: DataView): void {
  const half = halfToFloatTable();
  const scales = new Float64Array(16);
  let maxScale = 0;
  for (let s = 0; s < 16; s++) {
    scales[s] = signedMax(x, from + s * 16, 16) / -32;
    if (Math.abs(scales[s]) > Math.abs(maxScale)) maxScale = scales[s];
  }
  const dBits = floatToHalfBits(maxScale / -128);
  const d = half[dBits];
  const sc = new Int8Array(16);
  for (let s = 0; s < 16; s++) sc[s] = d !== 0 ? Math.max(-128, Math.min(127, Math.round(scales[s] / d))) : 0;
  const levels = new Uint8Array(256);
  for (let s = 0; s < 16; s++) {
    const step = f32(d * sc[s]);
    for (let j = 0; j < 16; j++) {
      const q = step !== 0 ? Math.round(x[from + s * 16 + j] / step) : 0;
      levels[s * 16 + j] = Math.min(31, Math.max(-32, q)) + 32;
    }
  }
  let low = at;
  let high = at + 128;
  for (let j = 0; j < 256; j += 128) {
    for (let l = 0; l < 32; l++) {
      const [q1, q2, q3, q4] = [levels[j + l], levels[j + l + 32], levels[j + l + 64], levels[j + l + 96]];
      out[low + l] = (q1 & 0x0f) | ((q3 & 0x0f) << 4);
      out[low + l + 32] = (q2 & 0x0f) | ((q4 & 0x0f) << 4);
      out[high + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
    }
    low += 64;
    high += 32;
  }
  for (let s = 0; s < 16; s++) view.setInt8(at + 192 + s, sc[s]);
  view.setUint16(at + 208, dBits, true);
}

import { TensorError } from '../../device/errors.js';
import { f16BitsToF32, f32ToF16Bits } from '../../tensor/dtype.js';

/**
 * Storage formats of a frozen weight [rows, cols] kept outside the f32 tensors, decoded inside
 * the packed matmul kernels. Rows are stored back to back with no padding, in ggml's byte layout
 * (so a GGUF tensor's data is a valid packed weight as it is):
 * - `f16`, `bf16`: one little-endian 16-bit value per element (IEEE half; bfloat16 = the top 16
 *   bits of an f32).
 * - `q8_0`: blocks of 32 values: an f16 scale d, then 32 int8 q; value = d * q (34 bytes, 8.5 bits
 *   per weight). ggml's Q8_0.
 * - `q4_0`: blocks of 32 values: an f16 scale d, then 16 bytes; byte j holds element j in its low
 *   nibble and element j + 16 in its high nibble; value = d * (nibble - 8) (18 bytes, 4.5 bits
 *   per weight). ggml's Q4_0.
 * - `q4_k`: super-blocks of 256 values (144 bytes, 4.5 bits per weight), ggml's Q4_K: f16 d and
 *   dmin, 12 bytes of eight 6-bit scales and mins (see `q4kScaleAndMin`), then 128 bytes of
 *   nibbles: bytes 32c..32c+31 hold sub-block 2c in their low nibbles and 2c+1 in their high
 *   nibbles; value = d * scale * nibble - dmin * min of its 32-value sub-block. Weights are taken
 *   as they come (GGUF Q4_K tensors); `encodeRows` does not quantize to it.
 */
export type PackedFormat = 'f16' | 'bf16' | 'q8_0' | 'q4_0' | 'q4_k';

export const PACKED_FORMATS: readonly PackedFormat[] = ['f16', 'bf16', 'q8_0', 'q4_0', 'q4_k'];

/** Values per (sub-)block: the kernel's decode unit for all formats. */
export const BLOCK = 32;

/** Values per stored block (a Q4_K super-block holds 256). */
const BLOCK_VALUES: Record<PackedFormat, number> = { f16: 32, bf16: 32, q8_0: 32, q4_0: 32, q4_k: 256 };
/** Bytes per stored block. */
const BLOCK_BYTES: Record<PackedFormat, number> = { f16: 64, bf16: 64, q8_0: 34, q4_0: 18, q4_k: 144 };

export function isQuantized(format: PackedFormat): boolean {
  return format === 'q8_0' || format === 'q4_0' || format === 'q4_k';
}

/** Values per stored block of a quantized format (rows hold whole blocks). */
export function blockValues(format: PackedFormat): number {
  return BLOCK_VALUES[format];
}

/** Bytes of one row of `cols` elements; throws where the format needs whole blocks. */
export function packedRowBytes(format: PackedFormat, cols: number): number {
  if (!isQuantized(format)) return cols * 2;
  const size = BLOCK_VALUES[format];
  if (cols % size !== 0) {
    throw new TensorError(
      `${format} stores rows in blocks of ${size} values; a row of ${cols} values is not a whole number of blocks`,
    );
  }
  return (cols / size) * BLOCK_BYTES[format];
}

/** Whether rows of `cols` values can be stored in `format`. */
export function fitsFormat(format: PackedFormat, cols: number): boolean {
  return !isQuantized(format) || cols % BLOCK_VALUES[format] === 0;
}

/** Average bits per weight of a format (for memory plans). */
export function bitsPerWeight(format: PackedFormat): number {
  return (BLOCK_BYTES[format] * 8) / BLOCK_VALUES[format];
}

/**
 * The 6-bit scale and min of sub-block `index` (0..7) of the Q4_K super-block whose 12 scale bytes
 * start at `at`: sub-blocks 0-3 in the low 6 bits of bytes 0-3 (scales) and 4-7 (mins); 4-7 from
 * the nibbles of bytes 8-11 (low: scale, high: min) and the top 2 bits of bytes 0-3 (scale) and 4-7
 * (min) as their high bits.
 */
export function q4kScaleAndMin(bytes: Uint8Array, at: number, index: number): [number, number] {
  if (index < 4) return [bytes[at + index] & 63, bytes[at + index + 4] & 63];
  return [
    (bytes[at + index + 4] & 15) | ((bytes[at + index - 4] >> 6) << 4),
    (bytes[at + index + 4] >> 4) | ((bytes[at + index] >> 6) << 4),
  ];
}

/** C's roundf: halves away from zero. */
function roundHalfAway(value: number): number {
  return Math.sign(value) * Math.floor(Math.abs(value) + 0.5);
}

function writeHalf(out: Uint8Array, offset: number, bits: number): void {
  out[offset] = bits & 0xff;
  out[offset + 1] = bits >>> 8;
}

function readHalf(bytes: Uint8Array, offset: number): number {
  return bytes[offset] | (bytes[offset + 1] << 8);
}

/** bfloat16 bits of an f32 value, rounded to nearest even (NaN stays NaN). */
export function f32ToBf16Bits(value: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setFloat32(0, value, true);
  const bits = view.getUint32(0, true);
  if (Number.isNaN(value)) return (bits >>> 16) | 0x40;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16BitsToF32(bits: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setUint32(0, (bits & 0xffff) << 16, true);
  return view.getFloat32(0, true);
}

/**
 * Encodes rows of f32 values (row-major, `rows` x `cols`) into the format's bytes. The
 * quantizers follow ggml's reference rounding in f32 arithmetic: Q8_0 d = max|x| / 127,
 * q = roundf(x / d); Q4_0 d = (the value of largest magnitude) / -8, q = min(15, trunc(x / d + 8.5)).
 */
export function encodeRows(
  values: ArrayLike<number>,
  rows: number,
  cols: number,
  format: PackedFormat,
): Uint8Array {
  if (values.length !== rows * cols) {
    throw new TensorError(`encodeRows: ${values.length} values do not fill ${rows} x ${cols}`);
  }
  if (format === 'q4_k') {
    throw new TensorError(
      'encodeRows: q4_k weights are taken as stored (GGUF Q4_K bytes through packedWeightFromBytes); quantize with @webtune/gguf',
    );
  }
  const rowBytes = packedRowBytes(format, cols);
  const out = new Uint8Array(rows * rowBytes);
  const f = Math.fround;
  if (format === 'f16' || format === 'bf16') {
    const encode = format === 'f16' ? f32ToF16Bits : f32ToBf16Bits;
    for (let i = 0; i < values.length; i++) writeHalf(out, 2 * i, encode(values[i]));
    return out;
  }
  const blocks = (rows * cols) / BLOCK;
  const blockBytes = BLOCK_BYTES[format];
  for (let b = 0; b < blocks; b++) {
    const at = b * BLOCK;
    const o = b * blockBytes;
    if (format === 'q8_0') {
      let amax = 0;
      for (let j = 0; j < BLOCK; j++) amax = Math.max(amax, Math.abs(f(values[at + j])));
      const d = f(amax / 127);
      const id = d !== 0 ? f(1 / d) : 0;
      writeHalf(out, o, f32ToF16Bits(d));
      for (let j = 0; j < BLOCK; j++) {
        const q = Math.max(-128, Math.min(127, roundHalfAway(f(f(values[at + j]) * id))));
        out[o + 2 + j] = q & 0xff;
      }
    } else {
      let amax = 0;
      let max = 0;
      for (let j = 0; j < BLOCK; j++) {
        const v = f(values[at + j]);
        if (amax < Math.abs(v)) {
          amax = Math.abs(v);
          max = v;
        }
      }
      const d = f(max / -8);
      const id = d !== 0 ? f(1 / d) : 0;
      writeHalf(out, o, f32ToF16Bits(d));
      const q = (v: number) => Math.max(0, Math.min(15, Math.trunc(f(f(f(v) * id) + 8.5))));
      for (let j = 0; j < BLOCK / 2; j++) {
        out[o + 2 + j] = q(values[at + j]) | (q(values[at + j + BLOCK / 2]) << 4);
      }
    }
  }
  return out;
}

/** Decodes packed rows back to values, exactly as the kernels do (each value is exact in f32). */
export function decodeRows(
  bytes: Uint8Array,
  rows: number,
  cols: number,
  format: PackedFormat,
): Float64Array {
  const rowBytes = packedRowBytes(format, cols);
  if (bytes.length < rows * rowBytes) {
    throw new TensorError(
      `decodeRows: ${bytes.length} bytes hold less than ${rows} rows of ${cols} ${format} values (${rows * rowBytes} bytes)`,
    );
  }
  const out = new Float64Array(rows * cols);
  if (format === 'f16' || format === 'bf16') {
    const decode = format === 'f16' ? f16BitsToF32 : bf16BitsToF32;
    for (let i = 0; i < out.length; i++) out[i] = decode(readHalf(bytes, 2 * i));
    return out;
  }
  if (format === 'q4_k') return decodeQ4K(bytes, out);
  const blockBytes = BLOCK_BYTES[format];
  for (let b = 0; b < out.length / BLOCK; b++) {
    const o = b * blockBytes;
    const d = f16BitsToF32(readHalf(bytes, o));
    for (let j = 0; j < BLOCK; j++) {
      let q: number;
      if (format === 'q8_0') q = (bytes[o + 2 + j] << 24) >> 24;
      else {
        const byte = bytes[o + 2 + (j % (BLOCK / 2))];
        q = (j < BLOCK / 2 ? byte & 15 : byte >> 4) - 8;
      }
      out[b * BLOCK + j] = Math.fround(d * q);
    }
  }
  return out;
}

/** ggml's Q4_K dequantization in f32 arithmetic: y = fround(fround(d * sc) * q) - fround(dmin * m). */
function decodeQ4K(bytes: Uint8Array, out: Float64Array): Float64Array {
  const f = Math.fround;
  for (let b = 0; b < out.length / 256; b++) {
    const o = b * 144;
    const d = f16BitsToF32(readHalf(bytes, o));
    const dmin = f16BitsToF32(readHalf(bytes, o + 2));
    for (let sub = 0; sub < 8; sub++) {
      const [scale, min] = q4kScaleAndMin(bytes, o + 4, sub);
      const d1 = f(d * scale);
      const m1 = f(dmin * min);
      const quants = o + 16 + (sub >> 1) * 32;
      const shift = (sub & 1) * 4;
      for (let l = 0; l < 32; l++) {
        out[b * 256 + sub * 32 + l] = f(f(d1 * ((bytes[quants + l] >> shift) & 15)) - m1);
      }
    }
  }
  return out;
}

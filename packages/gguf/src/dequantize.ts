import { GgufError } from './errors.js';
import { GGML_BLOCK_LAYOUT, type GgmlTypeName } from './ggml-types.js';
import { halfToFloatTable } from './half.js';

const f32 = Math.fround;

/**
 * Decodes `count` elements of `type` from little-endian GGUF tensor bytes into float32, following
 * the block layouts of ggml-common.h and the arithmetic of ggml's reference dequantizers (every
 * product rounded to float32 as C does), so the values are those llama.cpp computes on a CPU.
 */
export function dequantize(type: GgmlTypeName, data: Uint8Array, count: number): Float32Array {
  const { blockSize, blockBytes } = GGML_BLOCK_LAYOUT[type];
  if (count % blockSize !== 0) {
    throw new GgufError(`${count} elements is not a whole number of ${type} blocks of ${blockSize}`);
  }
  const needed = (count / blockSize) * blockBytes;
  if (data.byteLength < needed) {
    throw new GgufError(`${type}: ${count} elements need ${needed} bytes, got ${data.byteLength}`);
  }
  const out = new Float32Array(count);
  const half = halfToFloatTable();
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const h = (offset: number) => half[view.getUint16(offset, true)];
  const blocks = count / blockSize;
  switch (type) {
    case 'F32':
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
      return out;
    case 'F16':
      for (let i = 0; i < count; i++) out[i] = half[view.getUint16(i * 2, true)];
      return out;
    case 'BF16': {
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = view.getUint16(i * 2, true) << 16;
      return out;
    }
    case 'Q8_0':
      for (let b = 0; b < blocks; b++) {
        const base = b * 34;
        const d = h(base);
        for (let j = 0; j < 32; j++) out[b * 32 + j] = f32(view.getInt8(base + 2 + j) * d);
      }
      return out;
    case 'Q4_0':
      for (let b = 0; b < blocks; b++) {
        const base = b * 18;
        const d = h(base);
        for (let j = 0; j < 16; j++) {
          const q = data[base + 2 + j];
          out[b * 32 + j] = f32(((q & 0x0f) - 8) * d);
          out[b * 32 + j + 16] = f32(((q >> 4) - 8) * d);
        }
      }
      return out;
    case 'Q4_1':
      for (let b = 0; b < blocks; b++) {
        const base = b * 20;
        const d = h(base);
        const m = h(base + 2);
        for (let j = 0; j < 16; j++) {
          const q = data[base + 4 + j];
          out[b * 32 + j] = f32(f32((q & 0x0f) * d) + m);
          out[b * 32 + j + 16] = f32(f32((q >> 4) * d) + m);
        }
      }
      return out;
    case 'Q5_0':
    case 'Q5_1': {
      const withMin = type === 'Q5_1';
      for (let b = 0; b < blocks; b++) {
        const base = b * blockBytes;
        const d = h(base);
        const m = withMin ? h(base + 2) : 0;
        const high = view.getUint32(base + (withMin ? 4 : 2), true);
        const low = base + (withMin ? 8 : 6);
        for (let j = 0; j < 16; j++) {
          const q = data[low + j];
          const fifth0 = ((high >>> j) << 4) & 0x10;
          const fifth1 = (high >>> (j + 12)) & 0x10;
          const q0 = (q & 0x0f) | fifth0;
          const q1 = (q >> 4) | fifth1;
          if (withMin) {
            out[b * 32 + j] = f32(f32(q0 * d) + m);
            out[b * 32 + j + 16] = f32(f32(q1 * d) + m);
          } else {
            out[b * 32 + j] = f32((q0 - 16) * d);
            out[b * 32 + j + 16] = f32((q1 - 16) * d);
          }
        }
      }
      return out;
    }
    case 'Q4_K':
    case 'Q5_K': {
      const five = type === 'Q5_K';
      const scaleMin = new Uint8Array(2);
      for (let b = 0; b < blocks; b++) {
        const base = b * blockBytes;
        const d = h(base);
        const dmin = h(base + 2);
        const scales = base + 4;
        const highBits = base + 16; // Q5_K only: 32 bytes of fifth bits
        let quants = five ? base + 48 : base + 16;
        let y = b * 256;
        let which = 0;
        let u1 = 1;
        let u2 = 2;
        for (let j = 0; j < 256; j += 64) {
          scaleAndMin(data, scales, which, scaleMin);
          const d1 = f32(d * scaleMin[0]);
          const m1 = f32(dmin * scaleMin[1]);
          scaleAndMin(data, scales, which + 1, scaleMin);
          const d2 = f32(d * scaleMin[0]);
          const m2 = f32(dmin * scaleMin[1]);
          for (let l = 0; l < 32; l++) {
            const fifth = five && (data[highBits + l] & u1) !== 0 ? 16 : 0;
            out[y + l] = f32(f32(d1 * ((data[quants + l] & 0x0f) + fifth)) - m1);
          }
          for (let l = 0; l < 32; l++) {
            const fifth = five && (data[highBits + l] & u2) !== 0 ? 16 : 0;
            out[y + 32 + l] = f32(f32(d2 * ((data[quants + l] >> 4) + fifth)) - m2);
          }
          quants += 32;
          y += 64;
          which += 2;
          u1 <<= 2;
          u2 <<= 2;
        }
      }
      return out;
    }
    case 'Q6_K':
      for (let b = 0; b < blocks; b++) {
        const base = b * 210;
        let low = base;
        let high = base + 128;
        let scales = base + 192;
        const d = h(base + 208);
        let y = b * 256;
        for (let n = 0; n < 256; n += 128) {
          for (let l = 0; l < 32; l++) {
            const group = l >> 4;
            const qh = data[high + l];
            const q1 = ((data[low + l] & 0x0f) | ((qh & 3) << 4)) - 32;
            const q2 = ((data[low + l + 32] & 0x0f) | (((qh >> 2) & 3) << 4)) - 32;
            const q3 = ((data[low + l] >> 4) | (((qh >> 4) & 3) << 4)) - 32;
            const q4 = ((data[low + l + 32] >> 4) | (((qh >> 6) & 3) << 4)) - 32;
            out[y + l] = f32(f32(d * view.getInt8(scales + group)) * q1);
            out[y + l + 32] = f32(f32(d * view.getInt8(scales + group + 2)) * q2);
            out[y + l + 64] = f32(f32(d * view.getInt8(scales + group + 4)) * q3);
            out[y + l + 96] = f32(f32(d * view.getInt8(scales + group + 6)) * q4);
          }
          y += 128;
          low += 64;
          high += 32;
          scales += 8;
        }
      }
      return out;
  }
}

/**
 * The 6-bit scale and min of sub-block `index` (0..7) of a Q4_K/Q5_K block, packed in 12 bytes
 * at `offset`: sub-blocks 0-3 in the low 6 bits of bytes 0-3 (scales) and 4-7 (mins), 4-7 split
 * between the nibbles of bytes 8-11 and the top 2 bits of bytes 0-7.
 */
export function scaleAndMin(data: Uint8Array, offset: number, index: number, out: Uint8Array): void {
  if (index < 4) {
    out[0] = data[offset + index] & 63;
    out[1] = data[offset + index + 4] & 63;
  } else {
    out[0] = (data[offset + index + 4] & 0x0f) | ((data[offset + index - 4] >> 6) << 4);
    out[1] = (data[offset + index + 4] >> 4) | ((data[offset + index] >> 6) << 4);
  }
}

import { type DType, f16BitsToF32, f32ToF16Bits, type HostArray } from '../tensor/dtype.js';

/** Host values as the bytes a buffer of `dtype` holds (f16 rounded from f32). */
export function encodeHost(data: ArrayLike<number>, dtype: DType): Uint8Array {
  switch (dtype) {
    case 'f32':
      return bytesOf(data instanceof Float32Array ? data : Float32Array.from(data));
    case 'i32':
      return bytesOf(data instanceof Int32Array ? data : Int32Array.from(data));
    case 'u32':
      return bytesOf(data instanceof Uint32Array ? data : Uint32Array.from(data));
    case 'f16': {
      const bits = new Uint16Array(data.length);
      for (let i = 0; i < data.length; i++) bits[i] = f32ToF16Bits(data[i]);
      return bytesOf(bits);
    }
  }
}

/** The first `size` elements of read-back bytes as a host array (f16 widened to f32). */
export function decodeHost(buffer: ArrayBuffer, dtype: DType, size: number): HostArray {
  switch (dtype) {
    case 'f32':
      return new Float32Array(buffer, 0, size);
    case 'i32':
      return new Int32Array(buffer, 0, size);
    case 'u32':
      return new Uint32Array(buffer, 0, size);
    case 'f16': {
      const bits = new Uint16Array(buffer, 0, size);
      const out = new Float32Array(size);
      for (let i = 0; i < size; i++) out[i] = f16BitsToF32(bits[i]);
      return out;
    }
  }
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

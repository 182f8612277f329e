import type { Device } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { decodeRows, encodeRows, PACKED_FORMATS, type PackedFormat, packedRowBytes } from './formats.js';

/** One buffer of a packed weight: rows [firstRow, firstRow + rows) as u32 words. */
export interface PackedChunk {
  words: Tensor<'u32'>;
  firstRow: number;
  rows: number;
}

/**
 * A frozen weight [rows, cols] (a Linear's [out, in]) stored in a packed format (half precision or
 * ggml block quantization, see formats.ts) and decoded inside the packed matmul kernels. Rows go
 * back to back in ggml's byte layout; a weight larger than one storage binding is split in chunks
 * of whole rows, each in its own buffer starting at its first row. It takes no gradient.
 */
export class PackedWeight {
  private released = false;

  constructor(
    readonly device: Device,
    readonly format: PackedFormat,
    readonly shape: readonly [number, number],
    readonly chunks: readonly PackedChunk[],
  ) {}

  get rows(): number {
    return this.shape[0];
  }

  get cols(): number {
    return this.shape[1];
  }

  get rowBytes(): number {
    return packedRowBytes(this.format, this.cols);
  }

  /** Bytes of the packed data (without buffer rounding). */
  get byteLength(): number {
    return this.rows * this.rowBytes;
  }

  get disposed(): boolean {
    return this.released;
  }

  assertLive(): void {
    if (this.released) throw new TensorError(`packed weight ${this.describe()} was disposed`);
  }

  describe(): string {
    return `${this.format}[${this.rows}, ${this.cols}]`;
  }

  /** The packed bytes, read back from the device (for checks and export). */
  async readBytes(): Promise<Uint8Array> {
    this.assertLive();
    const out = new Uint8Array(this.byteLength);
    for (const chunk of this.chunks) {
      const words = await chunk.words.toArray();
      const bytes = new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
      out.set(bytes.subarray(0, chunk.rows * this.rowBytes), chunk.firstRow * this.rowBytes);
    }
    return out;
  }

  /** The decoded values [rows * cols] on the host, as the kernels see them. */
  async decode(): Promise<Float64Array> {
    return decodeRows(await this.readBytes(), this.rows, this.cols, this.format);
  }

  dispose(): void {
    if (this.released) return;
    this.released = true;
    for (const chunk of this.chunks) chunk.words.dispose();
  }
}

/** Rows of one chunk: as many whole rows as fit one binding. */
function rowsPerChunk(device: Device, rowBytes: number, what: string): number {
  const rows = Math.floor(device.maxBindingBytes / Math.max(rowBytes, 1));
  if (rows < 1) {
    throw new TensorError(
      `${what}: one row of ${rowBytes} bytes exceeds this device's binding limit of ${device.maxBindingBytes} bytes`,
    );
  }
  return rows;
}

function checkFormat(format: string, what: string): asserts format is PackedFormat {
  if (!(PACKED_FORMATS as readonly string[]).includes(format)) {
    throw new TensorError(`${what}: unknown packed format "${format}" (one of ${PACKED_FORMATS.join(', ')})`);
  }
}

function uploadChunk(device: Device, bytes: Uint8Array): Tensor<'u32'> {
  const words = Math.max(1, Math.ceil(bytes.length / 4));
  const padded = new Uint8Array(words * 4);
  padded.set(bytes);
  const tensor = device.empty([words], 'u32');
  device.write(tensor, new Uint32Array(padded.buffer));
  return tensor;
}

/**
 * A packed weight from raw bytes already in the format (ggml's layout, e.g. a GGUF tensor's data
 * of type F16, BF16, Q8_0 or Q4_0 for a tensor of ggml shape [cols, rows]). `bytes` may be given
 * in pieces (a stream) as long as their concatenation is the whole tensor; each chunk is uploaded
 * as soon as its rows are in, so host memory stays at one chunk.
 */
export function packedWeightFromBytes(
  device: Device,
  format: PackedFormat,
  shape: readonly [number, number],
  bytes: Uint8Array | Iterable<Uint8Array>,
): PackedWeight {
  const what = `packed weight ${format}[${shape.join(', ')}]`;
  checkFormat(format, what);
  const [rows, cols] = shape;
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) {
    throw new TensorError(`${what}: the shape must be two non-negative integers`);
  }
  const rowBytes = packedRowBytes(format, cols);
  const perChunk = rowsPerChunk(device, rowBytes, what);
  const chunks: PackedChunk[] = [];
  const pieces = bytes instanceof Uint8Array ? [bytes] : bytes;
  let pending = new Uint8Array(Math.min(rows, perChunk) * rowBytes);
  let filled = 0;
  let total = 0;
  const flush = () => {
    const firstRow =
      chunks.length === 0 ? 0 : chunks[chunks.length - 1].firstRow + chunks[chunks.length - 1].rows;
    const count = filled / rowBytes;
    chunks.push({ words: uploadChunk(device, pending.subarray(0, filled)), firstRow, rows: count });
    pending = new Uint8Array(Math.min(rows - firstRow - count, perChunk) * rowBytes);
    filled = 0;
  };
  try {
    for (const piece of pieces) {
      total += piece.length;
      if (total > rows * rowBytes) {
        throw new TensorError(`${what}: got more than the ${rows * rowBytes} bytes it holds`);
      }
      let at = 0;
      while (at < piece.length) {
        const take = Math.min(piece.length - at, pending.length - filled);
        pending.set(piece.subarray(at, at + take), filled);
        filled += take;
        at += take;
        if (filled === pending.length && pending.length > 0) flush();
      }
    }
    if (total !== rows * rowBytes) {
      throw new TensorError(`${what}: got ${total} bytes, the tensor holds ${rows * rowBytes}`);
    }
    if (chunks.length === 0)
      chunks.push({ words: uploadChunk(device, new Uint8Array(0)), firstRow: 0, rows: 0 });
  } catch (error) {
    for (const chunk of chunks) chunk.words.dispose();
    throw error;
  }
  return new PackedWeight(device, format, [rows, cols], chunks);
}

/**
 * Packs f32 values [rows, cols] (row-major) into a format on the device, a chunk of rows at a
 * time (host memory: one chunk's bytes beside the input).
 */
export function packWeight(
  device: Device,
  values: ArrayLike<number>,
  shape: readonly [number, number],
  format: PackedFormat,
): PackedWeight {
  const what = `packWeight ${format}[${shape.join(', ')}]`;
  checkFormat(format, what);
  const [rows, cols] = shape;
  if (values.length !== rows * cols) {
    throw new TensorError(`${what}: ${values.length} values do not fill the shape (${rows * cols})`);
  }
  const perChunk = rowsPerChunk(device, packedRowBytes(format, cols), what);
  function* pieces(): Generator<Uint8Array> {
    for (let row = 0; row < rows; row += perChunk) {
      const end = Math.min(rows, row + perChunk);
      const slice =
        values instanceof Float32Array || values instanceof Float64Array
          ? values.subarray(row * cols, end * cols)
          : Array.from({ length: (end - row) * cols }, (_, i) => values[row * cols + i]);
      yield encodeRows(slice, end - row, cols, format);
    }
  }
  return packedWeightFromBytes(device, format, [rows, cols], pieces());
}

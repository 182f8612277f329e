import { GgufError } from './errors.js';
import { GGML_BLOCK_LAYOUT, GGML_TYPES, type GgmlTypeName } from './ggml-types.js';
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC } from './header.js';
import { GGUF_VALUE_TYPES, type GgufScalar, type GgufScalarTypeName, type GgufValue } from './metadata.js';

/** A tensor to write: its shape (outermost first), type and a way to produce its bytes. */
export interface GgufTensorInput {
  name: string;
  /** Outermost first ([out_features, in_features] for a linear weight). */
  shape: readonly number[];
  type: GgmlTypeName;
  /** The encoded bytes, produced when the writer reaches this tensor (so only one is in memory). */
  data: Uint8Array | (() => Uint8Array | Promise<Uint8Array>);
}

const encoder = new TextEncoder();

/** Grows a byte buffer as the header is written. */
class ByteWriter {
  #bytes = new Uint8Array(1 << 16);
  #view = new DataView(this.#bytes.buffer);
  length = 0;

  #reserve(count: number): void {
    if (this.length + count <= this.#bytes.length) return;
    let capacity = this.#bytes.length * 2;
    while (capacity < this.length + count) capacity *= 2;
    const next = new Uint8Array(capacity);
    next.set(this.#bytes.subarray(0, this.length));
    this.#bytes = next;
    this.#view = new DataView(next.buffer);
  }

  uint32(value: number): void {
    this.#reserve(4);
    this.#view.setUint32(this.length, value, true);
    this.length += 4;
  }

  uint64(value: number | bigint): void {
    this.#reserve(8);
    this.#view.setBigUint64(this.length, BigInt(value), true);
    this.length += 8;
  }

  string(value: string): void {
    const bytes = encoder.encode(value);
    this.uint64(bytes.length);
    this.#reserve(bytes.length);
    this.#bytes.set(bytes, this.length);
    this.length += bytes.length;
  }

  scalar(type: GgufScalarTypeName, value: GgufScalar, key: string): void {
    if (type === 'STRING') {
      if (typeof value !== 'string')
        throw new GgufError(`a STRING value must be a string, got ${typeof value}`, { key });
      this.string(value);
      return;
    }
    if (type === 'BOOL') {
      if (typeof value !== 'boolean')
        throw new GgufError(`a BOOL value must be a boolean, got ${typeof value}`, { key });
      this.#reserve(1);
      this.#view.setUint8(this.length++, value ? 1 : 0);
      return;
    }
    if (typeof value !== 'number' && typeof value !== 'bigint') {
      throw new GgufError(`a ${type} value must be a number, got ${typeof value}`, { key });
    }
    this.#reserve(8);
    const view = this.#view;
    const at = this.length;
    const number = Number(value);
    switch (type) {
      case 'UINT8':
        view.setUint8(at, number);
        this.length += 1;
        return;
      case 'INT8':
        view.setInt8(at, number);
        this.length += 1;
        return;
      case 'UINT16':
        view.setUint16(at, number, true);
        this.length += 2;
        return;
      case 'INT16':
        view.setInt16(at, number, true);
        this.length += 2;
        return;
      case 'UINT32':
        view.setUint32(at, number, true);
        this.length += 4;
        return;
      case 'INT32':
        view.setInt32(at, number, true);
        this.length += 4;
        return;
      case 'FLOAT32':
        view.setFloat32(at, number, true);
        this.length += 4;
        return;
      case 'FLOAT64':
        view.setFloat64(at, number, true);
        this.length += 8;
        return;
      case 'UINT64':
        view.setBigUint64(at, BigInt(value), true);
        this.length += 8;
        return;
      case 'INT64':
        view.setBigInt64(at, BigInt(value), true);
        this.length += 8;
        return;
    }
  }

  padTo(alignment: number): void {
    const padded = Math.ceil(this.length / alignment) * alignment;
    this.#reserve(padded - this.length);
    this.#bytes.fill(0, this.length, padded);
    this.length = padded;
  }

  bytes(): Uint8Array {
    return this.#bytes.slice(0, this.length);
  }
}

/** The planned layout of a GGUF file: the header bytes and each tensor's offset and size. */
export interface GgufLayout {
  header: Uint8Array;
  tensors: { input: GgufTensorInput; offset: number; byteLength: number }[];
  /** Total file size. */
  size: number;
}

/**
 * Plans a GGUF v3 file: encodes the header (metadata in the given order, then tensor infos with
 * offsets aligned to `general.alignment`, default 32) and returns it with the tensor layout.
 */
export function planGguf(
  metadata: Iterable<[string, GgufValue]>,
  tensors: readonly GgufTensorInput[],
): GgufLayout {
  const entries = [...metadata];
  const alignmentEntry = entries.find(([key]) => key === 'general.alignment');
  const alignment = alignmentEntry ? Number(alignmentEntry[1].value) : GGUF_DEFAULT_ALIGNMENT;
  if (!(alignment > 0 && (alignment & (alignment - 1)) === 0)) {
    throw new GgufError(`must be a power of two, got ${alignment}`, { key: 'general.alignment' });
  }
  const keys = new Set<string>();
  const writer = new ByteWriter();
  writer.uint32(GGUF_MAGIC);
  writer.uint32(3);
  writer.uint64(tensors.length);
  writer.uint64(entries.length);
  for (const [key, entry] of entries) {
    if (keys.has(key)) throw new GgufError('appears twice', { key });
    keys.add(key);
    writer.string(key);
    writer.uint32(GGUF_VALUE_TYPES[entry.type]);
    if (entry.type === 'ARRAY') {
      writer.uint32(GGUF_VALUE_TYPES[entry.itemType]);
      writer.uint64(entry.value.length);
      for (const item of entry.value) writer.scalar(entry.itemType, item, key);
    } else writer.scalar(entry.type, entry.value, key);
  }
  const names = new Set<string>();
  const layout: GgufLayout['tensors'] = [];
  let offset = 0;
  for (const input of tensors) {
    if (names.has(input.name)) throw new GgufError('is written twice', { tensorName: input.name });
    names.add(input.name);
    const dimensions = [...input.shape].reverse();
    const elements = dimensions.reduce((product, extent) => product * extent, 1);
    const { blockSize, blockBytes } = GGML_BLOCK_LAYOUT[input.type];
    if ((dimensions[0] ?? 1) % blockSize !== 0) {
      throw new GgufError(
        `${input.type} needs rows of whole ${blockSize}-element blocks, the row length is ${dimensions[0]}`,
        {
          tensorName: input.name,
        },
      );
    }
    const byteLength = (elements / blockSize) * blockBytes;
    writer.string(input.name);
    writer.uint32(dimensions.length);
    for (const extent of dimensions) writer.uint64(extent);
    writer.uint32(GGML_TYPES[input.type]);
    writer.uint64(offset);
    layout.push({ input, offset, byteLength });
    offset += Math.ceil(byteLength / alignment) * alignment;
  }
  writer.padTo(alignment);
  const header = writer.bytes();
  return { header, tensors: layout, size: header.length + offset };
}

/**
 * Writes a GGUF v3 file as a stream of chunks: the header, then each tensor's bytes (produced on
 * demand) padded to the alignment. A tensor whose bytes do not match its type and shape throws.
 */
export async function* writeGguf(
  metadata: Iterable<[string, GgufValue]>,
  tensors: readonly GgufTensorInput[],
): AsyncGenerator<Uint8Array> {
  const layout = planGguf(metadata, tensors);
  yield layout.header;
  let written = 0;
  for (let index = 0; index < layout.tensors.length; index++) {
    const { input, offset, byteLength } = layout.tensors[index];
    const data = typeof input.data === 'function' ? await input.data() : input.data;
    if (data.byteLength !== byteLength) {
      throw new GgufError(
        `has ${data.byteLength} bytes, a ${input.type} tensor of shape [${input.shape.join(', ')}] has ${byteLength}`,
        {
          tensorName: input.name,
        },
      );
    }
    if (offset !== written) yield new Uint8Array(offset - written);
    yield data;
    written = offset + byteLength;
  }
  const end = layout.size - layout.header.length;
  if (end > written) yield new Uint8Array(end - written);
}

/** Writes a whole GGUF file into memory (tests, small files). */
export async function writeGgufBytes(
  metadata: Iterable<[string, GgufValue]>,
  tensors: readonly GgufTensorInput[],
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of writeGguf(metadata, tensors)) chunks.push(chunk);
  const out = new Uint8Array(chunks.reduce((total, chunk) => total + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

import type { RandomAccessReader } from '@webtune/safetensors';
import { GgufError } from './errors.js';
import { GGML_BLOCK_LAYOUT, type GgmlTypeName, ggmlTypeName, supportedTypeName } from './ggml-types.js';
import {
  GGUF_VALUE_BYTES,
  type GgufMetadata,
  type GgufScalar,
  type GgufScalarTypeName,
  type GgufValue,
  valueTypeName,
} from './metadata.js';

/** "GGUF" read as a little-endian uint32. */
export const GGUF_MAGIC = 0x46554747;
/** llama.cpp's GGML_MAX_DIMS. */
const MAX_DIMENSIONS = 4;
/** Default data alignment when `general.alignment` is absent. */
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** Header bytes read per request. */
const CHUNK = 1 << 20;

/** One tensor described by the header. */
export interface GgufTensorInfo {
  name: string;
  /** ggml's `ne`: innermost (row length) first. */
  dimensions: number[];
  /** The same, outermost first (numpy / Hugging Face order: [out_features, in_features]). */
  shape: number[];
  /** ggml type id. */
  type: number;
  /** Its name (`F32`, `Q4_K`, ... or `type N`). */
  typeName: string;
  /** Byte offset inside the data section. */
  offset: number;
  /** Bytes of data (0 when the type is not supported: reading it throws). */
  byteLength: number;
  elements: number;
}

/** A parsed, validated GGUF header. */
export interface GgufHeader {
  version: number;
  metadata: GgufMetadata;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** File offset of the data section. */
  dataStart: number;
}

/** Reads values through a RandomAccessReader in chunks, never past the end of the file. */
class Cursor {
  position = 0;
  #buffer: Uint8Array = new Uint8Array(0);
  #view: DataView = new DataView(new ArrayBuffer(0));
  #bufferStart = 0;
  readonly #reader: RandomAccessReader;
  readonly #fail: (problem: string, offset?: number) => never;

  constructor(reader: RandomAccessReader, fail: (problem: string, offset?: number) => never) {
    this.#reader = reader;
    this.#fail = fail;
  }

  get size(): number {
    return this.#reader.size;
  }

  get remaining(): number {
    return this.#reader.size - this.position;
  }

  async #ensure(length: number, what: string): Promise<number> {
    if (length > this.remaining) {
      this.#fail(
        `the file ends inside ${what} (needs ${length} bytes, ${this.remaining} left)`,
        this.position,
      );
    }
    const local = this.position - this.#bufferStart;
    if (local >= 0 && local + length <= this.#buffer.length) return local;
    const want = Math.min(Math.max(length, CHUNK), this.remaining);
    let bytes: Uint8Array;
    try {
      bytes = await this.#reader.read(this.position, want);
    } catch (error) {
      this.#fail(`reading ${want} bytes failed: ${(error as Error).message}`, this.position);
    }
    if (bytes.length !== want)
      this.#fail(`the reader returned ${bytes.length} bytes, not ${want}`, this.position);
    this.#buffer = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#bufferStart = this.position;
    return 0;
  }

  async uint32(what: string): Promise<number> {
    const at = await this.#ensure(4, what);
    this.position += 4;
    return this.#view.getUint32(at, true);
  }

  /** A uint64 that must fit in a safe integer (counts, lengths, dimensions, offsets). */
  async size64(what: string): Promise<number> {
    const at = await this.#ensure(8, what);
    const value = this.#view.getBigUint64(at, true);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) this.#fail(`${what} is ${value}, too large`, this.position);
    this.position += 8;
    return Number(value);
  }

  async string(what: string): Promise<string> {
    const length = await this.size64(`the length of ${what}`);
    if (length > this.remaining) {
      this.#fail(
        `${what} claims ${length} bytes but ${this.remaining} are left in the file`,
        this.position - 8,
      );
    }
    const at = await this.#ensure(length, what);
    this.position += length;
    try {
      return decoder.decode(this.#buffer.subarray(at, at + length));
    } catch {
      this.#fail(`${what} is not valid UTF-8`, this.position - length);
    }
  }

  async scalar(type: GgufScalarTypeName, what: string): Promise<GgufScalar> {
    if (type === 'STRING') return this.string(what);
    const bytes = GGUF_VALUE_BYTES[type]!;
    const at = await this.#ensure(bytes, what);
    this.position += bytes;
    const view = this.#view;
    switch (type) {
      case 'UINT8':
        return view.getUint8(at);
      case 'INT8':
        return view.getInt8(at);
      case 'UINT16':
        return view.getUint16(at, true);
      case 'INT16':
        return view.getInt16(at, true);
      case 'UINT32':
        return view.getUint32(at, true);
      case 'INT32':
        return view.getInt32(at, true);
      case 'FLOAT32':
        return view.getFloat32(at, true);
      case 'FLOAT64':
        return view.getFloat64(at, true);
      case 'BOOL': {
        const value = view.getUint8(at);
        if (value > 1) this.#fail(`${what} is a bool stored as ${value}`, this.position - 1);
        return value === 1;
      }
      case 'UINT64':
        return narrow(view.getBigUint64(at, true));
      case 'INT64':
        return narrow(view.getBigInt64(at, true));
    }
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true });

function narrow(value: bigint): number | bigint {
  return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
    ? Number(value)
    : value;
}

/**
 * Reads and validates a GGUF header (versions 2 and 3, little-endian) through `reader`: every
 * count, string length and array length is checked against the bytes left in the file before it
 * is trusted; tensor dimensions, types, offsets and alignment against the data section; keys and
 * tensor names must be unique and tensors must not overlap. Tensors of types this package cannot
 * decode are listed (their `typeName` says which); reading one throws naming it.
 */
export async function readGgufHeader(reader: RandomAccessReader, fileName?: string): Promise<GgufHeader> {
  const fail = (
    problem: string,
    offset?: number,
    extra: { key?: string; tensorName?: string } = {},
  ): never => {
    throw new GgufError(problem, { fileName, offset, ...extra });
  };
  const cursor = new Cursor(reader, fail);
  if (reader.size < 24) fail(`${reader.size} bytes is too short for a GGUF header (24 bytes at least)`);
  const magic = await cursor.uint32('the magic number');
  if (magic !== GGUF_MAGIC) {
    fail(`not a GGUF file: the first four bytes are 0x${magic.toString(16).padStart(8, '0')}, not "GGUF"`, 0);
  }
  const version = await cursor.uint32('the version');
  if (version === 1)
    fail('GGUF version 1 (32-bit counts) is not supported: convert it with a current llama.cpp', 4);
  if (version !== 2 && version !== 3) {
    fail(
      version === 0x02000000 || version === 0x03000000
        ? 'a big-endian GGUF file: only little-endian files are read'
        : `GGUF version ${version} is not supported (2 and 3 are)`,
      4,
    );
  }
  const tensorCount = await cursor.size64('the tensor count');
  const keyCount = await cursor.size64('the metadata key count');
  // A key is at least 8 (length) + 1 + 4 (type) + 1 bytes; a tensor info at least 8 + 1 + 4 + 8 + 4 + 8.
  if (keyCount * 14 > cursor.remaining)
    fail(`the header claims ${keyCount} metadata keys, more than the file can hold`, 16);
  if (tensorCount * 33 > cursor.remaining)
    fail(`the header claims ${tensorCount} tensors, more than the file can hold`, 8);
  const metadata: GgufMetadata = new Map();
  for (let index = 0; index < keyCount; index++) {
    const keyOffset = cursor.position;
    const key = await cursor.string(`metadata key ${index}`);
    if (metadata.has(key)) fail('appears twice in the metadata', keyOffset, { key });
    metadata.set(key, await readValue(cursor, key, fail));
  }
  const alignmentValue = metadata.get('general.alignment');
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  if (alignmentValue !== undefined) {
    const value = alignmentValue.value;
    if (
      alignmentValue.type !== 'UINT32' ||
      typeof value !== 'number' ||
      value === 0 ||
      (value & (value - 1)) !== 0
    ) {
      fail(
        `must be a power of two stored as UINT32, got ${alignmentValue.type} ${String(value)}`,
        undefined,
        {
          key: 'general.alignment',
        },
      );
    }
    alignment = value as number;
  }
  const tensors: GgufTensorInfo[] = [];
  const names = new Set<string>();
  for (let index = 0; index < tensorCount; index++) {
    const infoOffset = cursor.position;
    const name = await cursor.string(`the name of tensor ${index}`);
    if (names.has(name)) fail('appears twice', infoOffset, { tensorName: name });
    names.add(name);
    const rank = await cursor.uint32(`the rank of tensor ${name}`);
    if (rank > MAX_DIMENSIONS)
      fail(`has ${rank} dimensions, at most ${MAX_DIMENSIONS} are allowed`, infoOffset, { tensorName: name });
    const dimensions: number[] = [];
    let elements = 1;
    for (let d = 0; d < rank; d++) {
      const extent = await cursor.size64(`dimension ${d} of tensor ${name}`);
      elements *= extent;
      if (elements > Number.MAX_SAFE_INTEGER) fail('has too many elements', infoOffset, { tensorName: name });
      dimensions.push(extent);
    }
    const type = await cursor.uint32(`the type of tensor ${name}`);
    const offset = await cursor.size64(`the data offset of tensor ${name}`);
    const typeName = ggmlTypeName(type);
    if (offset % alignment !== 0) {
      fail(`data offset ${offset} is not a multiple of the alignment ${alignment}`, infoOffset, {
        tensorName: name,
      });
    }
    const supported = supportedTypeName(type);
    let byteLength = 0;
    if (supported !== undefined) byteLength = tensorBytes(supported, dimensions, elements, name, fail);
    tensors.push({
      name,
      dimensions,
      shape: [...dimensions].reverse(),
      type,
      typeName,
      offset,
      byteLength,
      elements,
    });
  }
  const dataStart = Math.ceil(cursor.position / alignment) * alignment;
  const dataSize = reader.size - dataStart;
  const byStart = [...tensors].filter((tensor) => tensor.byteLength > 0).sort((a, b) => a.offset - b.offset);
  let end = 0;
  let previous: string | undefined;
  for (const tensor of byStart) {
    if (tensor.offset + tensor.byteLength > dataSize) {
      fail(
        `data [${tensor.offset}, ${tensor.offset + tensor.byteLength}) runs past the end of the data section (${Math.max(0, dataSize)} bytes): truncated file?`,
        undefined,
        { tensorName: tensor.name },
      );
    }
    if (tensor.offset < end)
      fail(`data overlaps tensor ${JSON.stringify(previous)}`, undefined, { tensorName: tensor.name });
    end = tensor.offset + tensor.byteLength;
    previous = tensor.name;
  }
  return { version, metadata, tensors, alignment, dataStart };
}

function tensorBytes(
  type: GgmlTypeName,
  dimensions: number[],
  elements: number,
  name: string,
  fail: (problem: string, offset?: number, extra?: { tensorName?: string }) => never,
): number {
  const { blockSize, blockBytes } = GGML_BLOCK_LAYOUT[type];
  const rowLength = dimensions[0] ?? 1;
  if (rowLength % blockSize !== 0) {
    fail(`is ${type}, whose rows are blocks of ${blockSize}, but its row length is ${rowLength}`, undefined, {
      tensorName: name,
    });
  }
  return (elements / blockSize) * blockBytes;
}

async function readValue(
  cursor: Cursor,
  key: string,
  fail: (problem: string, offset?: number, extra?: { key?: string }) => never,
): Promise<GgufValue> {
  const typeOffset = cursor.position;
  const typeId = await cursor.uint32(`the value type of ${key}`);
  const type = valueTypeName(typeId);
  if (type === undefined) fail(`has value type ${typeId}, which GGUF does not define`, typeOffset, { key });
  if (type !== 'ARRAY') return { type, value: await cursor.scalar(type, `the value of ${key}`) };
  const itemTypeId = await cursor.uint32(`the item type of ${key}`);
  const itemType = valueTypeName(itemTypeId);
  if (itemType === undefined || itemType === 'ARRAY') {
    fail(
      itemType === 'ARRAY'
        ? 'is an array of arrays, which this reader does not accept'
        : `has array item type ${itemTypeId}, which GGUF does not define`,
      typeOffset,
      { key },
    );
  }
  const count = await cursor.size64(`the length of ${key}`);
  const minimum = itemType === 'STRING' ? 8 : GGUF_VALUE_BYTES[itemType]!;
  if (count * minimum > cursor.remaining) {
    fail(`claims ${count} items, more than the ${cursor.remaining} bytes left can hold`, typeOffset, { key });
  }
  const value: GgufScalar[] = new Array(count);
  for (let index = 0; index < count; index++)
    value[index] = await cursor.scalar(itemType, `item ${index} of ${key}`);
  return { type: 'ARRAY', itemType, value };
}

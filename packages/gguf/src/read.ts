import { blobReader, bytesReader, type RandomAccessReader } from '@webtune/safetensors';
import { dequantize } from './dequantize.js';
import { GgufError } from './errors.js';
import { supportedTypeName } from './ggml-types.js';
import { type GgufHeader, type GgufTensorInfo, readGgufHeader } from './header.js';
import type { GgufMetadata, GgufScalar } from './metadata.js';

/** What `readGguf` accepts: bytes in memory, a Blob/File, or a random-access reader. */
export type GgufSource = Uint8Array | Blob | RandomAccessReader;

/** One tensor's stored bytes, as in the file. */
export interface GgufTensorData {
  info: GgufTensorInfo;
  data: Uint8Array;
}

/**
 * An opened GGUF file: the validated header (metadata and tensor infos) plus reads of single
 * tensors by byte range, so a file never has to be in memory whole.
 */
export class GgufFile {
  readonly header: GgufHeader;
  readonly fileName: string | undefined;
  readonly #reader: RandomAccessReader;
  readonly #byName: Map<string, GgufTensorInfo>;

  constructor(reader: RandomAccessReader, header: GgufHeader, fileName?: string) {
    this.#reader = reader;
    this.header = header;
    this.fileName = fileName;
    this.#byName = new Map(header.tensors.map((tensor) => [tensor.name, tensor]));
  }

  get version(): number {
    return this.header.version;
  }

  get metadata(): GgufMetadata {
    return this.header.metadata;
  }

  /** Tensor infos in file order. */
  get tensors(): readonly GgufTensorInfo[] {
    return this.header.tensors;
  }

  has(name: string): boolean {
    return this.#byName.has(name);
  }

  info(name: string): GgufTensorInfo | undefined {
    return this.#byName.get(name);
  }

  /** A metadata value (any type), or undefined when the key is absent. */
  value(key: string): GgufScalar | GgufScalar[] | undefined {
    return this.header.metadata.get(key)?.value;
  }

  /** A string metadata value; a GgufError naming the key when it has another type. */
  string(key: string): string | undefined {
    const entry = this.header.metadata.get(key);
    if (entry === undefined) return undefined;
    if (entry.type !== 'STRING') this.#wrongType(key, 'a string', entry.type);
    return entry.value as string;
  }

  /** A numeric metadata value (any integer or float type); undefined when absent. */
  number(key: string): number | undefined {
    const entry = this.header.metadata.get(key);
    if (entry === undefined) return undefined;
    if (
      entry.type === 'ARRAY' ||
      entry.type === 'STRING' ||
      entry.type === 'BOOL' ||
      typeof entry.value !== 'number'
    ) {
      this.#wrongType(key, 'a number', entry.type);
    }
    return entry.value as number;
  }

  boolean(key: string): boolean | undefined {
    const entry = this.header.metadata.get(key);
    if (entry === undefined) return undefined;
    if (entry.type !== 'BOOL') this.#wrongType(key, 'a bool', entry.type);
    return entry.value as boolean;
  }

  /** An array metadata value; `itemKind` checks its items are strings or numbers. */
  array<T extends 'string' | 'number'>(
    key: string,
    itemKind: T,
  ): (T extends 'string' ? string[] : number[]) | undefined {
    const entry = this.header.metadata.get(key);
    if (entry === undefined) return undefined;
    const ok =
      entry.type === 'ARRAY' &&
      (itemKind === 'string'
        ? entry.itemType === 'STRING'
        : entry.itemType !== 'STRING' &&
          entry.itemType !== 'BOOL' &&
          entry.value.every((item) => typeof item === 'number'));
    if (!ok)
      this.#wrongType(
        key,
        `an array of ${itemKind}s`,
        entry.type === 'ARRAY' ? `ARRAY of ${entry.itemType}` : entry.type,
      );
    return entry.value as T extends 'string' ? string[] : number[];
  }

  #wrongType(key: string, wanted: string, got: string): never {
    throw new GgufError(`must be ${wanted}, the file stores ${got}`, { fileName: this.fileName, key });
  }

  /** Reads one tensor's stored bytes (any type, supported or not). */
  async readRaw(name: string): Promise<GgufTensorData> {
    const info = this.#require(name);
    if (supportedTypeName(info.type) === undefined) this.#unsupported(info);
    const data = await this.#reader.read(this.header.dataStart + info.offset, info.byteLength);
    if (data.length !== info.byteLength) {
      throw new GgufError(`read ${data.length} bytes, expected ${info.byteLength} (file changed?)`, {
        fileName: this.fileName,
        tensorName: name,
      });
    }
    return { info, data };
  }

  /** Reads one tensor and decodes it to float32 (row-major, outermost dimension first). */
  async readFloat32(name: string): Promise<Float32Array> {
    const { info, data } = await this.readRaw(name);
    const type = supportedTypeName(info.type)!;
    try {
      return dequantize(type, data, info.elements);
    } catch (error) {
      throw new GgufError((error as Error).message, { fileName: this.fileName, tensorName: name });
    }
  }

  #require(name: string): GgufTensorInfo {
    const info = this.#byName.get(name);
    if (info === undefined) {
      throw new GgufError(`no tensor named ${JSON.stringify(name)} (the file has ${this.#byName.size})`, {
        fileName: this.fileName,
      });
    }
    return info;
  }

  #unsupported(info: GgufTensorInfo): never {
    throw new GgufError(
      `has type ${info.typeName}, which webtune cannot decode (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K are supported)`,
      { fileName: this.fileName, tensorName: info.name },
    );
  }

  /** Fails naming the first tensor of a type this package cannot decode, if any. */
  assertDecodable(): void {
    for (const info of this.header.tensors)
      if (supportedTypeName(info.type) === undefined) this.#unsupported(info);
  }
}

function toReader(source: GgufSource, name?: string): RandomAccessReader {
  if (source instanceof Uint8Array) return bytesReader(source, name);
  if (typeof Blob !== 'undefined' && source instanceof Blob) return blobReader(source, name);
  const reader = source as RandomAccessReader;
  if (typeof reader.read !== 'function' || typeof reader.size !== 'number') {
    throw new TypeError(
      'a GGUF source must be a Uint8Array, a Blob or a { size, read(offset, length) } reader',
    );
  }
  return reader;
}

/**
 * Opens a GGUF file: reads and validates the header only (in chunks); tensors are read later,
 * one byte range at a time.
 *
 * ```ts
 * const file = await readGguf(reader);
 * const weights = await file.readFloat32('token_embd.weight');
 * ```
 */
export async function readGguf(source: GgufSource, options: { fileName?: string } = {}): Promise<GgufFile> {
  const reader = toReader(source, options.fileName);
  const fileName = options.fileName ?? reader.name;
  const header = await readGgufHeader(reader, fileName);
  return new GgufFile(reader, header, fileName);
}

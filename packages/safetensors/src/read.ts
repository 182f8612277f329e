import type { SafetensorsDtype } from './dtype.js';
import { SafetensorsError } from './errors.js';
import {
  parseSafetensorsHeader,
  readHeaderLength,
  type SafetensorsHeader,
  type SafetensorsTensorInfo,
} from './header.js';
import { type RandomAccessReader, type SafetensorsSource, toReader } from './source.js';

/** One tensor read from a file: its raw little-endian bytes with dtype and shape. */
export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  data: Uint8Array;
}

/** Options for opening a file. */
export interface ReadSafetensorsOptions {
  /** Named in error messages (defaults to the reader's or File's name). */
  fileName?: string;
}

/**
 * An opened safetensors file: a validated header plus on-demand reads of single tensors.
 * Iterating it (`for await (const entry of file)`) reads the tensors one at a time, in file
 * order, so a file never needs to be in memory whole (or twice).
 */
export class SafetensorsFile implements AsyncIterable<SafetensorsEntry> {
  readonly header: SafetensorsHeader;
  readonly fileName: string | undefined;
  readonly #reader: RandomAccessReader;
  readonly #byName: Map<string, SafetensorsTensorInfo>;

  constructor(reader: RandomAccessReader, header: SafetensorsHeader, fileName?: string) {
    this.#reader = reader;
    this.header = header;
    this.fileName = fileName;
    this.#byName = new Map(header.tensors.map((tensor) => [tensor.name, tensor]));
  }

  /** Tensor descriptions in file order. */
  get tensors(): readonly SafetensorsTensorInfo[] {
    return this.header.tensors;
  }

  /** The `__metadata__` map. */
  get metadata(): Record<string, string> {
    return this.header.metadata;
  }

  /** Tensor names in file order. */
  get names(): string[] {
    return this.header.tensors.map((tensor) => tensor.name);
  }

  /** Whether the file holds a tensor called `name`. */
  has(name: string): boolean {
    return this.#byName.has(name);
  }

  /** The header entry of `name`, or undefined. */
  info(name: string): SafetensorsTensorInfo | undefined {
    return this.#byName.get(name);
  }

  /** Reads one tensor's bytes. Throws a SafetensorsError naming the file when it is absent. */
  async read(name: string): Promise<SafetensorsEntry> {
    const info = this.#byName.get(name);
    if (info === undefined) {
      throw new SafetensorsError(
        `no tensor named ${JSON.stringify(name)} (the file has ${this.#byName.size})`,
        {
          fileName: this.fileName,
        },
      );
    }
    return this.#readInfo(info);
  }

  /** Reads the tensors one at a time in file order. */
  async *entries(): AsyncGenerator<SafetensorsEntry> {
    for (const info of this.header.tensors) yield await this.#readInfo(info);
  }

  [Symbol.asyncIterator](): AsyncIterator<SafetensorsEntry> {
    return this.entries();
  }

  async #readInfo(info: SafetensorsTensorInfo): Promise<SafetensorsEntry> {
    const [begin, end] = info.dataOffsets;
    const data = await this.#reader.read(this.header.dataStart + begin, end - begin);
    if (data.length !== end - begin) {
      throw new SafetensorsError(
        `read ${data.length} bytes, expected ${end - begin} (file changed or truncated?)`,
        {
          fileName: this.fileName,
          tensorName: info.name,
        },
      );
    }
    return { name: info.name, dtype: info.dtype, shape: [...info.shape], data };
  }
}

/**
 * Opens a safetensors file from bytes, a Blob/File or a random-access reader: reads and
 * validates the header only. Tensors are read later, one at a time.
 *
 * ```ts
 * const file = await readSafetensors(bytes);
 * for await (const { name, dtype, shape, data } of file) console.log(name, dtype, shape, data.length);
 * ```
 */
export async function readSafetensors(
  source: SafetensorsSource,
  options: ReadSafetensorsOptions = {},
): Promise<SafetensorsFile> {
  const reader = toReader(source, options.fileName);
  const fileName = options.fileName ?? reader.name;
  const size = reader.size;
  const prefix = size >= 8 ? await readExactly(reader, 0, 8, fileName) : new Uint8Array(0);
  const headerLength = readHeaderLength(prefix, size, fileName);
  const headerBytes = new Uint8Array(8 + headerLength);
  headerBytes.set(prefix, 0);
  if (headerLength > 0) headerBytes.set(await readExactly(reader, 8, headerLength, fileName), 8);
  const header = parseSafetensorsHeader(headerBytes, { fileName, fileSize: size });
  return new SafetensorsFile(reader, header, fileName);
}

async function readExactly(
  reader: RandomAccessReader,
  offset: number,
  length: number,
  fileName: string | undefined,
): Promise<Uint8Array> {
  const bytes = await reader.read(offset, length);
  if (bytes.length !== length) {
    throw new SafetensorsError(
      `reader returned ${bytes.length} bytes at offset ${offset}, expected ${length}`,
      {
        fileName,
      },
    );
  }
  return bytes;
}

/**
 * Synchronous read of a whole file already in memory. Entries' `data` are views into `bytes`
 * (no copies), in file order.
 */
export function readSafetensorsBytes(
  bytes: Uint8Array,
  options: ReadSafetensorsOptions = {},
): {
  header: SafetensorsHeader;
  metadata: Record<string, string>;
  tensors: SafetensorsEntry[];
} {
  const header = parseSafetensorsHeader(bytes, { fileName: options.fileName });
  const tensors = header.tensors.map((info) => ({
    name: info.name,
    dtype: info.dtype,
    shape: [...info.shape],
    data: bytes.subarray(header.dataStart + info.dataOffsets[0], header.dataStart + info.dataOffsets[1]),
  }));
  return { header, metadata: header.metadata, tensors };
}

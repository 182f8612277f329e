/**
 * Random access to the bytes of a file that may not fit in memory (a Node file handle, a browser
 * Blob or File, an HTTP range reader...). `read` returns exactly `length` bytes or rejects.
 */
export interface RandomAccessReader {
  /** Total size in bytes. */
  readonly size: number;
  /** Reads `length` bytes starting at `offset`. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Name used in error messages, when known. */
  readonly name?: string;
}

/** What `readSafetensors` accepts: the whole file in memory, a Blob/File, or a reader. */
export type SafetensorsSource = Uint8Array | Blob | RandomAccessReader;

/** A reader over bytes already in memory; reads return views, never copies. */
export function bytesReader(bytes: Uint8Array, name?: string): RandomAccessReader {
  return {
    size: bytes.length,
    name,
    read: async (offset, length) => sliceChecked(bytes, offset, length, name),
  };
}

/** A reader over a browser `Blob` or `File` (also Node's global Blob). */
export function blobReader(blob: Blob, name?: string): RandomAccessReader {
  const fileName = name ?? (blob as Partial<File>).name;
  return {
    size: blob.size,
    name: fileName,
    read: async (offset, length) => {
      const bytes = new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
      if (bytes.length !== length) {
        throw new RangeError(
          `${fileName ?? 'blob'}: read ${bytes.length} bytes at ${offset}, wanted ${length} (file is ${blob.size} bytes)`,
        );
      }
      return bytes;
    },
  };
}

/** Turns any accepted source into a reader. */
export function toReader(source: SafetensorsSource, name?: string): RandomAccessReader {
  if (source instanceof Uint8Array) return bytesReader(source, name);
  if (typeof Blob !== 'undefined' && source instanceof Blob) return blobReader(source, name);
  const reader = source as RandomAccessReader;
  if (typeof reader.read !== 'function' || typeof reader.size !== 'number') {
    throw new TypeError(
      'safetensors source must be a Uint8Array, a Blob or a { size, read(offset, length) } reader',
    );
  }
  return name === undefined || reader.name !== undefined
    ? reader
    : { ...reader, name, read: reader.read.bind(reader) };
}

function sliceChecked(
  bytes: Uint8Array,
  offset: number,
  length: number,
  name: string | undefined,
): Uint8Array {
  if (offset < 0 || length < 0 || offset + length > bytes.length) {
    throw new RangeError(
      `${name ?? 'bytes'}: read of ${length} bytes at ${offset} is outside the ${bytes.length}-byte buffer`,
    );
  }
  return bytes.subarray(offset, offset + length);
}

import { isSafetensorsDtype, type SafetensorsDtype, tensorByteLength } from './dtype.js';
import { SafetensorsError } from './errors.js';

/** The largest header the reference implementation accepts (100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

/** One tensor as the header describes it. Offsets count from the start of the data section. */
export interface SafetensorsTensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** [begin, end) in bytes, relative to the data section. */
  dataOffsets: [number, number];
}

/** A parsed and validated header. */
export interface SafetensorsHeader {
  /** Length of the JSON header in bytes (the u64 at the start of the file). */
  headerLength: number;
  /** Absolute offset of the data section: 8 + headerLength. */
  dataStart: number;
  /** Size of the data section in bytes. */
  dataLength: number;
  /** Tensors in the order of their data in the file. */
  tensors: SafetensorsTensorInfo[];
  /** The `__metadata__` string map ({} when absent). */
  metadata: Record<string, string>;
}

/** Where the bytes came from, for error messages and bounds checks. */
export interface HeaderParseOptions {
  /** Named in every error message. */
  fileName?: string;
  /** Size of the whole file; defaults to `bytes.length` (then `bytes` must be the whole file). */
  fileSize?: number;
}

/**
 * Reads the header length (the first 8 bytes, little-endian u64) and checks it against the file
 * size. Returns the length of the JSON header.
 */
export function readHeaderLength(prefix: Uint8Array, fileSize: number, fileName?: string): number {
  if (fileSize < 8 || prefix.length < 8) {
    throw new SafetensorsError(
      `file is ${fileSize} bytes, too short to hold the 8-byte header length (truncated?)`,
      {
        fileName,
      },
    );
  }
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const low = view.getUint32(0, true);
  const high = view.getUint32(4, true);
  const length = high * 2 ** 32 + low;
  if (length > MAX_HEADER_BYTES) {
    throw new SafetensorsError(`header length ${length} exceeds the ${MAX_HEADER_BYTES}-byte limit`, {
      fileName,
    });
  }
  if (length > fileSize - 8) {
    throw new SafetensorsError(
      `header length ${length} runs past the end of the file (${fileSize} bytes, so at most ${fileSize - 8}); truncated or not a safetensors file`,
      { fileName },
    );
  }
  return length;
}

/**
 * Parses and validates a safetensors header. `bytes` holds at least the first 8 + header-length
 * bytes of the file; pass `fileSize` when it is not the whole file.
 *
 * Checks, as the reference implementation does: the header length fits in the file, the header
 * is UTF-8 JSON starting with `{`, every dtype is known, shapes are lists of non-negative
 * integers, data_offsets are [begin, end] with begin <= end, each tensor's byte length equals
 * product(shape) x dtype size, and the tensors tile the data section exactly (no overlap, no gap,
 * nothing past the end). `__metadata__` must map strings to strings.
 */
export function parseSafetensorsHeader(
  bytes: Uint8Array,
  options: HeaderParseOptions = {},
): SafetensorsHeader {
  const fileName = options.fileName;
  const fileSize = options.fileSize ?? bytes.length;
  const headerLength = readHeaderLength(bytes, fileSize, fileName);
  if (bytes.length < 8 + headerLength) {
    throw new SafetensorsError(
      `parseSafetensorsHeader was given ${bytes.length} bytes but the header needs ${8 + headerLength}`,
      { fileName },
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength));
  } catch {
    throw new SafetensorsError('header is not valid UTF-8', { fileName });
  }
  if (!text.startsWith('{')) {
    throw new SafetensorsError(
      `header does not start with "{" (starts with ${JSON.stringify(text.slice(0, 8))})`,
      {
        fileName,
      },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new SafetensorsError(`header is not valid JSON: ${(error as Error).message}`, { fileName });
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new SafetensorsError('header JSON is not an object', { fileName });
  }
  const dataStart = 8 + headerLength;
  const dataLength = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const tensors: SafetensorsTensorInfo[] = [];
  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw new SafetensorsError('__metadata__ is not an object of strings', { fileName });
      }
      for (const [key, entry] of Object.entries(value as Record<string, unknown>)) {
        if (typeof entry !== 'string') {
          throw new SafetensorsError(
            `__metadata__ value for ${JSON.stringify(key)} is ${typeof entry}, not a string`,
            {
              fileName,
            },
          );
        }
        metadata[key] = entry;
      }
      continue;
    }
    tensors.push(validateTensorEntry(name, value, dataLength, fileName));
  }
  checkTiling(tensors, dataLength, fileName);
  return { headerLength, dataStart, dataLength, tensors, metadata };
}

function validateTensorEntry(
  name: string,
  value: unknown,
  dataLength: number,
  fileName: string | undefined,
): SafetensorsTensorInfo {
  const where = { fileName, tensorName: name };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new SafetensorsError('entry is not an object with dtype, shape and data_offsets', where);
  }
  const entry = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (!isSafetensorsDtype(entry.dtype)) {
    throw new SafetensorsError(`unknown dtype ${JSON.stringify(entry.dtype)}`, where);
  }
  const dtype = entry.dtype;
  if (!Array.isArray(entry.shape)) {
    throw new SafetensorsError(`shape ${JSON.stringify(entry.shape)} is not a list`, where);
  }
  for (const dimension of entry.shape) {
    if (typeof dimension !== 'number' || !Number.isSafeInteger(dimension) || dimension < 0) {
      throw new SafetensorsError(
        `shape ${JSON.stringify(entry.shape)} has ${JSON.stringify(dimension)}, not a non-negative integer`,
        where,
      );
    }
  }
  const shape = entry.shape as number[];
  const offsets = entry.data_offsets;
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((offset) => typeof offset === 'number' && Number.isSafeInteger(offset) && offset >= 0)
  ) {
    throw new SafetensorsError(
      `data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`,
      where,
    );
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) {
    throw new SafetensorsError(`data_offsets [${begin}, ${end}] end before they begin`, where);
  }
  if (end > dataLength) {
    throw new SafetensorsError(
      `data_offsets [${begin}, ${end}] run past the data section (${dataLength} bytes; truncated file?)`,
      where,
    );
  }
  const expected = tensorByteLength(dtype, shape);
  if (expected === undefined) {
    throw new SafetensorsError(
      `shape [${shape.join(', ')}] of ${dtype} is not a whole number of bytes that fits in memory`,
      where,
    );
  }
  if (expected !== end - begin) {
    throw new SafetensorsError(
      `data_offsets [${begin}, ${end}] give ${end - begin} bytes, but ${dtype} [${shape.join(', ')}] needs ${expected}`,
      where,
    );
  }
  return { name, dtype, shape: [...shape], dataOffsets: [begin, end] };
}

/** Sorts tensors by offset and checks they cover the data section exactly once. */
function checkTiling(
  tensors: SafetensorsTensorInfo[],
  dataLength: number,
  fileName: string | undefined,
): void {
  tensors.sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  let covered = 0;
  let previous: SafetensorsTensorInfo | undefined;
  for (const tensor of tensors) {
    const [begin, end] = tensor.dataOffsets;
    if (begin < covered) {
      throw new SafetensorsError(
        `data_offsets [${begin}, ${end}] overlap those of ${JSON.stringify(previous!.name)} [${previous!.dataOffsets.join(', ')}]`,
        { fileName, tensorName: tensor.name },
      );
    }
    if (begin > covered) {
      throw new SafetensorsError(
        `data_offsets [${begin}, ${end}] leave bytes ${covered}..${begin} of the data section unused (the format allows no gaps)`,
        { fileName, tensorName: tensor.name },
      );
    }
    covered = end;
    previous = tensor;
  }
  if (covered !== dataLength) {
    throw new SafetensorsError(
      `the data section has ${dataLength} bytes but the tensors cover only ${covered} (trailing data or a missing tensor)`,
      { fileName },
    );
  }
}

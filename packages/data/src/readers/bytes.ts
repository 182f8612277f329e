/**
 * Byte sources and the byte-level work every reader shares: reading chunks from Node streams, browser
 * `Blob`/`File` streams or plain buffers; splitting lines without holding the file in memory; UTF-8
 * checks that say where the bad bytes are.
 */
import type { DataIssue, RowLocation } from '../issues.js';

/**
 * Anything a dataset can be read from: bytes in memory, a `Blob`/`File` (browsers, and Node 20's global
 * Blob), a WHATWG `ReadableStream` (`blob.stream()`, `fetch().body`), or any async iterable of byte
 * chunks (a Node `fs.ReadStream`).
 */
export type ByteSource =
  | Uint8Array
  | ArrayBuffer
  | Blob
  | ReadableStream<Uint8Array>
  | AsyncIterable<Uint8Array>;

const BOM = [0xef, 0xbb, 0xbf];

/** Yields the chunks of a byte source in order. Chunks are not copied. */
export async function* byteChunks(source: ByteSource): AsyncGenerator<Uint8Array> {
  if (source instanceof Uint8Array) {
    yield source;
    return;
  }
  if (source instanceof ArrayBuffer) {
    yield new Uint8Array(source);
    return;
  }
  if (typeof Blob !== 'undefined' && source instanceof Blob) {
    yield* byteChunks(source.stream() as ReadableStream<Uint8Array>);
    return;
  }
  if (typeof (source as ReadableStream<Uint8Array>).getReader === 'function') {
    // Read through a reader: async iteration of ReadableStream is missing in some browsers.
    const reader = (source as ReadableStream<Uint8Array>).getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        if (value && value.length > 0) yield value;
      }
    } finally {
      reader.releaseLock();
    }
  }
  for await (const chunk of source as AsyncIterable<Uint8Array>) {
    if (chunk.length > 0) yield chunk instanceof Uint8Array ? chunk : new Uint8Array(chunk);
  }
}

/** Reads a whole byte source into one buffer. */
export async function readAllBytes(source: ByteSource): Promise<Uint8Array> {
  if (source instanceof Uint8Array) return source;
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  const parts: Uint8Array[] = [];
  for await (const chunk of byteChunks(source)) parts.push(chunk);
  return concatBytes(parts);
}

/** Joins byte arrays into one. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  let length = 0;
  for (const part of parts) length += part.length;
  const joined = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return joined;
}

/** Whether the bytes start with a UTF-8 byte-order mark (EF BB BF). */
export function hasBom(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && bytes[0] === BOM[0] && bytes[1] === BOM[1] && bytes[2] === BOM[2];
}

/**
 * Byte offsets of every invalid UTF-8 sequence in `bytes` (truncated sequences, stray continuation
 * bytes, overlong forms, surrogates, code points above U+10FFFF), in the way the WHATWG decoder
 * counts them. Empty when the bytes are valid.
 */
export function invalidUtf8Offsets(bytes: Uint8Array, limit = Number.POSITIVE_INFINITY): number[] {
  const offsets: number[] = [];
  let index = 0;
  while (index < bytes.length && offsets.length < limit) {
    const lead = bytes[index];
    if (lead < 0x80) {
      index++;
      continue;
    }
    let needed: number;
    let lower = 0x80;
    let upper = 0xbf;
    if (lead >= 0xc2 && lead <= 0xdf) needed = 1;
    else if (lead >= 0xe0 && lead <= 0xef) {
      needed = 2;
      if (lead === 0xe0) lower = 0xa0;
      if (lead === 0xed) upper = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      needed = 3;
      if (lead === 0xf0) lower = 0x90;
      if (lead === 0xf4) upper = 0x8f;
    } else {
      offsets.push(index);
      index++;
      continue;
    }
    let valid = true;
    let consumed = 1;
    for (let k = 0; k < needed; k++) {
      const next = bytes[index + consumed];
      const low = k === 0 ? lower : 0x80;
      const high = k === 0 ? upper : 0xbf;
      if (next === undefined || next < low || next > high) {
        valid = false;
        break;
      }
      consumed++;
    }
    if (!valid) offsets.push(index);
    index += consumed;
  }
  return offsets;
}

const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const lenientDecoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/** Decodes UTF-8, or returns `undefined` when the bytes are not valid UTF-8. A leading BOM is kept. */
/**
 * The issue for a row holding a byte that is not UTF-8: `bytes[offset]`, in hex, placed by `at`
 * (default: its byte offset in the file).
 */
export function invalidByteIssue(
  location: RowLocation,
  bytes: Uint8Array,
  offset: number,
  at = `at byte offset ${offset}`,
): DataIssue {
  const hex = bytes[offset].toString(16).toUpperCase().padStart(2, '0');
  return {
    severity: 'error',
    ...location,
    field: '(bytes)',
    expected: 'valid UTF-8 text',
    got: `the invalid byte 0x${hex} ${at}`,
  };
}

export function decodeUtf8Strict(bytes: Uint8Array): string | undefined {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Decodes UTF-8, replacing invalid sequences with U+FFFD. A leading BOM is kept. */
export function decodeUtf8Lenient(bytes: Uint8Array): string {
  return lenientDecoder.decode(bytes);
}

/** One line of a byte stream. */
export interface ByteLine {
  /** 1-based line number. */
  line: number;
  /** The line without its `\n` or `\r\n` (and without a leading BOM on line 1); absent when too long. */
  bytes?: Uint8Array;
  /** Length of the line in bytes, also when it was too long to keep. */
  byteLength: number;
  /** Whether the line ended in `\r\n`. */
  crlf: boolean;
}

/** Options for `byteLines`. */
export interface ByteLineOptions {
  /** Lines longer than this are reported with `bytes` absent and never held in memory. Default 64 MiB. */
  maxLineBytes?: number;
  /** Called once when line 1 started with a UTF-8 byte-order mark (which is removed). */
  onBom?: () => void;
}

/**
 * Splits a byte stream into lines in memory bounded by the longest kept line: chunks are scanned for
 * `\n` as they arrive and only the unfinished line is held. A line over `maxLineBytes` is skipped to its
 * end without buffering it. `\r\n` endings lose their `\r`; a final line without `\n` is still yielded.
 */
export async function* byteLines(
  source: ByteSource,
  options: ByteLineOptions = {},
): AsyncGenerator<ByteLine> {
  const maxLineBytes = options.maxLineBytes ?? 64 * 1024 * 1024;
  let parts: Uint8Array[] = [];
  let pendingLength = 0;
  let tooLong = false;
  let lineNumber = 1;
  let sawAnything = false;

  const finish = (): ByteLine => {
    const byteLength = pendingLength;
    let bytes: Uint8Array | undefined;
    let crlf = false;
    if (!tooLong) {
      bytes = concatBytes(parts);
      if (lineNumber === 1 && hasBom(bytes)) {
        bytes = bytes.subarray(3);
        options.onBom?.();
      }
      if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) {
        bytes = bytes.subarray(0, bytes.length - 1);
        crlf = true;
      }
    }
    const result: ByteLine = { line: lineNumber, bytes, byteLength, crlf };
    parts = [];
    pendingLength = 0;
    tooLong = false;
    lineNumber++;
    return result;
  };

  const append = (piece: Uint8Array) => {
    pendingLength += piece.length;
    if (tooLong) return;
    if (pendingLength > maxLineBytes) {
      tooLong = true;
      parts = [];
      return;
    }
    // Copy: a stream may reuse its chunk buffers.
    if (piece.length > 0) parts.push(piece.slice());
  };

  for await (const chunk of byteChunks(source)) {
    sawAnything = true;
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(0x0a, start);
      if (newline < 0) break;
      append(chunk.subarray(start, newline));
      yield finish();
      start = newline + 1;
    }
    if (start < chunk.length) append(chunk.subarray(start));
  }
  if (sawAnything && (pendingLength > 0 || tooLong)) yield finish();
}

/** Line and column (both 1-based) of a character offset in a text. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let index = text.indexOf('\n'); index >= 0 && index < offset; index = text.indexOf('\n', index + 1)) {
    line++;
    lineStart = index + 1;
  }
  return { line, column: offset - lineStart + 1 };
}

/** The UTF-16 byte order of text that starts with a UTF-16 byte-order mark or looks like ASCII in UTF-16. */
export function utf16ByteOrder(start: Uint8Array): 'utf-16le' | 'utf-16be' | undefined {
  if (start.length >= 2 && start[0] === 0xff && start[1] === 0xfe) return 'utf-16le';
  if (start.length >= 2 && start[0] === 0xfe && start[1] === 0xff) return 'utf-16be';
  // No mark: two ASCII characters with a zero byte beside each (`[\0{\0` is `[{` in UTF-16LE).
  if (start.length >= 4) {
    const ascii = (byte: number) => byte >= 0x09 && byte < 0x7f;
    if (ascii(start[0]) && start[1] === 0 && ascii(start[2]) && start[3] === 0) return 'utf-16le';
    if (start[0] === 0 && ascii(start[1]) && start[2] === 0 && ascii(start[3])) return 'utf-16be';
  }
  return undefined;
}

/**
 * The same text as UTF-8: a source in UTF-16 (Windows editors and PowerShell write it) is
 * recognised by its byte-order mark, or by its zero bytes, and transcoded while it streams;
 * anything else passes through unchanged.
 */
export function asUtf8(source: ByteSource): ByteSource {
  if (source instanceof ArrayBuffer) return asUtf8(new Uint8Array(source));
  if (source instanceof Uint8Array) {
    const order = utf16ByteOrder(source);
    if (order === undefined) return source;
    return new TextEncoder().encode(new TextDecoder(order).decode(source));
  }
  return transcodedChunks(source);
}

async function* transcodedChunks(source: ByteSource): AsyncGenerator<Uint8Array> {
  let decoder: TextDecoder | undefined;
  let head: Uint8Array | undefined = new Uint8Array(0);
  const encoder = new TextEncoder();
  const transcode = (chunk: Uint8Array) => {
    const text = decoder!.decode(chunk, { stream: true });
    return text.length > 0 ? encoder.encode(text) : undefined;
  };
  for await (const chunk of byteChunks(source)) {
    if (head) {
      // Decide on the first 4 bytes (chunks may be smaller).
      head = concatBytes([head, chunk]);
      if (head.length < 4) continue;
      const order = utf16ByteOrder(head);
      if (order) decoder = new TextDecoder(order);
      const start = head;
      head = undefined;
      const out = decoder ? transcode(start) : start;
      if (out) yield out;
      continue;
    }
    const out = decoder ? transcode(chunk) : chunk;
    if (out) yield out;
  }
  if (head && head.length > 0) {
    const order = utf16ByteOrder(head);
    if (order) decoder = new TextDecoder(order);
    const out = decoder ? transcode(head) : head;
    if (out) yield out;
  }
  if (decoder) {
    const rest = decoder.decode();
    if (rest.length > 0) yield encoder.encode(rest);
  }
}

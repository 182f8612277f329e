/**
 * Reader for `.parquet` files (what the Hugging Face hub stores datasets as), with hyparquet. Rows are
 * read one row group at a time from a random-access source, so a Blob (browser) or a file handle
 * (`@webtune/data/node`) never has to be in memory whole. Integers too large for a JavaScript number
 * become strings; bytes that are not text are reported on their row.
 */
import { parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import type { DataIssue } from '../issues.js';
import { type ByteSource, readAllBytes } from './bytes.js';
import type { ReadStatistics, RecordResult } from './records.js';

/** Random access to a file's bytes: what parquet needs (its index is at the end). */
export interface RandomAccessFile {
  byteLength: number;
  slice(start: number, end?: number): ArrayBuffer | Promise<ArrayBuffer>;
}

/** A random-access view of a byte source: Blobs and bytes as they are; streams are read whole first. */
export async function randomAccessOf(source: ByteSource | RandomAccessFile): Promise<RandomAccessFile> {
  if (
    'slice' in source &&
    'byteLength' in source &&
    !(source instanceof Uint8Array) &&
    !(source instanceof ArrayBuffer)
  ) {
    return source as RandomAccessFile;
  }
  if (typeof Blob !== 'undefined' && source instanceof Blob) {
    return { byteLength: source.size, slice: (start, end) => source.slice(start, end).arrayBuffer() };
  }
  const bytes =
    source instanceof ArrayBuffer ? new Uint8Array(source) : await readAllBytes(source as ByteSource);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  return { byteLength: buffer.byteLength, slice: (start, end) => buffer.slice(start, end) };
}

/** Yields the rows of a parquet file as objects, a row group at a time. */
export async function* readParquetRecords(
  file: RandomAccessFile,
  name: string,
  _statistics: ReadStatistics,
  dataset?: string,
): AsyncGenerator<RecordResult> {
  const fileIssue = (issue: Omit<DataIssue, 'file' | 'severity' | 'dataset'>): RecordResult => ({
    kind: 'issue',
    issue: { severity: 'error', file: name, dataset, ...issue },
  });
  let metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>;
  try {
    metadata = await parquetMetadataAsync(file);
  } catch (error) {
    yield fileIssue({
      field: '(file)',
      expected: 'a parquet file',
      got: `${file.byteLength} bytes that are not one`,
      detail: (error as Error).message,
    });
    return;
  }
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    let rows: Record<string, unknown>[];
    try {
      rows = await parquetReadObjects({ file, metadata, rowStart, rowEnd });
    } catch (error) {
      yield fileIssue({
        field: '(file)',
        row: rowStart + 1,
        expected: `readable parquet rows ${rowStart + 1}-${rowEnd}`,
        detail: (error as Error).message,
      });
      return;
    }
    for (const [offset, row] of rows.entries()) {
      yield { kind: 'row', location: { dataset, file: name, row: rowStart + offset + 1 }, value: plain(row) };
    }
    rowStart = rowEnd;
  }
}

/** Parquet values as JSON-like values: bigints to numbers (or strings when too large), bytes to text. */
function plain(value: unknown): unknown {
  if (typeof value === 'bigint') {
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
      ? Number(value)
      : value.toString();
  }
  if (value instanceof Uint8Array) return new TextDecoder().decode(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value instanceof Date) return value.toISOString();
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, plain(inner)]));
  }
  return value;
}

/**
 * Readers for JSON lines (`.jsonl`) and plain text (`.txt`), streaming: memory stays bounded by the
 * longest row, whatever the file size. Each line is checked on its own, so one bad line rejects one row.
 */
import { type DataIssue, describeValue, type RowLocation } from '../issues.js';
import {
  type ByteLine,
  type ByteSource,
  byteLines,
  decodeUtf8Strict,
  invalidByteIssue,
  invalidUtf8Offsets,
} from './bytes.js';
import type { ReadStatistics, RecordResult } from './records.js';

/** Options shared by the streaming readers. */
export interface StreamReadOptions {
  /** File name used in issues. */
  file: string;
  /** Dataset name used in issues. */
  dataset?: string;
  /** Rows longer than this many bytes are rejected without being held in memory. Default 64 MiB. */
  maxRowBytes?: number;
  /** Filled in while reading. */
  statistics: ReadStatistics;
}

/** Streams the rows of a JSON-lines source: one JSON object per non-blank line. */
export function readJsonLines(source: ByteSource, options: StreamReadOptions): AsyncGenerator<RecordResult> {
  return readLines(source, options, (text, location) => parseJsonLine(text, location));
}

/** Streams the rows of a plain-text source: each non-blank line is a row `{ text: line }`. */
export function readTextLines(source: ByteSource, options: StreamReadOptions): AsyncGenerator<RecordResult> {
  return readLines(source, options, (text, location) => ({ kind: 'row', location, value: { text } }));
}

/** Numbers the non-blank lines as rows; a line too long or not UTF-8 is an issue, any other goes to `toRecord`. */
async function* readLines(
  source: ByteSource,
  options: StreamReadOptions,
  toRecord: (text: string, location: RowLocation) => RecordResult,
): AsyncGenerator<RecordResult> {
  let row = 0;
  for await (const line of byteLines(source, linesOptions(options))) {
    const text = lineText(line, options);
    if (text === null) continue;
    row++;
    if (typeof text !== 'string') {
      yield { kind: 'issue', issue: { ...text, row } };
      continue;
    }
    yield toRecord(text, { dataset: options.dataset, file: options.file, row, line: line.line });
  }
}

/** Parses JSON lines already decoded into a string (used for `.json` files that hold JSON lines). */
export function parseJsonLinesText(
  text: string,
  file: string,
  statistics: ReadStatistics,
  dataset?: string,
): RecordResult[] {
  const results: RecordResult[] = [];
  let row = 0;
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    let line = lines[index];
    if (line.endsWith('\r')) {
      line = line.slice(0, -1);
      statistics.crlfLines++;
    }
    if (line.trim().length === 0) {
      if (index < lines.length - 1) statistics.blankLines++;
      continue;
    }
    row++;
    results.push(parseJsonLine(line, { dataset, file, row, line: index + 1 }));
  }
  return results;
}

function parseJsonLine(text: string, location: RowLocation): RecordResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const detail = (error as Error).message;
    return rowIssue(location, {
      expected: 'one JSON object on the line',
      got: 'text that is not JSON',
      detail,
    });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return rowIssue(location, { expected: 'a JSON object', got: describeValue(value) });
  }
  return { kind: 'row', location, value };
}

/** A rejected row: the whole row (field `(row)`) is not what the reader expects. */
function rowIssue(location: RowLocation, what: Pick<DataIssue, 'expected' | 'got' | 'detail'>): RecordResult {
  return { kind: 'issue', issue: { severity: 'error', ...location, field: '(row)', ...what } };
}

function linesOptions(options: StreamReadOptions) {
  return {
    maxLineBytes: options.maxRowBytes,
    onBom: () => {
      options.statistics.byteOrderMark = true;
    },
  };
}

/**
 * The decoded text of a line; `null` for a blank line (counted); an issue (without row) for a line that
 * is too long or not UTF-8.
 */
function lineText(line: ByteLine, options: StreamReadOptions): string | null | DataIssue {
  const location = { dataset: options.dataset, file: options.file, line: line.line };
  if (line.bytes === undefined) {
    return {
      severity: 'error',
      ...location,
      field: '(row)',
      expected: `a row of at most ${options.maxRowBytes ?? 64 * 1024 * 1024} bytes`,
      got: `a row of ${line.byteLength} bytes`,
    };
  }
  if (line.crlf) options.statistics.crlfLines++;
  const text = decodeUtf8Strict(line.bytes);
  if (text === undefined) {
    const offset = invalidUtf8Offsets(line.bytes, 1)[0];
    return invalidByteIssue(location, line.bytes, offset, `at column ${offset + 1} (bytes)`);
  }
  if (text.trim().length === 0) {
    options.statistics.blankLines++;
    return null;
  }
  return text;
}

/**
 * `.csv` read as a stream (for `streaming: true`): bytes are scanned as they arrive, `"` quotes
 * tracked, and a record ends at a line break outside quotes, so a record with quoted line breaks is
 * held whole and nothing else is. Its fields are then split by the same parser as whole-file reading
 * (`parseCsvRecords`), so both readings give the same rows. A record over `maxRowBytes` is skipped to
 * its end without being held.
 */
import {
  type ByteSource,
  byteChunks,
  concatBytes,
  decodeUtf8Strict,
  hasBom,
  invalidByteIssue,
  invalidUtf8Offsets,
} from './bytes.js';
import { parseCsvRecords } from './csv.js';
import type { StreamReadOptions } from './json-lines.js';
import type { RecordResult } from './records.js';

const QUOTE = 0x22;
const NEWLINE = 0x0a;

/** Streams the rows of a CSV source keyed by its header; memory stays bounded by the longest record. */
export async function* readCsvLines(
  source: ByteSource,
  options: StreamReadOptions,
): AsyncGenerator<RecordResult> {
  const maxRowBytes = options.maxRowBytes ?? 64 * 1024 * 1024;
  const { file, dataset, statistics } = options;
  let header: string[] | undefined;
  let parts: Uint8Array[] = [];
  let held = 0;
  let tooLong = false;
  let quoted = false;
  let line = 1;
  let recordLine = 1;
  let row = 0;
  let firstRecord = true;

  const append = (piece: Uint8Array) => {
    held += piece.length;
    if (tooLong) return;
    if (held > maxRowBytes) {
      tooLong = true;
      parts = [];
      return;
    }
    // Copy: a stream may reuse its chunk buffers.
    if (piece.length > 0) parts.push(piece.slice());
  };

  /** The record just ended, as a row, an issue, or nothing (a blank line, the header). */
  const finish = (): RecordResult | null => {
    const startLine = recordLine;
    const wasTooLong = tooLong;
    let record = concatBytes(parts);
    parts = [];
    held = 0;
    tooLong = false;
    recordLine = line;
    if (firstRecord) {
      firstRecord = false;
      if (hasBom(record)) {
        statistics.byteOrderMark = true;
        record = record.subarray(3);
      }
    }
    if (wasTooLong) {
      row++;
      return {
        kind: 'issue',
        issue: {
          severity: 'error',
          dataset,
          file,
          row,
          line: startLine,
          field: '(row)',
          expected: `a record of at most ${maxRowBytes} bytes`,
          got: `more than ${maxRowBytes} bytes`,
        },
      };
    }
    if (record.length > 0 && record[record.length - 1] === 0x0d) {
      record = record.subarray(0, record.length - 1);
      statistics.crlfLines++;
    }
    const text = decodeUtf8Strict(record);
    if (text !== undefined && text.trim().length === 0) {
      statistics.blankLines++;
      return null;
    }
    if (header === undefined) {
      header = text === undefined ? [] : (parseCsvRecords(text)[0]?.fields ?? []).map((name) => name.trim());
      return null;
    }
    row++;
    const location = { dataset, file, row, line: startLine };
    if (text === undefined) {
      const offset = invalidUtf8Offsets(record, 1)[0];
      return {
        kind: 'issue',
        issue: invalidByteIssue(location, record, offset, `at byte ${offset} of the record`),
      };
    }
    const fields = parseCsvRecords(text)[0]?.fields ?? [];
    if (fields.length !== header.length) {
      return {
        kind: 'issue',
        issue: {
          severity: 'error',
          ...location,
          field: '(row)',
          expected: `${header.length} comma-separated fields (${header.join(', ')})`,
          got: `${fields.length} fields`,
        },
      };
    }
    const value: Record<string, string> = {};
    header.forEach((name, column) => {
      value[name] = fields[column];
    });
    return { kind: 'row', location, value };
  };

  for await (const chunk of byteChunks(source)) {
    let start = 0;
    for (let index = 0; index < chunk.length; index++) {
      const byte = chunk[index];
      // `""` inside a quoted field toggles twice: parity is all a record's end needs.
      if (byte === QUOTE) quoted = !quoted;
      else if (byte === NEWLINE) {
        line++;
        if (quoted) continue;
        append(chunk.subarray(start, index));
        start = index + 1;
        const result = finish();
        if (result) yield result;
      }
    }
    append(chunk.subarray(start));
  }
  if (held > 0 || tooLong) {
    const result = finish();
    if (result) yield result;
  }
  if (header === undefined) {
    yield {
      kind: 'issue',
      issue: {
        severity: 'error',
        dataset,
        file,
        field: '(file)',
        expected: 'a header row and data rows',
        got: 'an empty file',
      },
    };
  }
}

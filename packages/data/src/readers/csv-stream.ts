/**
 * `.csv` read as a stream (for `streaming: true`): lines are gathered until their `"` quotes balance,
 * so a record with quoted line breaks is held whole and nothing else is. The fields are then split by
 * the same parser as whole-file reading (`parseCsvRecords`), so both readings give the same rows.
 */
import {
  type ByteSource,
  byteLines,
  concatBytes,
  decodeUtf8Strict,
  invalidByteIssue,
  invalidUtf8Offsets,
} from './bytes.js';
import { parseCsvRecords } from './csv.js';
import type { StreamReadOptions } from './json-lines.js';
import type { RecordResult } from './records.js';

const QUOTE = 0x22;

/** Streams the rows of a CSV source keyed by its header; memory stays bounded by the longest record. */
export async function* readCsvLines(
  source: ByteSource,
  options: StreamReadOptions,
): AsyncGenerator<RecordResult> {
  const maxRowBytes = options.maxRowBytes ?? 64 * 1024 * 1024;
  const { file, dataset, statistics } = options;
  let header: string[] | undefined;
  let parts: Uint8Array[] = [];
  let quotes = 0;
  let startLine = 0;
  let heldBytes = 0;
  let row = 0;
  const lines = byteLines(source, {
    maxLineBytes: maxRowBytes,
    onBom: () => {
      statistics.byteOrderMark = true;
    },
  });
  for await (const line of lines) {
    if (parts.length === 0) startLine = line.line;
    if (line.crlf) statistics.crlfLines++;
    const bytes = line.bytes;
    heldBytes += line.byteLength + 1;
    if (bytes === undefined || heldBytes > maxRowBytes) {
      // Too long to hold: reject the record it belongs to and go on after it when the quotes close.
      row++;
      yield {
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
      parts = [];
      quotes = 0;
      heldBytes = 0;
      continue;
    }
    for (const byte of bytes) if (byte === QUOTE) quotes++;
    parts.push(bytes);
    // An odd count: a quoted field goes on over the line break.
    if (quotes % 2 === 1) {
      parts.push(Uint8Array.of(0x0a));
      continue;
    }
    const record = concatBytes(parts);
    parts = [];
    quotes = 0;
    heldBytes = 0;
    const text = decodeUtf8Strict(record);
    if (text !== undefined && text.trim().length === 0) {
      statistics.blankLines++;
      continue;
    }
    if (header === undefined) {
      header = text === undefined ? [] : (parseCsvRecords(text)[0]?.fields ?? []).map((name) => name.trim());
      continue;
    }
    row++;
    const location = { dataset, file, row, line: startLine };
    if (text === undefined) {
      const offset = invalidUtf8Offsets(record, 1)[0];
      yield {
        kind: 'issue',
        issue: invalidByteIssue(location, record, offset, `at byte ${offset} of the record`),
      };
      continue;
    }
    const fields = parseCsvRecords(text)[0]?.fields ?? [];
    if (fields.length !== header.length) {
      yield {
        kind: 'issue',
        issue: {
          severity: 'error',
          ...location,
          field: '(row)',
          expected: `${header.length} comma-separated fields (${header.join(', ')})`,
          got: `${fields.length} fields`,
        },
      };
      continue;
    }
    const value: Record<string, string> = {};
    header.forEach((name, column) => {
      value[name] = fields[column];
    });
    yield { kind: 'row', location, value };
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

/**
 * Reader for `.csv` files (RFC 4180: a header row, `,` separators, `"` quoting with `""` escapes, fields
 * may span lines, `\n` or `\r\n` endings). Every value is a string; columns holding lists (history,
 * conversations, tools) are expected as JSON text and parsed by the format converters.
 */
import { decodeUtf8Lenient, hasBom, invalidByteIssue, invalidUtf8Offsets } from './bytes.js';
import type { ReadStatistics, RecordResult } from './records.js';

interface CsvRecord {
  fields: string[];
  line: number;
  endLine: number;
}

/** Splits CSV text into records of raw fields, with the line each record starts and ends on. */
export function parseCsvRecords(text: string, statistics?: ReadStatistics): CsvRecord[] {
  const records: CsvRecord[] = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let fieldStarted = false;
  let line = 1;
  let recordLine = 1;
  const endRecord = () => {
    fields.push(field);
    const blank = fields.length === 1 && fields[0].trim().length === 0 && !fieldStarted;
    if (blank) {
      if (statistics) statistics.blankLines++;
    } else records.push({ fields, line: recordLine, endLine: line });
    fields = [];
    field = '';
    fieldStarted = false;
  };
  for (let index = 0; index < text.length; index++) {
    const character = text[index];
    if (quoted) {
      if (character === '"') {
        if (text[index + 1] === '"') {
          field += '"';
          index++;
        } else quoted = false;
      } else {
        if (character === '\n') line++;
        field += character;
      }
      continue;
    }
    if (character === '"' && field.length === 0) {
      quoted = true;
      fieldStarted = true;
    } else if (character === ',') {
      fields.push(field);
      field = '';
      fieldStarted = true;
    } else if (character === '\n') {
      endRecord();
      line++;
      recordLine = line;
    } else if (character === '\r' && text[index + 1] === '\n') {
      if (statistics) statistics.crlfLines++;
    } else field += character;
  }
  if (field.length > 0 || fields.length > 0 || fieldStarted) endRecord();
  return records;
}

/** Parses a whole `.csv` file into row records keyed by the header's column names. */
export function parseCsvFile(
  bytes: Uint8Array,
  file: string,
  statistics: ReadStatistics,
  dataset?: string,
): RecordResult[] {
  let body = bytes;
  if (hasBom(body)) {
    statistics.byteOrderMark = true;
    body = body.subarray(3);
  }
  const badLines = new Map<number, number>();
  const badOffsets = invalidUtf8Offsets(body);
  if (badOffsets.length > 0) {
    let line = 1;
    let cursor = 0;
    for (const offset of badOffsets) {
      for (; cursor < offset; cursor++) if (body[cursor] === 0x0a) line++;
      if (!badLines.has(line)) badLines.set(line, offset + (bytes.length - body.length));
    }
  }
  const records = parseCsvRecords(decodeUtf8Lenient(body), statistics);
  if (records.length === 0) {
    return [
      {
        kind: 'issue',
        issue: {
          severity: 'error',
          dataset,
          file,
          field: '(file)',
          expected: 'a header row and data rows',
          got: 'an empty file',
        },
      },
    ];
  }
  const header = records[0].fields.map((name) => name.trim());
  const results: RecordResult[] = [];
  for (let index = 1; index < records.length; index++) {
    const record = records[index];
    const location = { dataset, file, row: index, line: record.line };
    let badOffset: number | undefined;
    for (let line = record.line; line <= record.endLine && badOffset === undefined; line++)
      badOffset = badLines.get(line);
    if (badOffset !== undefined) {
      results.push({ kind: 'issue', issue: invalidByteIssue(location, bytes, badOffset) });
      continue;
    }
    if (record.fields.length !== header.length) {
      results.push({
        kind: 'issue',
        issue: {
          severity: 'error',
          ...location,
          field: '(row)',
          expected: `${header.length} comma-separated fields (${header.join(', ')})`,
          got: `${record.fields.length} fields`,
        },
      });
      continue;
    }
    const value: Record<string, string> = {};
    header.forEach((name, column) => {
      value[name] = record.fields[column];
    });
    results.push({ kind: 'row', location, value });
  }
  return results;
}

/**
 * Reader for `.json` files holding an array of rows. The whole file is parsed at once (JSON arrays
 * cannot be streamed without a streaming parser; use JSONL for multi-GB data). Bad bytes are pinned to
 * the row that holds them, and a file that is not JSON is reported with its line and column.
 */

import { type DataIssue, describeValue } from '../issues.js';
import {
  decodeUtf8Lenient,
  decodeUtf8Strict,
  hasBom,
  invalidByteIssue,
  invalidUtf8Offsets,
  lineAndColumn,
} from './bytes.js';
import { parseJsonLinesText } from './json-lines.js';
import { jsonSyntaxErrorOffset } from './json-syntax-error.js';
import type { ReadStatistics, RecordResult } from './records.js';

/** Parses the bytes of a `.json` file into row records. File-level problems come back as one issue. */
export function parseJsonArrayFile(
  bytes: Uint8Array,
  file: string,
  statistics: ReadStatistics,
  dataset?: string,
): RecordResult[] {
  let start = 0;
  if (hasBom(bytes)) {
    statistics.byteOrderMark = true;
    start = 3;
  }
  const body = bytes.subarray(start);
  const strict = decodeUtf8Strict(body);
  const badOffsets = strict === undefined ? invalidUtf8Offsets(body) : [];
  const text = strict ?? decodeUtf8Lenient(body);

  const fileIssue = (issue: Omit<DataIssue, 'file' | 'severity' | 'dataset'>): RecordResult[] => [
    { kind: 'issue', issue: { severity: 'error', file, dataset, ...issue } },
  ];

  const firstCharacter = text.trimStart()[0];
  if (firstCharacter === undefined) {
    return fileIssue({ field: '(file)', expected: 'a JSON array of rows', got: 'an empty file' });
  }

  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    const message = (error as Error).message;
    if (firstCharacter === '{' && looksLikeJsonLines(text)) {
      statistics.notes.push('the .json file holds one JSON object per line; it was read as JSON lines');
      return parseJsonLinesText(text, file, statistics, dataset);
    }
    // V8 gives a position for most errors but not all; the scanner finds it for the rest.
    const position = /position (\d+)/.exec(message);
    const offset = position ? Number(position[1]) : jsonSyntaxErrorOffset(text);
    const where = offset === null ? undefined : lineAndColumn(text, offset);
    return fileIssue({
      field: '(file)',
      expected: 'valid JSON (an array of row objects)',
      got: where ? `a syntax error at line ${where.line}, column ${where.column}` : 'text that is not JSON',
      detail: message,
      line: where?.line,
    });
  }

  if (!Array.isArray(parsed)) {
    return fileIssue({
      field: '(top level)',
      expected: 'an array of rows ([{...}, {...}])',
      got: describeValue(parsed),
    });
  }

  const elements = arrayElementOffsets(body);
  const results: RecordResult[] = [];
  let badIndex = 0;
  for (let index = 0; index < parsed.length; index++) {
    const element = elements[index];
    const location = { dataset, file, row: index + 1, line: element?.line };
    // Invalid bytes inside this element's byte range reject the row; they were replaced by U+FFFD.
    const end = elements[index + 1]?.offset ?? body.length;
    while (badIndex < badOffsets.length && element && badOffsets[badIndex] < element.offset) badIndex++;
    if (element && badIndex < badOffsets.length && badOffsets[badIndex] < end) {
      const offset = badOffsets[badIndex] + start;
      results.push({ kind: 'issue', issue: invalidByteIssue(location, bytes, offset) });
      continue;
    }
    results.push({ kind: 'row', location, value: parsed[index] });
  }
  return results;
}

/** Whether the first non-blank line of the text parses as JSON on its own (a JSON-lines file). */
function looksLikeJsonLines(text: string): boolean {
  const firstLine = text.trimStart().split('\n', 1)[0].trim();
  try {
    JSON.parse(firstLine);
    return true;
  } catch {
    return false;
  }
}

/**
 * Byte offset and 1-based line of each top-level element of a JSON array. Works on the raw bytes: the
 * structural characters of JSON are ASCII and never occur inside multi-byte UTF-8 sequences. Call only
 * on text that parsed as JSON.
 */
export function arrayElementOffsets(bytes: Uint8Array): { offset: number; line: number }[] {
  const elements: { offset: number; line: number }[] = [];
  let line = 1;
  let index = 0;
  const skipWhitespace = () => {
    while (index < bytes.length) {
      const byte = bytes[index];
      if (byte === 0x0a) line++;
      else if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0d) return;
      index++;
    }
  };
  skipWhitespace();
  if (bytes[index] !== 0x5b) return elements; // not '['
  index++;
  let depth = 0;
  let expectElement = true;
  while (index < bytes.length) {
    if (depth === 0 && expectElement) {
      skipWhitespace();
      if (bytes[index] === 0x5d) break; // ']' of an empty array
      elements.push({ offset: index, line });
      expectElement = false;
    }
    const byte = bytes[index];
    if (byte === 0x0a) line++;
    else if (byte === 0x22) {
      // Skip a string, honouring backslash escapes. JSON strings hold no raw newlines.
      index++;
      while (index < bytes.length && bytes[index] !== 0x22) index += bytes[index] === 0x5c ? 2 : 1;
    } else if (byte === 0x5b || byte === 0x7b) depth++;
    else if (byte === 0x5d || byte === 0x7d) {
      if (depth === 0) break;
      depth--;
    } else if (byte === 0x2c && depth === 0) expectElement = true;
    index++;
  }
  return elements;
}

/** What readers produce: parsed rows with their location, or an issue for a row that could not be read. */
import type { DataIssue, RowLocation } from '../issues.js';

/** A row as read from the file, before any format checks. */
export interface RawRecord {
  kind: 'row';
  location: RowLocation;
  value: unknown;
}

/** A row that could not be read (bad JSON line, invalid UTF-8, too long...). */
export interface RecordIssue {
  kind: 'issue';
  issue: DataIssue;
}

export type RecordResult = RawRecord | RecordIssue;

/** File kinds the readers understand. */
export type FileKind = 'json' | 'jsonl' | 'csv' | 'text' | 'parquet';

/** Counters and remarks about one file, filled in while it is read. */
export interface ReadStatistics {
  /** Lines that held only whitespace; they are not rows and are skipped. */
  blankLines: number;
  /** Whether the file started with a UTF-8 byte-order mark (it is removed). */
  byteOrderMark: boolean;
  /** Lines that ended in `\r\n` (the `\r` is removed). */
  crlfLines: number;
  /** Remarks worth showing in the report, e.g. that a .json file held JSON lines. */
  notes: string[];
}

/** Fresh, empty statistics. */
export function emptyReadStatistics(): ReadStatistics {
  return { blankLines: 0, byteOrderMark: false, crlfLines: 0, notes: [] };
}

/** The file kind for a file name, by extension; `undefined` for unsupported ones. */
export function fileKindOf(fileName: string): FileKind | undefined {
  const lower = fileName.toLowerCase();
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson')) return 'jsonl';
  if (lower.endsWith('.json')) return 'json';
  if (lower.endsWith('.csv')) return 'csv';
  if (lower.endsWith('.parquet')) return 'parquet';
  if (lower.endsWith('.txt') || lower.endsWith('.text')) return 'text';
  return undefined;
}

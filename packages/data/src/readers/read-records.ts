/** One entry point for every file kind: yields row records, streaming where the format allows it. */
import { DataError, type DataIssue } from '../issues.js';
import { asUtf8, type ByteSource, readAllBytes } from './bytes.js';
import { parseCsvFile } from './csv.js';
import { parseJsonArrayFile } from './json-array.js';
import { readJsonLines, readTextLines } from './json-lines.js';
import { randomAccessOf, readParquetRecords } from './parquet.js';
import { type FileKind, fileKindOf, type ReadStatistics, type RecordResult } from './records.js';

/** Options for `readRecords`. */
export interface ReadRecordsOptions {
  /** File name: used in issues and, without `kind`, to pick the reader by extension. */
  file: string;
  /** Dataset name used in issues. */
  dataset?: string;
  /** Force a reader instead of choosing by extension. */
  kind?: FileKind;
  /** Rows over this many bytes are rejected (streamed kinds only). Default 64 MiB. */
  maxRowBytes?: number;
  /** Filled in while reading. */
  statistics: ReadStatistics;
}

/**
 * Reads the rows of a dataset file. JSON lines and text are streamed in bounded memory, parquet a row
 * group at a time from a Blob; `.json` and `.csv` are read whole. Throws `DataError` for an unsupported extension.
 */
export async function* readRecords(
  source: ByteSource,
  options: ReadRecordsOptions,
): AsyncGenerator<RecordResult> {
  const kind = options.kind ?? fileKindOf(options.file);
  if (kind === 'parquet') {
    // Random access, a row group at a time (a Blob, e.g. Node's openAsBlob, is never read whole).
    yield* readParquetRecords(
      await randomAccessOf(source),
      options.file,
      options.statistics,
      options.dataset,
    );
    return;
  }
  // UTF-16 files are read as the text they hold (the readers then see UTF-8).
  source = asUtf8(source);
  if (kind === undefined) {
    const issue: DataIssue = {
      severity: 'error',
      dataset: options.dataset,
      file: options.file,
      field: '(file)',
      expected: 'a .json, .jsonl, .csv, .parquet or .txt file',
      got: `a file named ${options.file}`,
      detail: 'arrow files are not read; convert them to parquet or JSON lines',
    };
    throw new DataError(issue);
  }
  const streamOptions = {
    file: options.file,
    dataset: options.dataset,
    maxRowBytes: options.maxRowBytes,
    statistics: options.statistics,
  };
  switch (kind) {
    case 'jsonl':
      yield* readJsonLines(source, streamOptions);
      return;
    case 'text':
      yield* readTextLines(source, streamOptions);
      return;
    case 'json':
      yield* parseJsonArrayFile(
        await readAllBytes(source),
        options.file,
        options.statistics,
        options.dataset,
      );
      return;
    case 'csv':
      yield* parseCsvFile(await readAllBytes(source), options.file, options.statistics, options.dataset);
      return;
  }
}

export type { FileKind, ReadStatistics, RecordResult };

/** One entry point for every file kind: yields row records, streaming where the format allows it. */
import { DataError, type DataIssue } from '../issues.js';
import { asUtf8, type ByteSource, byteChunks, readAllBytes } from './bytes.js';
import { parseCsvFile } from './csv.js';
import { readCsvLines } from './csv-stream.js';
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
  /**
   * Read every kind incrementally (`streaming: true`): CSV record by record; a `.json` file only when it
   * holds JSON lines (a single JSON array is refused with the reason, since it is parsed whole).
   */
  streaming?: boolean;
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
  if (options.streaming && kind === 'csv') {
    yield* readCsvLines(source, streamOptions);
    return;
  }
  if (options.streaming && kind === 'json') {
    yield* readJsonLinesRefusingArrays(source, streamOptions);
    return;
  }
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

/** A `.json` file under streaming: JSON lines are streamed; a JSON array (read whole) is refused. */
async function* readJsonLinesRefusingArrays(
  source: ByteSource,
  options: { file: string; dataset?: string; maxRowBytes?: number; statistics: ReadStatistics },
): AsyncGenerator<RecordResult> {
  const chunks = byteChunks(source);
  const first = await chunks.next();
  const head = first.done ? new Uint8Array(0) : first.value;
  const start = head.findIndex((byte, index) => {
    // Skip a byte-order mark and white space.
    if (index < 3 && head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) return false;
    return byte !== 0x20 && byte !== 0x0a && byte !== 0x0d && byte !== 0x09;
  });
  if (start >= 0 && head[start] === 0x5b) {
    await chunks.return(undefined);
    throw new DataError({
      severity: 'error',
      dataset: options.dataset,
      file: options.file,
      field: '(file)',
      expected: 'JSON lines (one object per line) with streaming: true',
      got: 'a JSON array, which is parsed whole and cannot be streamed',
      detail:
        'convert it to .jsonl (e.g. `jq -c ".[]" in.json > out.jsonl`), or set streaming: false to read it into memory',
    });
  }
  async function* rest(): AsyncGenerator<Uint8Array> {
    if (!first.done) yield head;
    yield* chunks;
  }
  yield* readJsonLines(rest(), options);
}

export type { FileKind, ReadStatistics, RecordResult };

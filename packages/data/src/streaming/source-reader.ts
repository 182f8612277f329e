/**
 * One dataset read lazily for `streaming: true`: its files are opened in order and read record by
 * record (JSON lines, text, CSV, parquet row groups), each row converted for the stage as it comes.
 * Rejected rows go to `onIssue` with file, row and field (never dropped silently). Records are
 * numbered across the dataset's files (rejected ones included), so a position is one number and an
 * item can be found again by its index.
 */
import { checkStage } from '../formats/convert.js';
import type { Example } from '../formats/types.js';
import { DataError, type DataIssue } from '../issues.js';
import {
  type DatasetSource,
  describePathDataset,
  expandFiles,
  handleRecord,
  type LoadOptions,
  normalizeReference,
  noteUnmappedKeys,
  openFile,
} from '../pipeline/load-examples.js';
import { fillPlaceholders } from '../pipeline/placeholders.js';
import type { ByteSource } from '../readers/bytes.js';
import { readRecords } from '../readers/read-records.js';
import { emptyReadStatistics, type RecordResult } from '../readers/records.js';
import type { DatasetAttributes } from '../registry/dataset-attributes.js';
import type { DatasetReport, ValidationReport } from '../report/validation-report.js';
import type { ItemReference } from './shuffle-buffer.js';

/** A converted example and where it came from. */
export interface StreamItem {
  example: Example;
  reference: ItemReference;
}

interface IndexedRecord {
  record: RecordResult;
  index: number;
  file: string;
}

export class SourceReader {
  /** Counts of this dataset's rows since the stream started (rows read again on a resume not included). */
  readonly report: DatasetReport;
  private attributes: DatasetAttributes | undefined;
  private records: AsyncGenerator<IndexedRecord> | null = null;
  private peeked: StreamItem | null = null;
  private reporting = true;
  private scratch: ValidationReport;
  /** Records consumed through the last item taken. */
  position = 0;
  /** Times this dataset was started over (interleave_over). */
  passes = 0;

  private constructor(
    readonly sourceIndex: number,
    readonly name: string,
    private readonly files: { name: string; source?: ByteSource }[],
    attributes: DatasetAttributes | undefined,
    private readonly description: Record<string, unknown> | undefined,
    private readonly options: LoadOptions,
    private readonly onIssue: (issue: DataIssue) => void,
  ) {
    this.attributes = attributes;
    this.report = {
      name,
      file: files.map((file) => file.name).join(', '),
      formatting: attributes?.formatting ?? 'alpaca',
      rowsRead: 0,
      rowsKept: 0,
      rowsRejected: 0,
      rowsRejectedByTemplate: 0,
      rowsSelected: 0,
      blankLines: 0,
      byteOrderMark: false,
      crlfLines: 0,
      notes: [],
    };
    this.scratch = { stage: options.stage, datasets: [], rejected: [], warnings: [], preview: [] };
    if (attributes) checkStage(attributes, options.stage, this.report.file);
  }

  /** Resolves a dataset (a dataset_info name, a path, a source; hub datasets are downloaded first). */
  static async create(
    sourceIndex: number,
    reference: string | DatasetSource,
    options: LoadOptions,
    onIssue: (issue: DataIssue) => void,
  ): Promise<SourceReader> {
    const source = normalizeReference(reference, options);
    if (source.attributes?.origin === 'hf_hub' && options.hubDataset) {
      source.files = await options.hubDataset(source.attributes);
    }
    const files = await expandFiles(source.files, options);
    for (const file of files) {
      const once =
        file.source !== undefined &&
        !(file.source instanceof Uint8Array) &&
        !(file.source instanceof ArrayBuffer) &&
        !(typeof Blob !== 'undefined' && file.source instanceof Blob);
      if (once) {
        throw new DataError({
          severity: 'error',
          dataset: source.name,
          file: file.name,
          field: '(file)',
          expected: 'a file, Blob or bytes under streaming (read again on each pass and on resume)',
          got: 'a one-shot stream',
        });
      }
    }
    return new SourceReader(
      sourceIndex,
      source.name,
      files,
      source.attributes,
      source.description,
      options,
      onIssue,
    );
  }

  /** Whether the dataset has no item left in this pass. */
  get exhausted(): boolean {
    return this.peeked === null;
  }

  /** (Re)starts the dataset at `position` (records already consumed are read and skipped silently). */
  async start(position: number): Promise<void> {
    await this.records?.return(undefined);
    this.records = this.readAll();
    this.position = position;
    this.reporting = false;
    for (let skipped = 0; skipped < position; skipped++) {
      const next = await this.records.next();
      if (next.done) break;
      this.convert(next.value);
    }
    this.reporting = true;
    this.peeked = await this.pull();
  }

  /** Takes the next item of this pass (null when exhausted). */
  async take(): Promise<StreamItem | null> {
    const item = this.peeked;
    if (item === null) return null;
    this.position = item.reference[1] + 1;
    this.peeked = await this.pull();
    return item;
  }

  /** Reads the items with these record indices again (a saved shuffle buffer), in one pass. */
  async collect(indices: ReadonlySet<number>): Promise<Map<number, StreamItem>> {
    const found = new Map<number, StreamItem>();
    if (indices.size === 0) return found;
    const records = this.readAll();
    const reporting = this.reporting;
    this.reporting = false;
    try {
      for await (const indexed of records) {
        const example = this.convert(indexed);
        if (indices.has(indexed.index) && example)
          found.set(indexed.index, { example, reference: [this.sourceIndex, indexed.index] });
        if (found.size === indices.size) break;
      }
    } finally {
      this.reporting = reporting;
      await records.return(undefined);
    }
    return found;
  }

  /** Stops reading (closes the open file). */
  async close(): Promise<void> {
    await this.records?.return(undefined);
    this.records = null;
  }

  private async pull(): Promise<StreamItem | null> {
    if (!this.records) return null;
    for (;;) {
      const next = await this.records.next();
      if (next.done) return null;
      const example = this.convert(next.value);
      if (example) return { example, reference: [this.sourceIndex, next.value.index] };
    }
  }

  /** Converts one record; a rejected one goes to onIssue (unless read again silently). */
  private convert(indexed: IndexedRecord): Example | undefined {
    const { record } = indexed;
    if (this.attributes === undefined && record.kind === 'row') {
      this.attributes = describePathDataset(this.name, indexed.file, record.value, this.description);
      this.report.formatting = this.attributes.formatting;
      checkStage(this.attributes, this.options.stage, indexed.file);
      noteUnmappedKeys(record.value, this.attributes, this.report);
    }
    const counts = this.reporting ? this.report : { ...this.report, notes: [] };
    const example = handleRecord(record, this.attributes, this.options, this.scratch, counts);
    const rejected = this.scratch.rejected.splice(0);
    this.scratch.warnings.length = 0;
    if (this.reporting) for (const issue of rejected) this.onIssue(issue);
    if (example && this.options.placeholders) fillPlaceholders(example, this.options.placeholders);
    return example;
  }

  /** Every record of the dataset's files in order, numbered from 0. */
  private async *readAll(): AsyncGenerator<IndexedRecord> {
    let index = 0;
    for (const file of this.files) {
      let bytes: ByteSource;
      try {
        bytes = file.source ?? (await openFile(file.name, this.options));
      } catch (error) {
        throw new DataError({
          severity: 'error',
          dataset: this.name,
          file: file.name,
          field: '(file)',
          expected: 'a readable file',
          got: 'no such file',
          detail: (error as Error).message,
        });
      }
      const statistics = emptyReadStatistics();
      const records = readRecords(bytes, {
        file: file.name,
        dataset: this.name,
        maxRowBytes: this.options.maxRowBytes,
        statistics,
        streaming: true,
      });
      for await (const record of records) yield { record, index: index++, file: file.name };
    }
  }
}

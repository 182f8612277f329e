/**
 * Loading datasets into checked examples: resolve each dataset (by dataset_info name or by path), read
 * its rows, convert them for the stage, explain every rejected row, fill placeholders, sample, mix and
 * split. No tokenizer is needed for this part.
 */
import { checkStage, convertRecord } from '../formats/convert.js';
import { detectDescription } from '../formats/detect.js';
import type { Example, Stage } from '../formats/types.js';
import { DataError, type DataIssue, describeValue } from '../issues.js';
import { type MixStrategy, mixDatasets } from '../mixing/mix.js';
import { drawSamples, splitValidation, takeFirst } from '../mixing/sampling.js';
import type { ByteSource } from '../readers/bytes.js';
import { readRecords } from '../readers/read-records.js';
import { emptyReadStatistics, fileKindOf, type RecordResult } from '../readers/records.js';
import type { DatasetAttributes } from '../registry/dataset-attributes.js';
import {
  attributesFromRecord,
  type DatasetInfo,
  resolveDatasetAttributes,
} from '../registry/dataset-info.js';
import type { DatasetReport, ValidationReport } from '../report/validation-report.js';
import type { FileResolver } from './file-resolver.js';
import { fillPlaceholders, unfilledPlaceholders } from './placeholders.js';

/** A dataset given directly rather than by dataset_info name. */
export interface DatasetSource {
  /** Name in the report. Default: the path or file name. */
  name?: string;
  /** File or folder, relative to the dataset folder, opened through `files`. */
  path?: string;
  /** The data itself: a browser `File`/`Blob`, bytes, or a stream. */
  source?: ByteSource;
  /** File name of `source`, to pick the reader by extension. */
  fileName?: string;
  /**
   * A dataset_info-style description: `formatting`, `ranking`, `columns`, `tags`, `num_samples`.
   * Absent: guessed from the first row (and `system`, `history`, `tools` keys are used when present).
   */
  description?: Record<string, unknown>;
}

/** Options of `loadExamples`. */
export interface LoadOptions {
  /** Training stage; decides which rows are valid. */
  stage: Stage;
  /** Dataset names (from `datasetInfo`), paths, or sources. */
  datasets: readonly (string | DatasetSource)[];
  /** The parsed dataset_info.json, for datasets given by name. */
  datasetInfo?: DatasetInfo;
  /** Opens files named by dataset_info or by path. */
  files?: FileResolver;
  /** Keep the first N rows of each dataset (LLaMA-Factory's `max_samples`). */
  maxSamples?: number;
  /** How to combine several datasets. Default `concat`. */
  mixStrategy?: MixStrategy;
  /** Draw probabilities for interleaving, one per dataset. */
  interleaveProbs?: readonly number[];
  /** Validation share: below 1 a fraction, else a count. */
  valSize?: number;
  /** Seed for `num_samples`, interleaving and the split. Default 42. */
  seed?: number;
  /** Throw `DataError` on the first bad row instead of rejecting it. */
  strict?: boolean;
  /** Values for `{{key}}` placeholders in the text (identity.json's `{{name}}` and `{{author}}`). */
  placeholders?: Record<string, string>;
  /** Rows over this many bytes are rejected unread (JSONL and text). Default 64 MiB. */
  maxRowBytes?: number;
  /**
   * Fetches a dataset_info entry with `hf_hub_url` (its `location`, `subset`, `split`, `folder`) and
   * returns the files to read, e.g. downloaded into the Hugging Face cache (`@webtune/hub`). Without
   * it, hub datasets are refused with a clear message.
   */
  hubDataset?: (attributes: DatasetAttributes) => Promise<{ name: string; source: ByteSource }[]>;
}

/** Checked examples and the report so far. */
export interface LoadedExamples {
  train: Example[];
  validation: Example[];
  report: ValidationReport;
}

/** Thrown when no row of the datasets is usable; carries the report that says why. */
export class NoValidRowsError extends DataError {
  readonly report: ValidationReport;

  constructor(issue: DataIssue, report: ValidationReport) {
    super(issue);
    this.name = 'NoValidRowsError';
    this.report = report;
  }
}

/** Loads, checks, samples, mixes and splits datasets. */
export async function loadExamples(options: LoadOptions): Promise<LoadedExamples> {
  const seed = options.seed ?? 42;
  const report: ValidationReport = {
    stage: options.stage,
    datasets: [],
    rejected: [],
    warnings: [],
    preview: [],
  };
  if (options.datasets.length === 0) {
    throw new DataError({
      severity: 'error',
      file: '(options)',
      field: 'datasets',
      expected: 'at least one dataset',
      got: 'none',
    });
  }
  const perDataset: Example[][] = [];
  for (const reference of options.datasets) {
    const loaded = await loadDataset(reference, options, report);
    let examples = loaded.examples;
    if (loaded.attributes?.numSamples !== undefined)
      examples = drawSamples(examples, loaded.attributes.numSamples, seed);
    examples = takeFirst(examples, options.maxSamples);
    loaded.report.rowsSelected = examples.length;
    perDataset.push(examples);
  }

  const names = report.datasets.map((dataset, index) =>
    report.datasets.findIndex((other) => other.name === dataset.name) === index
      ? dataset.name
      : `${dataset.name}#${index + 1}`,
  );
  const total = perDataset.reduce((sum, examples) => sum + examples.length, 0);
  if (total === 0) {
    const read = report.datasets.reduce((sum, dataset) => sum + dataset.rowsRead, 0);
    const first = report.rejected[0];
    throw new NoValidRowsError(
      {
        severity: 'error',
        file: report.datasets.map((dataset) => dataset.file).join(', '),
        field: '(dataset)',
        expected: 'at least one valid row',
        got: `0 valid rows of ${read}`,
        detail: first
          ? `first problem: ${first.field}: expected ${first.expected}${first.got ? `, got ${first.got}` : ''}`
          : undefined,
      },
      report,
    );
  }
  const strategy = options.mixStrategy ?? 'concat';
  // A dataset left without rows cannot be interleaved: leave it out (it is in the report) and share its
  // probability among the others.
  const used = perDataset
    .map((_, index) => index)
    .filter((index) => strategy === 'concat' || perDataset[index].length > 0);
  let probabilities = options.interleaveProbs
    ? used.map((index) => options.interleaveProbs![index])
    : undefined;
  if (probabilities && options.interleaveProbs && options.interleaveProbs.length === perDataset.length) {
    const sum = probabilities.reduce((total, value) => total + value, 0);
    probabilities = probabilities.map((value) => value / sum);
  } else if (options.interleaveProbs) probabilities = [...options.interleaveProbs];
  const mixed = mixDatasets(
    used.map((index) => perDataset[index]),
    { strategy, probabilities, seed },
  );
  if (options.datasets.length > 1) {
    const taken = names.map(() => 0);
    used.forEach((index, position) => {
      taken[index] = mixed.taken[position];
    });
    report.mixing = {
      strategy,
      probabilities: options.interleaveProbs ? [...options.interleaveProbs] : undefined,
      taken: Object.fromEntries(names.map((name, index) => [name, taken[index]])),
    };
  }
  const split = splitValidation(mixed.items, options.valSize, seed);
  if (options.valSize !== undefined)
    report.split = { train: split.train.length, validation: split.validation.length, seed };
  return { train: split.train, validation: split.validation, report };
}

interface LoadedDataset {
  examples: Example[];
  attributes?: DatasetAttributes;
  report: DatasetReport;
}

async function loadDataset(
  reference: string | DatasetSource,
  options: LoadOptions,
  report: ValidationReport,
): Promise<LoadedDataset> {
  const source = normalizeReference(reference, options);
  if (source.attributes?.origin === 'hf_hub' && options.hubDataset) {
    source.files = await options.hubDataset(source.attributes);
  }
  let attributes = source.attributes;
  const datasetReport: DatasetReport = {
    name: source.name,
    file: source.files.map((file) => file.name).join(', '),
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
  report.datasets.push(datasetReport);
  if (attributes) checkStage(attributes, options.stage, datasetReport.file);

  const examples: Example[] = [];
  let placeholderRows = 0;
  let keysNoted = false;
  const placeholderNames = new Set<string>();
  for (const file of await expandFiles(source.files, options)) {
    const statistics = emptyReadStatistics();
    let bytes: ByteSource;
    try {
      bytes = file.source ?? (await openFile(file.name, options));
    } catch (error) {
      throw new DataError({
        severity: 'error',
        dataset: source.name,
        file: file.name,
        field: '(file)',
        expected: 'a readable file',
        got: 'no such file',
        detail: (error as Error).message,
      });
    }
    const records = readRecords(bytes, {
      file: file.name,
      dataset: source.name,
      maxRowBytes: options.maxRowBytes,
      statistics,
    });
    const pending: RecordResult[] = [];
    for await (const record of records) {
      if (attributes === undefined) {
        // A dataset given by path: guess its description from the first readable row.
        pending.push(record);
        if (record.kind !== 'row') continue;
        attributes = describePathDataset(source.name, file.name, record.value, source.description);
        datasetReport.formatting = attributes.formatting;
        checkStage(attributes, options.stage, file.name);
      }
      const batch = pending.length > 0 ? pending.splice(0) : [record];
      for (const item of batch) {
        if (!keysNoted && item.kind === 'row' && attributes) {
          noteUnmappedKeys(item.value, attributes, datasetReport);
          keysNoted = true;
        }
        const outcome = handleRecord(item, attributes, options, report, datasetReport);
        if (!outcome) continue;
        if (options.placeholders) fillPlaceholders(outcome, options.placeholders);
        const unfilled = unfilledPlaceholders(outcome);
        if (unfilled.length > 0) {
          placeholderRows++;
          for (const name of unfilled) placeholderNames.add(name);
        }
        examples.push(outcome);
      }
    }
    // Rows that were all unreadable: still count them.
    for (const item of pending) handleRecord(item, attributes, options, report, datasetReport);
    datasetReport.blankLines += statistics.blankLines;
    datasetReport.byteOrderMark ||= statistics.byteOrderMark;
    datasetReport.crlfLines += statistics.crlfLines;
    datasetReport.notes.push(...statistics.notes);
  }
  if (placeholderRows > 0) {
    report.warnings.push({
      severity: 'warning',
      dataset: source.name,
      file: datasetReport.file,
      field: '(text)',
      expected: `values for the placeholders ${[...placeholderNames].map((name) => `{{${name}}}`).join(', ')} (option placeholders)`,
      got: `${placeholderRows} rows that still hold them`,
    });
  }
  return { examples, attributes, report: datasetReport };
}

/** Converts one record, recording its rejection; returns the example or `undefined`. */
export function handleRecord(
  record: RecordResult,
  attributes: DatasetAttributes | undefined,
  options: LoadOptions,
  report: ValidationReport,
  datasetReport: DatasetReport,
): Example | undefined {
  let issue: DataIssue | undefined;
  let example: Example | undefined;
  if (record.kind === 'issue') issue = record.issue;
  else if (attributes === undefined) {
    issue = {
      severity: 'error',
      ...record.location,
      field: '(row)',
      expected: 'a row in a known format',
      got: describeValue(record.value),
    };
  } else {
    const converted = convertRecord(record, attributes, options.stage);
    report.warnings.push(...converted.warnings);
    issue = converted.issue;
    example = converted.example;
  }
  if (issue) {
    if (issue.row === undefined) {
      // A problem with the whole file: nothing of it is read.
      if (options.strict) throw new DataError(issue);
      report.rejected.push(issue);
      return undefined;
    }
    if (options.strict) throw new DataError(issue);
    report.rejected.push(issue);
    datasetReport.rowsRead++;
    datasetReport.rowsRejected++;
    return undefined;
  }
  datasetReport.rowsRead++;
  datasetReport.rowsKept++;
  return example;
}

export interface NormalizedReference {
  name: string;
  attributes?: DatasetAttributes;
  description?: Record<string, unknown>;
  files: { name: string; source?: ByteSource }[];
}

export function normalizeReference(
  reference: string | DatasetSource,
  options: LoadOptions,
): NormalizedReference {
  if (typeof reference === 'string') {
    const info = options.datasetInfo;
    if (info?.entries.has(reference)) {
      const attributes = resolveDatasetAttributes(info, reference);
      if (attributes.origin === 'hf_hub' && options.hubDataset) {
        return { name: reference, attributes, files: [] };
      }
      if (attributes.origin === 'ms_hub' || attributes.origin === 'om_hub') {
        throw new DataError({
          severity: 'error',
          dataset: reference,
          file: info.file,
          field: `${reference}.${attributes.origin}_url`,
          expected: 'hf_hub_url or a local file_name (webtune downloads from the Hugging Face hub only)',
          got: `${attributes.origin === 'ms_hub' ? 'ModelScope' : 'Modelers'} dataset ${attributes.location}`,
          detail:
            'download it with its own tools and set file_name, or use the same dataset from the Hugging Face hub',
        });
      }
      if (attributes.origin !== 'file') {
        throw new DataError({
          severity: 'error',
          dataset: reference,
          file: info.file,
          field: `${reference}.file_name`,
          expected: 'a local file (webtune reads local files; download the data and set file_name)',
          got: `${attributes.origin} ${attributes.location}`,
        });
      }
      return { name: reference, attributes, files: [{ name: attributes.location }] };
    }
    if (fileKindOf(reference) === undefined) {
      throw new DataError({
        severity: 'error',
        file: info?.file ?? '(options)',
        field: 'datasets',
        expected: info
          ? `a dataset named in ${info.file}, or a .json/.jsonl/.csv/.txt path`
          : 'a .json/.jsonl/.csv/.txt path (or pass datasetInfo)',
        got: JSON.stringify(reference),
      });
    }
    return { name: reference, files: [{ name: reference }] };
  }
  const fileName = reference.path ?? reference.fileName ?? reference.name;
  if (fileName === undefined) {
    throw new DataError({
      severity: 'error',
      file: '(options)',
      field: 'datasets',
      expected: 'a dataset with a path or a fileName',
      got: 'neither',
    });
  }
  const name = reference.name ?? fileName;
  const attributes = reference.description
    ? describePathDataset(name, fileName, undefined, reference.description)
    : undefined;
  return {
    name,
    attributes,
    description: reference.description,
    files: [{ name: fileName, source: reference.source }],
  };
}

export async function expandFiles(files: { name: string; source?: ByteSource }[], options: LoadOptions) {
  const expanded: { name: string; source?: ByteSource }[] = [];
  for (const file of files) {
    if (file.source === undefined && options.files?.list) {
      const inside = await options.files.list(file.name);
      if (inside) {
        expanded.push(...inside.filter((name) => fileKindOf(name) !== undefined).map((name) => ({ name })));
        continue;
      }
    }
    expanded.push(file);
  }
  return expanded;
}

export async function openFile(name: string, options: LoadOptions): Promise<ByteSource> {
  if (!options.files) throw new Error('no file resolver given (option files)');
  return await options.files.open(name);
}

export function describePathDataset(
  name: string,
  fileName: string,
  firstRow: unknown,
  description: Record<string, unknown> | undefined,
): DatasetAttributes {
  const kind = fileKindOf(fileName) ?? 'json';
  const guessed = description ?? detectDescription(firstRow, kind);
  if (guessed === undefined) {
    throw new DataError({
      severity: 'error',
      dataset: name,
      file: fileName,
      field: '(row)',
      row: 1,
      expected:
        'a row in a known format (instruction/output, conversations, messages, chosen_messages, text)',
      got: describeValue(firstRow),
    });
  }
  return attributesFromRecord(name, { file_name: fileName, ...guessed }, (field, expected, got) => {
    throw new DataError({
      severity: 'error',
      dataset: name,
      file: fileName,
      field,
      expected,
      got: describeValue(got),
    });
  });
}

/** Notes keys of the first row that no column reads (LLaMA-Factory ignores them silently). */
export function noteUnmappedKeys(row: unknown, attributes: DatasetAttributes, report: DatasetReport): void {
  if (row === null || typeof row !== 'object' || Array.isArray(row)) return;
  const used = new Set<string>(
    Object.values(attributes.columns).filter((value): value is string => typeof value === 'string'),
  );
  if (attributes.formatting === 'v1') {
    used.add('chosen_messages');
    used.add('rejected_messages');
  }
  const unused = Object.keys(row).filter((key) => !used.has(key));
  if (unused.length > 0) {
    report.notes.push(`row keys not read by any column (see dataset_info "columns"): ${unused.join(', ')}`);
  }
}

export type { Stage };

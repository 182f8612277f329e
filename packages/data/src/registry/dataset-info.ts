/**
 * Reading LLaMA-Factory's `dataset_info.json`: a map from dataset name to its description. Entries are
 * checked when a dataset is resolved, so one bad entry does not block the others.
 */
import { DataError, type DataIssue, describeValue } from '../issues.js';
import {
  type DatasetAttributes,
  type DatasetColumns,
  type DatasetOrigin,
  type DatasetTags,
  DEFAULT_COLUMNS,
  type Formatting,
  OPENAI_TAGS,
  SHAREGPT_TAGS,
} from './dataset-attributes.js';

/** The entries of a dataset_info.json, by dataset name, not yet checked. */
export interface DatasetInfo {
  /** File the entries came from, for messages. */
  file: string;
  entries: Map<string, unknown>;
}

const FORMATTINGS: readonly Formatting[] = ['alpaca', 'sharegpt', 'openai', 'v1'];
const COLUMN_KEYS: readonly (keyof DatasetColumns)[] = [
  'prompt',
  'query',
  'response',
  'messages',
  'history',
  'system',
  'tools',
  'images',
  'videos',
  'audios',
  'chosen',
  'rejected',
  'kto_tag',
];
const TAG_KEYS: readonly (keyof DatasetTags)[] = [
  'role_tag',
  'content_tag',
  'user_tag',
  'assistant_tag',
  'observation_tag',
  'function_tag',
  'system_tag',
];

/** Parses the text (or already parsed JSON) of a dataset_info.json. Throws `DataError` if it is not an object. */
export function parseDatasetInfo(source: string | unknown, file = 'dataset_info.json'): DatasetInfo {
  let value = source;
  if (typeof source === 'string') {
    try {
      value = JSON.parse(source.charCodeAt(0) === 0xfeff ? source.slice(1) : source);
    } catch (error) {
      throw new DataError({
        severity: 'error',
        file,
        field: '(file)',
        expected: 'valid JSON',
        got: 'text that is not JSON',
        detail: (error as Error).message,
      });
    }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new DataError({
      severity: 'error',
      file,
      field: '(top level)',
      expected: 'an object mapping dataset names to descriptions',
      got: describeValue(value),
    });
  }
  return { file, entries: new Map(Object.entries(value as Record<string, unknown>)) };
}

/** Names of the datasets whose rows are in a local file or folder (`file_name`). */
export function localDatasetNames(info: DatasetInfo): string[] {
  const names: string[] = [];
  for (const [name, entry] of info.entries) {
    if (
      entry &&
      typeof entry === 'object' &&
      typeof (entry as Record<string, unknown>).file_name === 'string'
    ) {
      names.push(name);
    }
  }
  return names;
}

/**
 * Checks and completes one dataset_info entry with LLaMA-Factory's defaults. Throws `DataError` naming
 * the entry and field for an unknown name, a wrong type or an unknown formatting.
 */
export function resolveDatasetAttributes(info: DatasetInfo, name: string): DatasetAttributes {
  const entry = info.entries.get(name);
  const fail = (field: string, expected: string, got: unknown, detail?: string): never => {
    const issue: DataIssue = {
      severity: 'error',
      file: info.file,
      dataset: name,
      field,
      expected,
      got: describeValue(got),
    };
    if (detail) issue.detail = detail;
    throw new DataError(issue);
  };
  if (entry === undefined) {
    const known = [...info.entries.keys()];
    fail(
      name,
      `a dataset named in ${info.file}`,
      undefined,
      `known: ${known.slice(0, 12).join(', ')}${known.length > 12 ? ', ...' : ''}`,
    );
  }
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) fail(name, 'an object', entry);
  const record = entry as Record<string, unknown>;
  return attributesFromRecord(name, record, (field, expected, got) =>
    fail(`${name}.${field}`, expected, got),
  );
}

/**
 * Builds attributes from a plain description object (a dataset_info entry, or options given in code for
 * a dataset loaded by path). `fail` is called for bad fields and must throw.
 */
export function attributesFromRecord(
  name: string,
  record: Record<string, unknown>,
  fail: (field: string, expected: string, got: unknown) => never,
): DatasetAttributes {
  const optionalString = (key: string): string | undefined => {
    const value = record[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string' || value.length === 0) fail(key, 'a non-empty string', value);
    return value as string;
  };

  const origins: [string, DatasetOrigin][] = [
    ['file_name', 'file'],
    ['hf_hub_url', 'hf_hub'],
    ['ms_hub_url', 'ms_hub'],
    ['om_hub_url', 'om_hub'],
    ['script_url', 'script'],
    ['cloud_file_name', 'cloud_file'],
  ];
  let origin: DatasetOrigin | undefined;
  let location: string | undefined;
  for (const [key, kind] of origins) {
    const value = optionalString(key);
    if (value !== undefined) {
      origin = kind;
      location = value;
      break;
    }
  }
  if (origin === undefined || location === undefined) {
    fail('file_name', 'file_name (or hf_hub_url, ms_hub_url, script_url, cloud_file_name)', undefined);
  }

  const formatting = (optionalString('formatting') ?? 'alpaca') as Formatting;
  if (!FORMATTINGS.includes(formatting))
    fail('formatting', `one of ${FORMATTINGS.join(', ')}`, record.formatting);

  const ranking = record.ranking ?? false;
  if (typeof ranking !== 'boolean') fail('ranking', 'true or false', ranking);

  const numSamples = record.num_samples;
  if (numSamples !== undefined && numSamples !== null) {
    if (typeof numSamples !== 'number' || !Number.isInteger(numSamples) || numSamples <= 0) {
      fail('num_samples', 'a positive integer', numSamples);
    }
  }

  const columns: DatasetColumns = {
    ...DEFAULT_COLUMNS,
    messages: formatting === 'openai' || formatting === 'v1' ? 'messages' : DEFAULT_COLUMNS.messages,
  };
  const rawColumns = record.columns;
  if (rawColumns !== undefined && rawColumns !== null) {
    if (typeof rawColumns !== 'object' || Array.isArray(rawColumns)) fail('columns', 'an object', rawColumns);
    for (const [key, value] of Object.entries(rawColumns as Record<string, unknown>)) {
      if (!COLUMN_KEYS.includes(key as keyof DatasetColumns))
        fail(`columns.${key}`, `one of ${COLUMN_KEYS.join(', ')}`, key);
      if (value === null) continue;
      if (typeof value !== 'string' || value.length === 0) fail(`columns.${key}`, 'a column name', value);
      (columns as unknown as Record<string, string>)[key] = value as string;
    }
  }

  const tags: DatasetTags = {
    ...(formatting === 'sharegpt' || formatting === 'alpaca' ? SHAREGPT_TAGS : OPENAI_TAGS),
  };
  const rawTags = record.tags;
  if (rawTags !== undefined && rawTags !== null) {
    if (typeof rawTags !== 'object' || Array.isArray(rawTags)) fail('tags', 'an object', rawTags);
    for (const [key, value] of Object.entries(rawTags as Record<string, unknown>)) {
      if (!TAG_KEYS.includes(key as keyof DatasetTags))
        fail(`tags.${key}`, `one of ${TAG_KEYS.join(', ')}`, key);
      if (typeof value !== 'string' || value.length === 0) fail(`tags.${key}`, 'a non-empty string', value);
      tags[key as keyof DatasetTags] = value as string;
    }
  }

  return {
    name,
    origin: origin as DatasetOrigin,
    location: location as string,
    formatting,
    ranking: ranking as boolean,
    subset: optionalString('subset'),
    split: optionalString('split') ?? 'train',
    folder: optionalString('folder'),
    numSamples: (numSamples as number | undefined) ?? undefined,
    columns,
    tags,
  };
}

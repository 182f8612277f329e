/**
 * Row-level problems found while reading and checking a dataset, and the error thrown for them in strict
 * mode. Every row that is not used ends up as one `DataIssue`: nothing is dropped without being counted.
 */

/** Where a row came from. `row` counts records from 1 (the n-th array element or non-blank line). */
export interface RowLocation {
  /** Dataset name from dataset_info.json, or the file name when loaded by path. */
  dataset?: string;
  /** File the row was read from, as given to the reader. */
  file: string;
  /** 1-based record number inside the file. Absent for problems with the whole file. */
  row?: number;
  /** 1-based line in the file where the record starts, when known. */
  line?: number;
}

export type IssueSeverity = 'error' | 'warning';

/** One problem: which field of which row, what was expected there and what was found. */
export interface DataIssue extends RowLocation {
  severity: IssueSeverity;
  /** Dotted path of the field, e.g. `conversations[2].from`; `(file)` or `(row)` for the whole thing. */
  field: string;
  /** What the field should have held, in words. */
  expected: string;
  /** What it held instead, in words (see `describeValue`). */
  got?: string;
  /** Extra explanation, e.g. the JSON parser's message. */
  detail?: string;
}

/** Thrown for a problem that stops loading: a bad file, a bad dataset_info entry, or any bad row in strict mode. */
export class DataError extends Error {
  readonly issue: DataIssue;

  constructor(issue: DataIssue) {
    super(formatIssue(issue));
    this.name = 'DataError';
    this.issue = issue;
  }
}

/**
 * A setting that does not fit the data it is applied to (val_size, max_samples, mix_strategy,
 * interleave_probs): the user's configuration to fix, named by its LLaMA-Factory key.
 */
export class DataConfigError extends Error {
  override name = 'DataConfigError';
  constructor(
    /** The LLaMA-Factory key, e.g. `val_size`. */
    readonly setting: string,
    message: string,
  ) {
    super(`${setting}: ${message}`);
  }
}

/** Formats an issue as one line: `file.json row 3 (line 17), field "output": expected a string, got a number (42)`. */
export function formatIssue(issue: DataIssue): string {
  const where = [
    issue.dataset && issue.dataset !== issue.file ? `${issue.dataset}: ${issue.file}` : issue.file,
  ];
  if (issue.row !== undefined) where.push(`row ${issue.row}`);
  if (issue.line !== undefined) where.push(`(line ${issue.line})`);
  let text = `${where.join(' ')}, field "${issue.field}": expected ${issue.expected}`;
  if (issue.got !== undefined) text += `, got ${issue.got}`;
  if (issue.detail) text += ` (${issue.detail})`;
  return escapeControlCharacters(text);
}

/**
 * Text from a user's file made safe to print: control characters (C0 but tab, DEL, C1), the
 * bidirectional overrides become visible escapes (`\x1b`, `\u202e`), so a file's bytes
 * can never drive the terminal (colours, cursor moves, titles, hidden text).
 */
export function escapeControlCharacters(text: string): string {
  return text.replace(
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are what is looked for.
    /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (character) => {
      const code = character.charCodeAt(0);
      return code < 0x100
        ? `\\x${code.toString(16).padStart(2, '0')}`
        : `\\u${code.toString(16).padStart(4, '0')}`;
    },
  );
}

/** Describes a value in a few words for an error message: `an empty string`, `a number (42)`, `missing`. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing (the field is missing)';
  if (value === null) return 'null';
  if (typeof value === 'string') {
    if (value.length === 0) return 'an empty string';
    if (value.trim().length === 0) return 'a string of only whitespace';
    return `a string (${JSON.stringify(shorten(value, 40))})`;
  }
  if (typeof value === 'number') return `a number (${value})`;
  if (typeof value === 'boolean') return `a boolean (${value})`;
  if (Array.isArray(value)) return value.length === 0 ? 'an empty array' : `an array of ${value.length}`;
  if (typeof value === 'object') {
    const keys = Object.keys(value as object);
    if (keys.length === 0) return 'an empty object';
    return `an object with keys ${keys
      .slice(0, 6)
      .map((key) => escapeControlCharacters(shorten(key, 40)))
      .join(', ')}${keys.length > 6 ? ', ...' : ''}`;
  }
  return typeof value;
}

function shorten(text: string, length: number): string {
  return text.length <= length ? text : `${text.slice(0, length)}...`;
}

/** Small helpers the format converters share to check fields and report the first problem of a row. */
import { type DataIssue, describeValue, type RowLocation } from '../issues.js';

/** Thrown inside a converter to reject the row; caught by `convertRecord`. */
export class RowRejection extends Error {
  readonly issue: DataIssue;

  constructor(issue: DataIssue) {
    super(issue.expected);
    this.issue = issue;
  }
}

/** Checks fields of one row and throws `RowRejection` naming the field on the first problem. */
export class RowChecker {
  readonly location: RowLocation;
  /** Warnings about the row that do not reject it. */
  readonly warnings: DataIssue[] = [];

  constructor(location: RowLocation) {
    this.location = location;
  }

  /** Rejects the row. `got` is described in words; leave it out when nothing was found to describe. */
  reject(field: string, expected: string, ...found: [got?: unknown, detail?: string]): never {
    const issue: DataIssue = { severity: 'error', ...this.location, field, expected };
    if (found.length >= 1) issue.got = describeValue(found[0]);
    if (found[1]) issue.detail = found[1];
    throw new RowRejection(issue);
  }

  /** Rejects the row, with what was found already put in words (`3 turns`). */
  rejectWithText(field: string, expected: string, got: string): never {
    throw new RowRejection({ severity: 'error', ...this.location, field, expected, got });
  }

  /** Records a warning about the row. */
  warn(field: string, expected: string, got?: unknown, detail?: string): void {
    const issue: DataIssue = { severity: 'warning', ...this.location, field, expected };
    if (got !== undefined) issue.got = describeValue(got);
    if (detail) issue.detail = detail;
    this.warnings.push(issue);
  }

  /** The row as an object, or a rejection. */
  object(value: unknown, field = '(row)'): Record<string, unknown> {
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      this.reject(field, 'a JSON object', value);
    return value as Record<string, unknown>;
  }

  /** A string field that must be present and not blank. */
  text(value: unknown, field: string): string {
    if (typeof value !== 'string') this.reject(field, 'a string', value);
    if ((value as string).trim().length === 0) this.reject(field, 'a non-empty string', value);
    return value as string;
  }

  /** A string field that may be missing or null (then `undefined`); an empty string is kept. */
  optionalText(value: unknown, field: string): string | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string') this.reject(field, 'a string', value);
    return value as string;
  }

  /** A list field; JSON text holding a list is accepted (CSV cells). */
  list(value: unknown, field: string, expected: string): unknown[] {
    const parsed = parseJsonCell(value);
    if (!Array.isArray(parsed)) this.reject(field, expected, value);
    return parsed as unknown[];
  }

  /** A boolean field; the strings true/false (any case) and 1/0 are accepted (CSV cells). */
  flag(value: unknown, field: string): boolean {
    if (typeof value === 'boolean') return value;
    if (typeof value === 'string') {
      const lower = value.trim().toLowerCase();
      if (lower === 'true' || lower === '1') return true;
      if (lower === 'false' || lower === '0') return false;
    }
    if (value === 1 || value === 0) return value === 1;
    return this.reject(field, 'true or false', value);
  }
}

/** Parses a string cell that holds a JSON list or object; other values are returned as they are. */
export function parseJsonCell(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const trimmed = value.trim();
  if (!(trimmed.startsWith('[') || trimmed.startsWith('{'))) return value;
  try {
    return JSON.parse(trimmed);
  } catch {
    return value;
  }
}

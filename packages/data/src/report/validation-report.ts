/**
 * The report every load returns: rows read, kept and rejected per dataset (each rejection with file, row,
 * field and what was expected), warnings, the mix and split, token statistics against `cutoff_len` and a
 * preview of trained tokens.
 */
import type { Stage } from '../formats/types.js';
import { type DataIssue, formatIssue } from '../issues.js';
import type { Formatting } from '../registry/dataset-attributes.js';
import { formatPreview, type PreviewEntry } from './preview.js';
import type { TokenStatistics } from './token-statistics.js';

/** What happened to one dataset. */
export interface DatasetReport {
  name: string;
  file: string;
  formatting: Formatting;
  /** Rows found in the file(s) (kept + rejected). */
  rowsRead: number;
  rowsKept: number;
  rowsRejected: number;
  /** Rows that passed the format checks but the template or tokenizer could not encode. */
  rowsRejectedByTemplate: number;
  /** Rows used after `max_samples` / `num_samples`. */
  rowsSelected: number;
  blankLines: number;
  byteOrderMark: boolean;
  crlfLines: number;
  notes: string[];
}

/** The validation report. */
export interface ValidationReport {
  stage: Stage;
  template?: string;
  cutoffLen?: number;
  datasets: DatasetReport[];
  /** One issue per rejected row (and per rejected file). */
  rejected: DataIssue[];
  warnings: DataIssue[];
  mixing?: { strategy: string; probabilities?: number[]; taken: Record<string, number> };
  split?: { train: number; validation: number; seed: number };
  tokens?: TokenStatistics;
  /** For pretraining with packing: blocks made. */
  blocks?: number;
  preview: PreviewEntry[];
}

/** Rejections grouped by field and expectation, largest group first. */
export function summarizeIssues(
  issues: readonly DataIssue[],
): { count: number; field: string; expected: string; example: DataIssue }[] {
  const groups = new Map<string, { count: number; field: string; expected: string; example: DataIssue }>();
  for (const issue of issues) {
    const field = issue.field.replace(/\[\d+\]/g, '[]');
    const key = `${issue.dataset ?? issue.file}\u0000${field}\u0000${issue.expected}`;
    const group = groups.get(key);
    if (group) group.count++;
    else groups.set(key, { count: 1, field, expected: issue.expected, example: issue });
  }
  return [...groups.values()].sort((a, b) => b.count - a.count);
}

/** Options of `formatValidationReport`. */
export interface FormatReportOptions {
  /** Rejections listed one by one before the rest are only counted. Default 20. */
  maxIssues?: number;
  /** Previews printed. Default all in the report. */
  maxPreviews?: number;
}

/** The report as plain text for a terminal or a log. */
export function formatValidationReport(report: ValidationReport, options: FormatReportOptions = {}): string {
  const maxIssues = options.maxIssues ?? 20;
  const lines: string[] = [];
  lines.push(
    `stage ${report.stage}` +
      (report.template ? `, template ${report.template}` : '') +
      (report.cutoffLen !== undefined ? `, cutoff_len ${report.cutoffLen}` : ''),
  );
  for (const dataset of report.datasets) {
    let line = `- ${dataset.name} (${dataset.file}, ${dataset.formatting}): ${dataset.rowsRead} rows read, ${dataset.rowsKept} kept, ${dataset.rowsRejected} rejected`;
    if (dataset.rowsRejectedByTemplate > 0)
      line += `, ${dataset.rowsRejectedByTemplate} rejected by the template`;
    if (dataset.rowsSelected !== dataset.rowsKept) line += `, ${dataset.rowsSelected} selected`;
    lines.push(line);
    const remarks = [...dataset.notes];
    if (dataset.blankLines > 0) remarks.push(`${dataset.blankLines} blank lines skipped`);
    if (dataset.byteOrderMark) remarks.push('byte-order mark removed');
    if (dataset.crlfLines > 0) remarks.push(`${dataset.crlfLines} CRLF line ends`);
    for (const remark of remarks) lines.push(`    note: ${remark}`);
  }
  if (report.mixing) {
    const parts = Object.entries(report.mixing.taken).map(([name, count]) => `${name} ${count}`);
    lines.push(
      `mix ${report.mixing.strategy}${report.mixing.probabilities ? ` (${report.mixing.probabilities.join(', ')})` : ''}: ${parts.join(', ')}`,
    );
  }
  if (report.split)
    lines.push(
      `split (seed ${report.split.seed}): ${report.split.train} train, ${report.split.validation} validation`,
    );
  if (report.tokens) {
    const t = report.tokens;
    lines.push(
      `tokens per example: p50 ${t.p50}, p95 ${t.p95}, max ${t.max}, mean ${t.mean.toFixed(1)}` +
        (t.cutoffLen !== undefined
          ? ` (cutoff_len ${t.cutoffLen}: ${t.truncated} of ${t.examples} truncated, ${t.truncatedTokens} tokens cut)`
          : ''),
    );
    lines.push(
      `tokens kept ${t.totalTokens}, trained ${t.trainedTokens} (${t.totalTokens > 0 ? ((100 * t.trainedTokens) / t.totalTokens).toFixed(1) : '0.0'}%)`,
    );
  }
  if (report.blocks !== undefined) lines.push(`pretraining blocks: ${report.blocks}`);
  if (report.rejected.length > 0) {
    lines.push(`rejected: ${report.rejected.length}`);
    for (const group of summarizeIssues(report.rejected)) {
      lines.push(
        `  ${group.count} x field "${group.field}": expected ${group.expected} (e.g. ${formatIssue(group.example)})`,
      );
    }
    for (const issue of report.rejected.slice(0, maxIssues)) lines.push(`  - ${formatIssue(issue)}`);
    if (report.rejected.length > maxIssues)
      lines.push(`  ... and ${report.rejected.length - maxIssues} more`);
  }
  if (report.warnings.length > 0) {
    lines.push(`warnings: ${report.warnings.length}`);
    for (const group of summarizeIssues(report.warnings)) {
      lines.push(
        `  ${group.count} x field "${group.field}": ${group.expected} (e.g. ${formatIssue(group.example)})`,
      );
    }
  }
  const previews = report.preview.slice(0, options.maxPreviews ?? report.preview.length);
  for (const entry of previews) {
    const where = `${entry.location.dataset ?? entry.location.file} row ${entry.location.row}`;
    lines.push(`preview ${where}: ${entry.totalTokens} tokens, ${entry.trainedTokens} trained (between ⟦ ⟧)`);
    lines.push(formatPreview(entry));
  }
  return lines.join('\n');
}

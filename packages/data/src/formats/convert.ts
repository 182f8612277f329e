/** Turning raw rows into examples for a stage, with every rejected row explained. */
import { DataError, type DataIssue } from '../issues.js';
import type { RawRecord } from '../readers/records.js';
import type { DatasetAttributes } from '../registry/dataset-attributes.js';
import { convertAlpacaRow } from './alpaca.js';
import { RowChecker, RowRejection } from './row-checks.js';
import { convertShareGptRow } from './sharegpt.js';
import { EXAMPLE_KIND_OF_STAGE, type Example, type Stage } from './types.js';
import { convertV1Row } from './v1.js';

/** The outcome for one row: an example, or the issue that rejected it; plus warnings either way. */
export interface ConvertedRecord {
  example?: Example;
  issue?: DataIssue;
  warnings: DataIssue[];
}

/**
 * Throws `DataError` when a dataset cannot serve a stage: preference data outside rm/dpo, plain data in
 * rm/dpo, KTO without a tag column, conversations for pretraining.
 */
export function checkStage(attributes: DatasetAttributes, stage: Stage, file: string): void {
  const fail = (field: string, expected: string, got: string): never => {
    throw new DataError({ severity: 'error', dataset: attributes.name, file, field, expected, got });
  };
  const preferenceStage = stage === 'rm' || stage === 'dpo';
  if (attributes.ranking && !preferenceStage) {
    fail(
      'ranking',
      `a dataset without preference pairs for stage ${stage}`,
      'ranking: true (use stage rm or dpo)',
    );
  }
  if (!attributes.ranking && preferenceStage) {
    fail('ranking', `a preference dataset (ranking: true) for stage ${stage}`, 'ranking: false');
  }
  if (stage === 'kto' && attributes.columns.kto_tag === undefined) {
    fail('columns.kto_tag', 'a kto_tag column for stage kto', 'no kto_tag column');
  }
  if (stage === 'pt' && attributes.formatting !== 'alpaca') {
    fail('formatting', 'alpaca (a text column) for stage pt', attributes.formatting);
  }
}

/** Converts one raw row for a stage. Never throws for a bad row: the issue is returned. */
export function convertRecord(
  record: RawRecord,
  attributes: DatasetAttributes,
  stage: Stage,
): ConvertedRecord {
  const checker = new RowChecker(record.location);
  const kind = EXAMPLE_KIND_OF_STAGE[stage];
  try {
    const row = checker.object(record.value);
    let example: Example;
    switch (attributes.formatting) {
      case 'alpaca':
        example = convertAlpacaRow(row, attributes, kind, checker);
        break;
      case 'sharegpt':
      case 'openai':
        example = convertShareGptRow(row, attributes, kind, checker);
        break;
      case 'v1':
        example = convertV1Row(row, attributes, kind, checker);
        break;
    }
    return { example, warnings: checker.warnings };
  } catch (error) {
    if (error instanceof RowRejection) return { issue: error.issue, warnings: checker.warnings };
    throw error;
  }
}

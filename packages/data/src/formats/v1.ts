/**
 * LLaMA-Factory's newer rows: `{"messages": [{"role", "content": [{"type": "text", "value"}], "loss_weight"}]}`
 * for SFT/KTO and `{"chosen_messages": [...], "rejected_messages": [...]}` for preference pairs, where both
 * lists share every message but the last.
 */
import type { DatasetAttributes } from '../registry/dataset-attributes.js';
import type { RowChecker } from './row-checks.js';
import { convertShareGptRow, messageContent } from './sharegpt.js';
import type { Example } from './types.js';

/** Converts one v1 row. Throws `RowRejection` naming the first bad field. */
export function convertV1Row(
  row: Record<string, unknown>,
  attributes: DatasetAttributes,
  kind: Example['kind'],
  checker: RowChecker,
): Example {
  if (kind !== 'preference') return convertShareGptRow(row, attributes, kind, checker);

  const chosen = checker.list(row.chosen_messages, 'chosen_messages', 'a list of messages');
  const rejected = checker.list(row.rejected_messages, 'rejected_messages', 'a list of messages');
  if (chosen.length === 0)
    checker.reject('chosen_messages', 'a list of messages ending with the chosen answer', chosen);
  if (rejected.length !== chosen.length) {
    checker.rejectWithText(
      'rejected_messages',
      `${chosen.length} messages, like chosen_messages`,
      `${rejected.length} messages`,
    );
  }
  const last = chosen.length - 1;
  for (let index = 0; index < last; index++) {
    const field = `rejected_messages[${index}]`;
    const left = checker.object(chosen[index], `chosen_messages[${index}]`);
    const right = checker.object(rejected[index], field);
    const same =
      left[attributes.tags.role_tag] === right[attributes.tags.role_tag] &&
      messageContent(left, `chosen_messages[${index}]`, attributes, checker) ===
        messageContent(right, field, attributes, checker);
    if (!same)
      checker.reject(
        field,
        `the same message as chosen_messages[${index}] (only the last may differ)`,
        right,
      );
  }
  const chosenKey = `chosen_messages[${last}]`;
  const rejectedKey = `rejected_messages[${last}]`;
  const pairRow = {
    chosen_messages: chosen.slice(0, last),
    [chosenKey]: chosen[last],
    [rejectedKey]: rejected[last],
  };
  const pairAttributes: DatasetAttributes = {
    ...attributes,
    columns: { ...attributes.columns, messages: 'chosen_messages', chosen: chosenKey, rejected: rejectedKey },
  };
  return convertShareGptRow(pairRow, pairAttributes, kind, checker);
}

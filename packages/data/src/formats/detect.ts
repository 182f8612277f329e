/**
 * Guessing the description of a dataset loaded by path (without a dataset_info entry) from its first
 * row. Unlike dataset_info defaults, `system`, `history` and `tools` keys are mapped when present.
 */
import type { FileKind } from '../readers/records.js';

/**
 * A dataset_info-style description for a file, from its kind and first row. Returns `undefined` when the
 * row matches no known format.
 */
export function detectDescription(firstRow: unknown, kind: FileKind): Record<string, unknown> | undefined {
  if (kind === 'text') return { formatting: 'alpaca', columns: { prompt: 'text' } };
  if (firstRow === null || typeof firstRow !== 'object' || Array.isArray(firstRow)) return undefined;
  const row = firstRow as Record<string, unknown>;
  const has = (key: string) => key in row;
  const columns: Record<string, string> = {};
  for (const key of ['system', 'tools', 'history']) if (has(key)) columns[key] = key;
  const ktoKey = has('kto_tag') ? 'kto_tag' : typeof row.label === 'boolean' ? 'label' : undefined;
  if (ktoKey) columns.kto_tag = ktoKey;

  if (has('chosen_messages') && has('rejected_messages')) {
    return { formatting: 'v1', ranking: true, columns };
  }
  const messagesKey = has('conversations') ? 'conversations' : has('messages') ? 'messages' : undefined;
  if (messagesKey) {
    const messages = row[messagesKey];
    const first = Array.isArray(messages) ? (messages[0] as Record<string, unknown> | undefined) : undefined;
    const ranking = has('chosen') && has('rejected');
    if (ranking) {
      columns.chosen = 'chosen';
      columns.rejected = 'rejected';
    }
    columns.messages = messagesKey;
    if (first && typeof first === 'object' && Array.isArray(first.content))
      return { formatting: 'v1', ranking, columns };
    if (first && typeof first === 'object' && 'role' in first)
      return { formatting: 'openai', ranking, columns };
    return { formatting: 'sharegpt', ranking, columns };
  }
  if (has('instruction')) {
    const ranking = has('chosen') && has('rejected');
    if (ranking) {
      columns.chosen = 'chosen';
      columns.rejected = 'rejected';
    }
    return { formatting: 'alpaca', ranking, columns };
  }
  if (has('text')) return { formatting: 'alpaca', columns: { prompt: 'text' } };
  return undefined;
}

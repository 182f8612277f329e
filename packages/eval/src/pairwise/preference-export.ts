/**
 * Judged or voted pairs as a preference dataset in LLaMA-Factory's sharegpt layout (`conversations`
 * ending with the user turn, `chosen` and `rejected` assistant messages), which `webtune train`
 * with `stage: dpo` (or `rm`) reads: from evaluation straight to DPO. Ties carry no preference and
 * are left out.
 */
import type { Conversation, TurnRole } from '@webtune/data';
import { EvaluationError } from '../errors.js';
import type { ComparisonSet, PairOutcome } from './comparison.js';

/** A sharegpt message. */
export interface ShareGptMessage {
  from: 'human' | 'gpt' | 'observation' | 'function_call';
  value: string;
}

/** A sharegpt preference row. */
export interface PreferenceRow {
  conversations: ShareGptMessage[];
  chosen: ShareGptMessage;
  rejected: ShareGptMessage;
  system?: string;
}

const FROM: Record<TurnRole, ShareGptMessage['from']> = {
  user: 'human',
  assistant: 'gpt',
  observation: 'observation',
  function_call: 'function_call',
};

/** Rows for the pairs with a winner: the winner's answer is `chosen`, the other `rejected`. */
export function preferenceRows(set: ComparisonSet, outcomes: readonly PairOutcome[]): PreferenceRow[] {
  const pairs = new Map(set.pairs.map((pair) => [pair.id, pair]));
  const rows: PreferenceRow[] = [];
  for (const outcome of outcomes) {
    if (outcome.winner === null) continue;
    const pair = pairs.get(outcome.id);
    if (!pair)
      throw new EvaluationError(`outcome for pair ${outcome.id}, which the comparison set does not hold`);
    const conversation: Conversation =
      typeof pair.prompt === 'string' ? { turns: [{ role: 'user', content: pair.prompt }] } : pair.prompt;
    const last = conversation.turns[conversation.turns.length - 1];
    if (!last || (last.role !== 'user' && last.role !== 'observation')) {
      throw new EvaluationError(`pair ${pair.id}: a preference prompt must end with a user turn`);
    }
    const row: PreferenceRow = {
      conversations: conversation.turns.map((turn) => ({ from: FROM[turn.role], value: turn.content })),
      chosen: { from: 'gpt', value: pair.answers[outcome.winner] },
      rejected: { from: 'gpt', value: pair.answers[1 - outcome.winner] },
    };
    if (conversation.system) row.system = conversation.system;
    rows.push(row);
  }
  return rows;
}

/** The dataset_info.json entry that describes such a file. */
export function preferenceDatasetInfo(name: string, fileName = `${name}.json`): Record<string, unknown> {
  return {
    [name]: {
      file_name: fileName,
      formatting: 'sharegpt',
      ranking: true,
      columns: { messages: 'conversations', chosen: 'chosen', rejected: 'rejected', system: 'system' },
    },
  };
}

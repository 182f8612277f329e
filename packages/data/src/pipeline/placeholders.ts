/** `{{name}}`-style placeholders in dataset text (identity.json), filled from options. */
import type { Example, Turn } from '../formats/types.js';

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

function fill(text: string, values: Record<string, string>): string {
  return text.replace(PLACEHOLDER, (match, key: string) => (key in values ? values[key] : match));
}

function texts(example: Example): string[] {
  if (example.kind === 'pretrain') return [example.text];
  const list = example.conversation.turns.map((turn) => turn.content);
  if (example.conversation.system) list.push(example.conversation.system);
  if (example.kind === 'preference') list.push(example.chosen.content, example.rejected.content);
  return list;
}

/** Replaces `{{key}}` with `values[key]` in every text of the example, in place. Unknown keys stay. */
export function fillPlaceholders(example: Example, values: Record<string, string>): void {
  if (example.kind === 'pretrain') {
    example.text = fill(example.text, values);
    return;
  }
  const turn = (item: Turn) => {
    if (item.role !== 'function_call') item.content = fill(item.content, values);
  };
  example.conversation.turns.forEach(turn);
  if (example.conversation.system) example.conversation.system = fill(example.conversation.system, values);
  if (example.kind === 'preference') {
    turn(example.chosen);
    turn(example.rejected);
  }
}

/** Names of placeholders still in the example's texts. */
export function unfilledPlaceholders(example: Example): string[] {
  const names = new Set<string>();
  for (const text of texts(example)) for (const match of text.matchAll(PLACEHOLDER)) names.add(match[1]);
  return [...names];
}

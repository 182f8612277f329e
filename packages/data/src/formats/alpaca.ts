/**
 * Alpaca rows: `{instruction, input?, output, system?, history?: [[user, assistant], ...]}`; preference
 * rows carry `chosen`/`rejected` instead of `output`; KTO rows add a tag; pretraining uses the prompt
 * column (`text` for c4/wiki). The user turn is instruction and input joined by a newline.
 */
import type { DatasetAttributes } from '../registry/dataset-attributes.js';
import type { RowChecker } from './row-checks.js';
import { parseTools } from './tools.js';
import type { Conversation, Example, Turn } from './types.js';

/** Converts one alpaca row into an example of the given kind. Throws `RowRejection` on the first problem. */
export function convertAlpacaRow(
  row: Record<string, unknown>,
  attributes: DatasetAttributes,
  kind: Example['kind'],
  checker: RowChecker,
): Example {
  const { columns } = attributes;
  rejectMedia(row, attributes, checker);

  const prompt = row[columns.prompt];
  const query = row[columns.query];
  if (typeof prompt !== 'string') checker.reject(columns.prompt, 'a string', prompt);
  if (query !== undefined && query !== null && typeof query !== 'string')
    checker.reject(columns.query, 'a string', query);
  const userText = [prompt as string, (query as string | undefined) ?? '']
    .filter((part) => part.length > 0)
    .join('\n');
  if (userText.trim().length === 0) {
    checker.reject(columns.prompt, `a non-empty string (with ${columns.query}, the user turn)`, prompt);
  }

  if (kind === 'pretrain') return { kind, location: checker.location, text: userText };

  const turns: Turn[] = [];
  if (columns.history !== undefined && row[columns.history] !== undefined && row[columns.history] !== null) {
    const history = checker.list(row[columns.history], columns.history, 'a list of [user, assistant] pairs');
    history.forEach((pair, index) => {
      const field = `${columns.history}[${index}]`;
      if (!Array.isArray(pair) || pair.length !== 2)
        checker.reject(field, 'a pair [user, assistant] of strings', pair);
      const [user, assistant] = pair as unknown[];
      turns.push({ role: 'user', content: checker.text(user, `${field}[0]`) });
      turns.push({ role: 'assistant', content: checker.text(assistant, `${field}[1]`) });
    });
  }
  turns.push({ role: 'user', content: userText });

  const conversation: Conversation = { turns };
  if (columns.system !== undefined) {
    const system = checker.optionalText(row[columns.system], columns.system);
    if (system !== undefined && system.length > 0) conversation.system = system;
  }
  if (columns.tools !== undefined) {
    const tools = parseTools(row[columns.tools], columns.tools, checker);
    if (tools) conversation.tools = tools;
  }

  if (kind === 'preference') {
    const chosenColumn = columns.chosen ?? 'chosen';
    const rejectedColumn = columns.rejected ?? 'rejected';
    const chosen = checker.text(row[chosenColumn], chosenColumn);
    const rejected = checker.text(row[rejectedColumn], rejectedColumn);
    return {
      kind,
      location: checker.location,
      conversation,
      chosen: { role: 'assistant', content: chosen },
      rejected: { role: 'assistant', content: rejected },
    };
  }

  const response = checker.text(row[columns.response], columns.response);
  turns.push({ role: 'assistant', content: response });
  return conversationExample(row, attributes, kind, conversation, checker);
}

/**
 * The example a converted conversation makes: a KTO example reads its desirable flag from the
 * `kto_tag` column; any other kind is the conversation alone.
 */
export function conversationExample(
  row: Record<string, unknown>,
  attributes: DatasetAttributes,
  kind: 'supervised' | 'kto',
  conversation: Conversation,
  checker: RowChecker,
): Example {
  if (kind === 'supervised') return { kind, location: checker.location, conversation };
  const tagColumn = attributes.columns.kto_tag ?? 'kto_tag';
  return {
    kind,
    location: checker.location,
    conversation,
    desirable: checker.flag(row[tagColumn], tagColumn),
  };
}

/** Rejects rows that carry images, videos or audio: webtune trains text-only models. */
export function rejectMedia(
  row: Record<string, unknown>,
  attributes: DatasetAttributes,
  checker: RowChecker,
): void {
  for (const column of [attributes.columns.images, attributes.columns.videos, attributes.columns.audios]) {
    if (column === undefined) continue;
    const value = row[column];
    if (value === undefined || value === null || (Array.isArray(value) && value.length === 0) || value === '')
      continue;
    checker.reject(column, 'no media (webtune trains text-only models)', value);
  }
}

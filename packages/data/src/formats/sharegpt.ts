/**
 * ShareGPT and OpenAI rows: a list of messages with role and content tags (from/value and
 * human/gpt/observation/function_call/system for ShareGPT, role/content and user/assistant/tool/system
 * for OpenAI), optional `system` and `tools` columns, `chosen`/`rejected` messages for preference rows
 * and a KTO tag. User-side turns (user, observation) sit at odd positions and assistant-side turns
 * (assistant, function_call) at even ones.
 */
import type { DatasetAttributes } from '../registry/dataset-attributes.js';
import { conversationExample, rejectMedia } from './alpaca.js';
import type { RowChecker } from './row-checks.js';
import { functionCallText, parseFunctionCalls, parseTools } from './tools.js';
import { type Conversation, type Example, isPromptSide, type Turn, type TurnRole } from './types.js';

/** Converts one ShareGPT/OpenAI row. Throws `RowRejection` naming the first bad field. */
export function convertShareGptRow(
  row: Record<string, unknown>,
  attributes: DatasetAttributes,
  kind: Example['kind'],
  checker: RowChecker,
): Example {
  const { columns, tags } = attributes;
  rejectMedia(row, attributes, checker);
  const messagesField = columns.messages;
  const messages = checker.list(row[messagesField], messagesField, 'a list of messages');

  const conversation: Conversation = { turns: [] };
  if (columns.system !== undefined) {
    const system = checker.optionalText(row[columns.system], columns.system);
    if (system) conversation.system = system;
  }
  if (columns.tools !== undefined) {
    const tools = parseTools(row[columns.tools], columns.tools, checker);
    if (tools) conversation.tools = tools;
  }

  let start = 0;
  const first = messages[0];
  if (
    first &&
    typeof first === 'object' &&
    (first as Record<string, unknown>)[tags.role_tag] === tags.system_tag
  ) {
    // A system message first overrides the system column, as in LLaMA-Factory.
    const content = messageContent(
      first as Record<string, unknown>,
      `${messagesField}[0]`,
      attributes,
      checker,
    );
    if (content.trim().length > 0) conversation.system = content;
    start = 1;
  }

  for (let index = start; index < messages.length; index++) {
    const field = `${messagesField}[${index}]`;
    const position = index - start;
    const turn = convertMessage(
      messages[index],
      field,
      attributes,
      checker,
      position % 2 === 0 ? 'prompt' : 'response',
    );
    conversation.turns.push(turn);
  }

  const count = conversation.turns.length;
  if (kind === 'preference') {
    if (count % 2 !== 1) {
      checker.rejectWithText(
        messagesField,
        'an odd number of turns ending with a user turn (the answers go in chosen and rejected)',
        `${count} turns`,
      );
    }
    const chosenColumn = columns.chosen ?? 'chosen';
    const rejectedColumn = columns.rejected ?? 'rejected';
    return {
      kind,
      location: checker.location,
      conversation,
      chosen: convertMessage(row[chosenColumn], chosenColumn, attributes, checker, 'response'),
      rejected: convertMessage(row[rejectedColumn], rejectedColumn, attributes, checker, 'response'),
    };
  }
  if (kind === 'pretrain') {
    return checker.reject(
      messagesField,
      'a text column (ShareGPT rows cannot be used for pretraining)',
      row[messagesField],
    );
  }
  if (count < 2 || count % 2 !== 0) {
    checker.rejectWithText(
      messagesField,
      'an even number of turns (user, assistant, user, assistant, ...) ending with an assistant turn',
      `${count} turn${count === 1 ? '' : 's'}`,
    );
  }
  return conversationExample(row, attributes, kind, conversation, checker);
}

/** Converts one message, checking that its role belongs on the expected side. */
function convertMessage(
  value: unknown,
  field: string,
  attributes: DatasetAttributes,
  checker: RowChecker,
  side: 'prompt' | 'response',
): Turn {
  const { tags } = attributes;
  const message = checker.object(value, field);
  const roleValue = message[tags.role_tag];
  const roles: Record<string, TurnRole> = {
    [tags.user_tag]: 'user',
    [tags.assistant_tag]: 'assistant',
    [tags.observation_tag]: 'observation',
    [tags.function_tag]: 'function_call',
  };
  const roleField = `${field}.${tags.role_tag}`;
  const allowed =
    side === 'prompt'
      ? `${tags.user_tag} or ${tags.observation_tag} (a user-side turn)`
      : `${tags.assistant_tag} or ${tags.function_tag} (an assistant-side turn)`;
  if (typeof roleValue !== 'string') checker.reject(roleField, allowed, roleValue);
  if (roleValue === tags.system_tag) {
    checker.reject(roleField, `${allowed}; a system message may only come first`, roleValue);
  }
  let role = roles[roleValue as string];
  if (role === undefined) checker.reject(roleField, allowed, roleValue);
  if ((side === 'prompt') !== isPromptSide(role)) checker.reject(roleField, allowed, roleValue);

  // OpenAI assistant messages carry tool calls in `tool_calls`, usually with empty content.
  const openAiCalls = message.tool_calls;
  if (role === 'assistant' && Array.isArray(openAiCalls) && openAiCalls.length > 0) {
    const toolCalls = parseFunctionCalls(openAiCalls, `${field}.tool_calls`, checker);
    role = 'function_call';
    const turn: Turn = { role, content: functionCallText(toolCalls), toolCalls };
    return withLossWeight(turn, message, field, checker);
  }

  const content = messageContent(message, field, attributes, checker);
  const contentField = `${field}.${tags.content_tag}`;
  if (content.trim().length === 0) checker.reject(contentField, 'a non-empty string', content);
  const turn: Turn = { role, content };
  if (role === 'function_call') turn.toolCalls = parseFunctionCalls(content, contentField, checker);
  return withLossWeight(turn, message, field, checker);
}

/**
 * The text of a message: a string, or (OpenAI / LLaMA-Factory v1) a list of typed parts of which only
 * `text` parts are accepted.
 */
export function messageContent(
  message: Record<string, unknown>,
  field: string,
  attributes: DatasetAttributes,
  checker: RowChecker,
): string {
  const contentField = `${field}.${attributes.tags.content_tag}`;
  const content = message[attributes.tags.content_tag];
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part, index) => {
        const partField = `${contentField}[${index}]`;
        const record = checker.object(part, partField);
        if (record.type !== 'text')
          checker.reject(`${partField}.type`, '"text" (webtune trains text-only models)', record.type);
        const text = record.value ?? record.text;
        if (typeof text !== 'string') checker.reject(`${partField}.value`, 'a string', text);
        return text as string;
      })
      .join('');
  }
  return checker.reject(contentField, 'a string', content);
}

function withLossWeight(
  turn: Turn,
  message: Record<string, unknown>,
  field: string,
  checker: RowChecker,
): Turn {
  const weight = message.loss_weight;
  if (weight === undefined || weight === null) return turn;
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0) {
    checker.reject(`${field}.loss_weight`, 'a number >= 0', weight);
  }
  if (isPromptSide(turn.role)) {
    if (weight !== 0) {
      checker.warn(
        `${field}.loss_weight`,
        '0 on a user-side turn (use trainOnPrompt to train prompts)',
        weight,
      );
    }
    return turn;
  }
  turn.lossWeight = weight as number;
  return turn;
}

/**
 * Chat messages -> prompt token ids through a chat template (@webtune/data renders; this file
 * only maps OpenAI-style messages onto a Conversation and picks the template).
 */
import {
  BUILTIN_TEMPLATE_NAMES,
  type ChatTemplate,
  type Conversation,
  renderText,
  resolveChatTemplate,
} from '@webtune/data';
import type { Tokenizer } from '@webtune/tokenizers';
import { UsageError } from './ui.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/**
 * The template for `name`: a built-in name, or (absent / `auto`) the tokenizer's own
 * chat_template, falling back to the built-in `default` for tokenizers without one.
 */
export function chatTemplateFor(tokenizer: Tokenizer, name?: string): ChatTemplate {
  if ((name === undefined || name === 'auto') && !tokenizer.chatTemplate) {
    return resolveChatTemplate('default', tokenizer);
  }
  if (name !== undefined && name !== 'auto' && !(BUILTIN_TEMPLATE_NAMES as string[]).includes(name)) {
    throw new UsageError(
      `unknown template "${name}"; built-in templates: ${BUILTIN_TEMPLATE_NAMES.join(', ')}`,
    );
  }
  return resolveChatTemplate(name, tokenizer);
}

/** Thrown for message lists that do not form a conversation (the server answers 400). */
export class MessagesError extends Error {
  override name = 'MessagesError';
}

/** OpenAI-style messages as a Conversation: system messages first, then user/assistant alternating, ending with user. */
export function conversationOf(messages: readonly ChatMessage[]): Conversation {
  const system: string[] = [];
  const turns: Conversation['turns'] = [];
  for (const [index, message] of messages.entries()) {
    if (message.role === 'system') {
      if (turns.length > 0) throw new MessagesError(`messages[${index}]: a system message must come first`);
      system.push(message.content);
      continue;
    }
    const expected = turns.length % 2 === 0 ? 'user' : 'assistant';
    if (message.role !== expected) {
      throw new MessagesError(
        `messages[${index}]: expected a ${expected} message (roles alternate user, assistant), got ${message.role}`,
      );
    }
    turns.push({ role: message.role, content: message.content });
  }
  if (turns.length === 0 || turns[turns.length - 1].role !== 'user') {
    throw new MessagesError('the last message must be a user message');
  }
  return { system: system.length > 0 ? system.join('\n') : undefined, turns };
}

/**
 * Token ids of the prompt for `messages`, ending with the assistant header the model completes.
 * Templates write their own BOS, so the tokenizer adds no special tokens (as in training).
 */
export function chatPromptIds(
  template: ChatTemplate,
  tokenizer: Tokenizer,
  messages: readonly ChatMessage[],
): number[] {
  const text = renderText(template, conversationOf(messages), { addGenerationPrompt: true });
  const ids = tokenizer.encode(text, { addSpecialTokens: false });
  if (ids.length === 0 && tokenizer.bosTokenId !== undefined) return [tokenizer.bosTokenId];
  return ids;
}

/** End-of-turn texts that end an answer besides the model's EOS tokens. */
export function stopStringsFor(template: ChatTemplate, tokenizer: Tokenizer): string[] {
  const stops = new Set<string>();
  const eos = tokenizer.eosTokenId !== undefined ? tokenizer.idToToken(tokenizer.eosTokenId) : undefined;
  if (eos) stops.add(eos);
  for (const marker of ['<|im_end|>', '<|eot_id|>', '<end_of_turn>', '<|end|>']) {
    if (tokenizer.tokenToId(marker) !== undefined) stops.add(marker);
  }
  // Plain-text formats: the next user header ends the answer.
  const nextTurn: Record<string, string> = {
    default: '\nHuman:',
    alpaca: '\n\n### Instruction:',
    vicuna: 'USER:',
  };
  if (nextTurn[template.name]) stops.add(nextTurn[template.name]);
  return [...stops];
}

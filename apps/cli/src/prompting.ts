/**
 * Chat messages -> prompt token ids through @webtune/data's `PromptEncoder` (the encoder training uses);
 * this file only maps OpenAI-style messages onto a Conversation and turns template errors into usage errors.
 */
import { type Conversation, PromptEncoder, type PromptEncoderOptions, TemplateError } from '@webtune/data';
import type { Tokenizer } from '@webtune/tokenizers';
import { UsageError } from './ui.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/**
 * The prompt encoder for a tokenizer and LLaMA-Factory's template settings (`template`,
 * `enable_thinking`, `default_system`, `tool_format`). No template: LLaMA-Factory's choice.
 */
export function promptEncoderFor(tokenizer: Tokenizer, options: PromptEncoderOptions = {}): PromptEncoder {
  try {
    return new PromptEncoder(tokenizer, options);
  } catch (error) {
    if (error instanceof TemplateError) throw new UsageError(error.message);
    throw error;
  }
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

/** Token ids of the prompt for `messages`, ending where the model's answer begins. */
export function chatPromptIds(encoder: PromptEncoder, messages: readonly ChatMessage[]): number[] {
  try {
    return encoder.encodePrompt(conversationOf(messages));
  } catch (error) {
    if (error instanceof TemplateError) throw new MessagesError(error.message);
    throw error;
  }
}

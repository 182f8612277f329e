/**
 * The Hugging Face chat-message form of a conversation (what Jinja chat templates read), and helpers
 * about reasoning (`<think>...</think>`) blocks.
 */
import type { Conversation, ToolDefinition, Turn } from '../formats/types.js';

/** A message as chat templates expect it. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
  tool_calls?: { id: string; type: 'function'; function: { name: string; arguments: unknown } }[];
  tool_call_id?: string;
}

/** Messages for a conversation, and which message each turn became. */
export interface ChatMessages {
  messages: ChatMessage[];
  /** `messageOfTurn[t]` is the index in `messages` of turn `t`. */
  messageOfTurn: number[];
  tools?: ToolDefinition[];
}

/**
 * Converts a conversation to chat messages: a system message first when there is one; user turns as
 * `user`; assistant turns as `assistant`; function calls as an `assistant` message with empty content
 * and `tool_calls`; observations as `tool` messages answering the previous call. Call ids are generated
 * (`call00001`, nine characters as Mistral templates require).
 */
export function toChatMessages(conversation: Conversation): ChatMessages {
  const messages: ChatMessage[] = [];
  if (conversation.system !== undefined && conversation.system.length > 0) {
    messages.push({ role: 'system', content: conversation.system });
  }
  const messageOfTurn: number[] = [];
  let callCount = 0;
  let lastCallId: string | undefined;
  for (const turn of conversation.turns) {
    messageOfTurn.push(messages.length);
    switch (turn.role) {
      case 'user':
        messages.push({ role: 'user', content: turn.content });
        break;
      case 'assistant':
        messages.push({ role: 'assistant', content: turn.content });
        break;
      case 'function_call': {
        const calls = (turn.toolCalls ?? []).map((call) => {
          callCount++;
          return {
            id: `call${String(callCount).padStart(5, '0')}`,
            type: 'function' as const,
            function: { name: call.name, arguments: call.arguments },
          };
        });
        lastCallId = calls[0]?.id;
        messages.push({ role: 'assistant', content: '', tool_calls: calls });
        break;
      }
      case 'observation':
        messages.push({
          role: 'tool',
          content: turn.content,
          tool_call_id: lastCallId ?? `call${'0'.repeat(5)}`,
        });
        break;
    }
  }
  return { messages, messageOfTurn, tools: conversation.tools };
}

/** Splits assistant text into reasoning and answer around the last `</think>`, as Qwen3's template does. */
export function splitReasoning(content: string): { reasoning?: string; answer: string } {
  const end = content.lastIndexOf('</think>');
  if (end < 0) return { answer: content };
  const before = content.slice(0, content.indexOf('</think>'));
  const open = before.lastIndexOf('<think>');
  return {
    reasoning: open >= 0 ? before.slice(open + '<think>'.length) : before,
    answer: content.slice(end + '</think>'.length),
  };
}

/** Whether any assistant turn holds a reasoning block. */
export function hasReasoning(turns: readonly Turn[]): boolean {
  return turns.some((turn) => turn.role === 'assistant' && turn.content.includes('</think>'));
}

/**
 * The conversation with reasoning blocks removed from assistant turns (what LLaMA-Factory does when
 * thinking is off): the answer after `</think>`, leading newlines dropped.
 */
export function withoutReasoning(conversation: Conversation): Conversation {
  if (!hasReasoning(conversation.turns)) return conversation;
  return {
    ...conversation,
    turns: conversation.turns.map((turn) =>
      turn.role === 'assistant' && turn.content.includes('</think>')
        ? { ...turn, content: splitReasoning(turn.content).answer.replace(/^\n+/, '') }
        : turn,
    ),
  };
}

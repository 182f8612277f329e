/**
 * The golden renderings of the official chat templates (made by scripts/chat-template-goldens.py with
 * Python's Jinja2) and helpers to turn their chat messages back into conversations.
 */
import { readFileSync } from 'node:fs';
import { fixturePath } from '@webtune/test-utils';
import type { Conversation, ToolDefinition, Turn } from '../formats/types.js';
import type { ChatMessage } from '../templates/messages.js';

export interface GoldenCase {
  name: string;
  messages: ChatMessage[];
  tools?: ToolDefinition[];
  add_generation_prompt?: boolean;
  extra?: { enable_thinking?: boolean };
}

export interface GoldenResult {
  template: string;
  case: string;
  output?: string;
  error?: string;
}

export interface Goldens {
  jinja2: string;
  specialTokens: Record<string, { bos_token: string; eos_token: string }>;
  cases: GoldenCase[];
  results: GoldenResult[];
}

export const goldens: Goldens = JSON.parse(
  readFileSync(new URL('../templates/__fixtures__/chat-template-goldens.json', import.meta.url), 'utf8'),
);

export const goldenCases = new Map(goldens.cases.map((item) => [item.name, item]));

/** The built-in template of each official template's family. */
export const FAMILY: Record<string, string> = {
  'Qwen-Qwen2.5-7B-Instruct.jinja': 'qwen',
  'Qwen-Qwen3-0.6B.jinja': 'qwen3',
  'deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja': 'deepseek_r1',
  'google-gemma-2-2b-it.jinja': 'gemma',
  'meta-llama-Llama-3.1-8B-Instruct.jinja': 'llama3',
  'meta-llama-Llama-3.2-3B-Instruct.jinja': 'llama3',
  'microsoft-Phi-3.5-mini-instruct.jinja': 'phi',
  'mistralai-Mistral-Nemo-Instruct-2407.jinja': 'mistral',
};

/** Source of an official template from the shared fixtures. */
export function templateSource(file: string): string {
  return readFileSync(fixturePath('chat_templates', file), 'utf8');
}

/** The conversation that a golden case's chat messages stand for. */
export function conversationOf(item: GoldenCase): Conversation {
  const turns: Turn[] = [];
  let system: string | undefined;
  for (const message of item.messages) {
    if (message.role === 'system') system = message.content;
    else if (message.role === 'user') turns.push({ role: 'user', content: message.content });
    else if (message.role === 'tool') turns.push({ role: 'observation', content: message.content });
    else if (message.tool_calls) {
      const toolCalls = message.tool_calls.map((call) => ({
        name: call.function.name,
        arguments: call.function.arguments,
      }));
      turns.push({ role: 'function_call', content: JSON.stringify(toolCalls[0]), toolCalls });
    } else turns.push({ role: 'assistant', content: message.content });
  }
  const conversation: Conversation = { turns };
  if (system !== undefined) conversation.system = system;
  if (item.tools) conversation.tools = item.tools;
  return conversation;
}
